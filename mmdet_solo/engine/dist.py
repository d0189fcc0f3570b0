"""Distributed helpers: ``--launcher pytorch`` (``torchrun``) and ``--launcher slurm`` (``srun``,
one task per GPU); NCCL on GPU, gloo on CPU."""
from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist

_TORCHRUN_VARS = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')


LAUNCHERS = ('pytorch', 'slurm')
_SLURM_VARS = ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID', 'SLURM_NODELIST')
DEFAULT_MASTER_PORT = 29500


def init_dist(launcher: str, backend: Optional[str] = None, timeout_s: float = 1800) -> None:
    """Join the process group of this job.

    ``'pytorch'``: the variables ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT``). ``'slurm'``: one process per ``srun`` task; those
    variables are derived from SLURM's (:func:`slurm_env`) and then used the same way.
    ``backend`` defaults to NCCL when CUDA is available, else gloo; asking for NCCL without a GPU
    falls back to gloo with a warning (so ``tools/dist_train.sh`` runs on a CPU machine).
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher '{launcher}' is not supported; use 'pytorch' (torchrun), "
                         "'slurm' (srun) or 'none' (single process)")
    if launcher == 'slurm':
        os.environ.update(slurm_env(os.environ))
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


def slurm_env(environ: Dict[str, str]) -> Dict[str, str]:
    """The torchrun variables of an ``srun`` task: ``RANK`` = ``SLURM_PROCID``, ``WORLD_SIZE`` =
    ``SLURM_NTASKS``, ``LOCAL_RANK`` = ``SLURM_LOCALID``, ``MASTER_ADDR`` = the first host of
    ``SLURM_NODELIST`` (:func:`first_slurm_host`; an already set ``MASTER_ADDR`` wins),
    ``MASTER_PORT`` = ``MASTER_PORT`` if set, else 29500 (one job per node at a time, or set it)."""
    missing = [v for v in _SLURM_VARS if not environ.get(v)]
    if missing:
        raise RuntimeError(f"--launcher slurm needs the variables srun sets; {', '.join(missing)} "
                           'not set. Start with tools/slurm_train.sh / tools/slurm_test.sh (or '
                           'srun ... python tools/train.py CONFIG --launcher slurm)')
    values = {}
    for var in _SLURM_VARS[:3]:
        if not re.fullmatch(r'\d+', environ[var].strip()):
            raise RuntimeError(f'--launcher slurm: {var}={environ[var]!r} is not a '
                               'non-negative integer')
        values[var] = int(environ[var])
    if values['SLURM_PROCID'] >= values['SLURM_NTASKS']:
        raise RuntimeError(f"--launcher slurm: SLURM_PROCID={values['SLURM_PROCID']} is not "
                           f"below SLURM_NTASKS={values['SLURM_NTASKS']}")
    return dict(RANK=str(values['SLURM_PROCID']), WORLD_SIZE=str(values['SLURM_NTASKS']),
                LOCAL_RANK=str(values['SLURM_LOCALID']),
                MASTER_ADDR=(environ.get('MASTER_ADDR')
                             or first_slurm_host(environ['SLURM_NODELIST'])),
                MASTER_PORT=environ.get('MASTER_PORT') or str(DEFAULT_MASTER_PORT))


def first_slurm_host(nodelist: str) -> str:
    """The first host of a SLURM node list: ``scontrol show hostnames NODELIST | head -n1`` when
    ``scontrol`` is on the PATH, else parsed here (``node[01-04,07],gpu5`` -> ``node01``; several
    bracket groups, ``r[1-2]-n[3-4]`` -> ``r1-n3``)."""
    nodelist = nodelist.strip()
    scontrol = shutil.which('scontrol')
    if scontrol is not None:
        proc = subprocess.run([scontrol, 'show', 'hostnames', nodelist], capture_output=True,
                              text=True, timeout=60)
        hosts = proc.stdout.split()
        if proc.returncode == 0 and hosts:
            return hosts[0]
        warnings.warn(f"'scontrol show hostnames {nodelist}' failed (exit {proc.returncode}: "
                      f'{proc.stderr.strip()[:200]}); parsing SLURM_NODELIST itself')
    return parse_first_host(nodelist)


def parse_first_host(nodelist: str) -> str:
    """The first host of a SLURM host list, without ``scontrol`` (see :func:`first_slurm_host`)."""
    m = re.match(r'((?:[^,\[\]]|\[[^\[\]]*\])+)(?:,|$)', nodelist)
    first = m.group(1) if m else ''
    if not first or re.search(r'[\s\[\]]', re.sub(r'\[[^\[\]]*\]', '', first)):
        raise RuntimeError(f'--launcher slurm: cannot read the first host of SLURM_NODELIST='
                           f"{nodelist!r} (scontrol is not on the PATH to expand it); set "
                           'MASTER_ADDR to the host of task 0')

    def first_of(group: 're.Match') -> str:
        item = group.group(1).split(',')[0].split('-')[0].strip()
        if not item.isdigit():
            raise RuntimeError(f'--launcher slurm: cannot read the host range [{group.group(1)}] '
                               f'of SLURM_NODELIST={nodelist!r}; set MASTER_ADDR to the host of '
                               'task 0')
        return item
    return re.sub(r'\[([^\[\]]*)\]', first_of, first)


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


__all__ = ['init_dist', 'slurm_env', 'first_slurm_host', 'parse_first_host', 'LAUNCHERS',
           'get_dist_info', 'is_distributed', 'is_main_process', 'barrier',
           'all_reduce_mean', 'all_gather_object', 'merge_indexed_parts']
