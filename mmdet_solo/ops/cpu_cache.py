"""Reuse of large CPU blocks during mmdet_solo's inference (``ops/csrc/cpu_cache.cpp``).

PyTorch takes every large CPU tensor from fresh OS pages and gives them back when it is freed,
so each forward pays the page faults of all its feature maps again (~30 % of a SOLOv2 R50
forward on a 2-core VM, BENCHMARKS.md). Inside :func:`cpu_allocation_cache` blocks of 1 MB
or more allocated on this thread come from a cache of freed blocks instead, as PyTorch's CUDA
caching allocator does on GPUs; allocations outside it, and on other threads, are untouched.
The detectors enter it for inference on a CPU. Up to ``MMDET_SOLO_CPU_CACHE_MB`` (default
2048) of free blocks are kept; :func:`empty_cpu_cache` returns them to the OS;
``MMDET_SOLO_CPU_CACHE=0`` (or :func:`set_cpu_cache` ``(False)``) turns the cache off. Numbers
are unchanged: only where memory comes from.
"""
from __future__ import annotations

import contextlib
import os
from typing import Dict, Iterator

import torch

from . import _ext_loader

ENV_VAR = 'MMDET_SOLO_CPU_CACHE'
_enabled = [os.environ.get(ENV_VAR, '1').strip()]


def set_cpu_cache(enabled: bool) -> None:
    """Turn the inference allocation cache on or off (overrides ``MMDET_SOLO_CPU_CACHE``)."""
    _enabled[0] = '1' if enabled else '0'


def cpu_cache_available() -> bool:
    """Whether :func:`cpu_allocation_cache` caches (extension built, not turned off)."""
    if _enabled[0] not in ('0', '1'):
        raise ValueError(f'{ENV_VAR}={_enabled[0]!r}: expected 0 or 1')
    return (_enabled[0] == '1' and _ext_loader.load()
            and hasattr(torch.ops.mmdet_solo, 'cpu_cache_enter'))


@contextlib.contextmanager
def cpu_allocation_cache(device=None) -> Iterator[bool]:
    """A scope in which this thread's large CPU allocations reuse cached blocks; yields
    whether it caches (not for another ``device``, without the extension, or turned off)."""
    if (device is not None and torch.device(device).type != 'cpu') or not cpu_cache_available() \
            or not torch.ops.mmdet_solo.cpu_cache_enter():
        yield False
        return
    try:
        yield True
    finally:
        torch.ops.mmdet_solo.cpu_cache_exit()


def empty_cpu_cache() -> None:
    """Return the cached free blocks to the OS."""
    if _ext_loader.load() and hasattr(torch.ops.mmdet_solo, 'cpu_cache_empty'):
        torch.ops.mmdet_solo.cpu_cache_empty()


def cpu_cache_stats() -> Dict[str, int]:
    """Bytes of free cached blocks and of cached-class blocks in use, cache hits and misses,
    and the limit on free bytes."""
    if not (_ext_loader.load() and hasattr(torch.ops.mmdet_solo, 'cpu_cache_stats')):
        return {}
    free, live, hits, misses, limit = torch.ops.mmdet_solo.cpu_cache_stats()
    return dict(free_bytes=free, live_bytes=live, hits=hits, misses=misses, limit_bytes=limit)
