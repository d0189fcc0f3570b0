"""Distributed helpers for ``torchrun`` (``--launcher pytorch``): NCCL on GPU, gloo on CPU."""
from __future__ import annotations

import datetime
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist

_TORCHRUN_VARS = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')


def init_dist(launcher: str, backend: Optional[str] = None, timeout_s: float = 1800) -> None:
    """Join the process group started by ``torchrun``.

    ``backend`` defaults to NCCL when CUDA is available, else gloo; asking for NCCL without a GPU
    falls back to gloo with a warning (so ``tools/dist_train.sh`` runs on a CPU machine).
    """
    if launcher != 'pytorch':
        raise ValueError(f"launcher '{launcher}' is not supported; use 'pytorch' (torchrun) or "
                         "'none' (single process)")
    missing = [v for v in _TORCHRUN_VARS if v not in os.environ]
    if missing:
        raise RuntimeError(f"--launcher pytorch needs the torchrun environment variables; "
                           f"{', '.join(missing)} not set. Start with tools/dist_train.sh or "
                           'torchrun --nproc_per_node=N tools/train.py ...')
    if dist.is_initialized():
        return
    cuda = torch.cuda.is_available()
    if backend is None:
        backend = 'nccl' if cuda else 'gloo'
    elif backend == 'nccl' and not cuda:
        warnings.warn('dist backend nccl needs CUDA, which is not available: using gloo')
        backend = 'gloo'
    local_rank = int(os.environ['LOCAL_RANK'])
    if cuda:
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))


def get_dist_info() -> Tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_distributed() -> bool:
    return get_dist_info()[1] > 1


def is_main_process() -> bool:
    return get_dist_info()[0] == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def _reduce_device() -> torch.device:
    if dist.get_backend() == 'nccl':
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def all_reduce_mean(values: Dict[str, float]) -> Dict[str, float]:
    """Average scalar values over the ranks (same keys, same order on every rank)."""
    if not is_distributed() or not values:
        return dict(values)
    keys = list(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64,
                     device=_reduce_device())
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return {k: float(v) for k, v in zip(keys, t.tolist())}


def all_gather_object(obj: Any) -> List[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` (``[obj]`` when not distributed)."""
    if not is_distributed():
        return [obj]
    out: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def merge_indexed_parts(parts: Sequence[Sequence[Tuple[int, Any]]], size: int,
                        caller: str = 'merge_indexed_parts') -> List[Any]:
    """Per-rank lists of ``(dataset_index, result)`` → results in dataset order, each index
    once (a padded sampler repeats some); a missing index is an error naming ``caller``."""
    by_index: Dict[int, Any] = {}
    for rank_part in parts:
        for idx, result in rank_part:
            by_index.setdefault(int(idx), result)
    missing = [i for i in range(size) if i not in by_index]
    if missing:
        raise RuntimeError(f'{caller}: no result for {len(missing)} of {size} samples '
                           f'(first: {missing[:5]})')
    return [by_index[i] for i in range(size)]


__all__ = ['init_dist', 'get_dist_info', 'is_distributed', 'is_main_process', 'barrier',
           'all_reduce_mean', 'all_gather_object', 'merge_indexed_parts']
