"""Loads the compiled operators (``mmdet_solo.ops._C``) and registers their fake kernels.

The shared library registers ``torch.ops.mmdet_solo.matrix_nms`` (CPU kernel, plus a CUDA kernel
when it was built with CUDA) through ``TORCH_LIBRARY``, and the CPU mask kernels and the inference
allocation cache (``mask_kernels``, ``cpu_cache``) through ``TORCH_LIBRARY_FRAGMENT``. Loading
never raises: a missing or broken library is recorded in :func:`load_error` and the callers fall
back to their PyTorch versions.
"""
from __future__ import annotations

import importlib
from typing import Optional

import torch

EXT_MODULE = 'mmdet_solo.ops._C'
MATRIX_NMS_OP = 'mmdet_solo::matrix_nms'

_loaded: Optional[bool] = None
_error: Optional[str] = None
_module_file: Optional[str] = None


def _matrix_nms_fake(seg_masks, cate_labels, cate_scores, kernel, sigma, sum_masks=None):
    """Shapes only (torch.compile, torch.export): the decayed scores, like ``cate_scores``."""
    torch._check(seg_masks.dim() == 3, lambda: 'matrix_nms: seg_masks must be (N, H, W)')
    torch._check(kernel in ('gaussian', 'linear'),
                 lambda: f"matrix_nms: kernel must be 'gaussian' or 'linear', got {kernel!r}")
    n = seg_masks.shape[0]
    for name, t in (('cate_labels', cate_labels), ('cate_scores', cate_scores),
                    ('sum_masks', sum_masks)):
        if t is not None:
            torch._check(t.dim() == 1, lambda: f'matrix_nms: {name} must be 1-D')
            torch._check(t.shape[0] == n, lambda: f'matrix_nms: {name} must have shape (N,)')
    return cate_scores.new_empty(cate_scores.shape)


def load() -> bool:
    """Import the extension once; True when its operators are registered."""
    global _loaded, _error, _module_file
    if _loaded is not None:
        return _loaded
    try:
        mod = importlib.import_module(EXT_MODULE)
        _module_file = getattr(mod, '__file__', None)
        torch.library.register_fake(MATRIX_NMS_OP)(_matrix_nms_fake)
        _kernels.update(_query_kernels())
        _loaded = True
    except Exception as exc:  # ImportError (not built), OSError / undefined symbol (torch mismatch)
        _loaded = False
        _error = f'{type(exc).__name__}: {exc}'
    return _loaded


def load_error() -> Optional[str]:
    """Why the extension could not be loaded (None when it is loaded or not yet tried)."""
    return _error


def module_file() -> Optional[str]:
    return _module_file


_kernels: dict = {}


def _query_kernels() -> dict:
    found = {'meta': True}  # register_fake provides it
    for dev, key in (('cpu', 'CPU'), ('cuda', 'CUDA')):
        found[dev] = bool(torch._C._dispatch_has_kernel_for_dispatch_key(MATRIX_NMS_OP, key))
    return found


def has_kernel(device_type: str) -> bool:
    """Whether the loaded extension has a Matrix NMS kernel for this device type.

    A plain dict look-up once loaded, so that torch.compile can trace through the dispatcher.
    """
    if not load():
        return False
    if not _kernels:
        _kernels.update(_query_kernels())
    return _kernels.get(device_type, False)
