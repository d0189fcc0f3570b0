"""Seeding, RNG state capture/restore and environment info."""
from __future__ import annotations

import contextlib
import os
import os.path as osp
import platform
import random
import sys
from typing import Any, Dict, Iterable, Iterator, Optional

import numpy as np
import torch


def set_random_seed(seed: int, deterministic: bool = False) -> None:
    """Seed ``random``, numpy and torch (CPU and every GPU).

    With ``deterministic``: ``torch.use_deterministic_algorithms(True, warn_only=True)`` (ops
    without a deterministic implementation warn instead of failing), cuDNN deterministic and
    no cuDNN benchmarking, and ``CUBLAS_WORKSPACE_CONFIG`` set for deterministic cuBLAS.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def get_rng_state() -> Dict[str, Any]:
    """Every RNG state this process uses, as tensors and plain Python values only, so that it
    survives ``torch.load(weights_only=True)``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: Dict[str, Any] = {
        'python': random.getstate(),
        'numpy': {'kind': kind, 'keys': torch.from_numpy(keys.astype(np.int64)), 'pos': int(pos),
                  'has_gauss': int(has_gauss), 'cached_gaussian': float(cached)},
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` captured."""
    random.setstate(_as_tuple(state['python']))
    np_state = state['numpy']
    np.random.set_state((np_state['kind'], np_state['keys'].numpy().astype(np.uint32),
                         np_state['pos'], np_state['has_gauss'], np_state['cached_gaussian']))
    torch.set_rng_state(state['torch'].cpu())
    if 'cuda' in state and torch.cuda.is_available():
        cuda_states = state['cuda']
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])


@contextlib.contextmanager
def preserved_rng_state() -> Iterator[None]:
    """Run a block (e.g. validation) without changing any RNG state of the process."""
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


def collect_env() -> Dict[str, str]:
    """A few lines about the environment, for the log."""
    import mmdet_solo
    env = {
        'sys.platform': sys.platform,
        'Python': sys.version.replace('\n', ''),
        'PyTorch': torch.__version__,
        'CUDA available': str(torch.cuda.is_available()),
        'mmdet_solo': mmdet_solo.__version__,
        'machine': platform.machine(),
        'CPU threads': str(torch.get_num_threads()),
    }
    try:
        import torchvision
        env['TorchVision'] = torchvision.__version__
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available():
        env['GPU 0'] = torch.cuda.get_device_name(0)
        env['GPU count'] = str(torch.cuda.device_count())
        env['CUDA (torch)'] = str(torch.version.cuda)
        env['cuDNN'] = str(torch.backends.cudnn.version())
    return env


def format_env(env: Optional[Dict[str, str]] = None) -> str:
    env = env if env is not None else collect_env()
    return '\n'.join(f'{k}: {v}' for k, v in env.items())


__all__ = ['set_random_seed', 'get_rng_state', 'set_rng_state', 'preserved_rng_state',
           'collect_env', 'format_env']


def refuse_overwriting_inputs(outputs: Iterable[str], inputs: Iterable[str], option: str) -> None:
    """Raise ``ValueError`` if a file this run will write (``outputs``) is one of its input
    files (``inputs``; symlinks and ``..`` resolved), naming the option and the folder."""
    existing = {osp.realpath(p) for p in inputs}
    for out in outputs:
        if osp.realpath(out) in existing:
            raise ValueError(f'{option} {osp.dirname(out) or "."!r} holds the input images: '
                             f'writing {osp.basename(out)!r} there would overwrite the original '
                             f'{out!r}; choose another folder')


def check_writable(path: str, option: str) -> None:
    """Raise ``PermissionError`` naming ``option`` and the folder when ``path`` (a file or a
    folder that may not exist yet) cannot be written: checked before a long run, not after."""
    folder = osp.abspath(path if osp.isdir(path) else osp.dirname(path) or '.')
    while not osp.exists(folder):  # the nearest existing parent decides
        folder = osp.dirname(folder)
    if not osp.isdir(folder):
        raise NotADirectoryError(f'{option} {path!r}: {folder!r} is a file, not a folder')
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f'{option} {path!r}: the folder {folder!r} is not writable')
