"""Checkpoint conversion between the four SOLO-family formats and ours.

Ours are the original release's names (``backbone.*``, ``neck.*``, ``bbox_head.*``,
``mask_feat_head.*``). :func:`to_solo` / :func:`from_solo` rename a state dict; each
format's rules live in its own module (``mmdet``, ``adelaidet``, ``paddle``).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from .adelaidet import adelaidet_to_solo, solo_to_adelaidet
from .detect import FORMATS, detect_format
from .mmdet import mmdet_to_solo, solo_to_mmdet
from .paddle import paddle_to_solo, solo_to_paddle
from .report import ConversionReport, compare_state_dicts
from .rules import ConversionError, Renamed

__all__ = ['FORMATS', 'ConversionError', 'ConversionReport', 'Renamed', 'compare_state_dicts',
           'detect_format', 'to_solo', 'from_solo', 'normalise_meta']

_TO: Dict[str, Callable[[Mapping[str, object]], Renamed]] = {
    'mmdet': mmdet_to_solo, 'adelaidet': adelaidet_to_solo, 'paddle': paddle_to_solo}
_FROM: Dict[str, Callable[[Mapping[str, object]], Renamed]] = {
    'mmdet': solo_to_mmdet, 'adelaidet': solo_to_adelaidet, 'paddle': solo_to_paddle}


def _check_format(fmt: str, where: str) -> None:
    if fmt not in FORMATS:
        raise ConversionError(f'{where}: unknown checkpoint format {fmt!r}; expected one of '
                              f'{FORMATS} (or auto)')


def _as_tensor(key: str, value: object) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    raise ConversionError(f"key '{key}': expected a tensor or numpy array, got "
                          f'{type(value).__name__}')


def to_solo(state_dict: Mapping[str, object], fmt: str = 'auto') -> Tuple['OrderedDict[str, torch.Tensor]', List[str], str]:
    """Rename a foreign state dict to our names.

    Returns:
        ``(state_dict, unmatched_keys, fmt)``; values become torch tensors; ``fmt`` is the
        detected format when ``'auto'`` was asked for (``'solo'``/``'unknown'``: unchanged).
    """
    if fmt == 'auto':
        fmt = detect_format(state_dict)
    elif fmt != 'unknown':
        _check_format(fmt, 'to_solo')
    if fmt in ('solo', 'unknown'):
        renamed = Renamed(OrderedDict(state_dict), [])
    else:
        renamed = _TO[fmt](state_dict)
    out = OrderedDict((k, _as_tensor(k, v)) for k, v in renamed.state_dict.items())
    return out, renamed.unmatched, fmt


def from_solo(state_dict: Mapping[str, torch.Tensor], fmt: str) -> Renamed:
    """Rename our state dict to ``fmt``'s names (``'paddle'`` values become numpy arrays)."""
    _check_format(fmt, 'from_solo')
    if fmt == 'solo':
        return Renamed(OrderedDict(state_dict), [])
    return _FROM[fmt](state_dict)


def normalise_meta(meta: Optional[dict]) -> dict:
    """Copy ``meta`` and fill ``CLASSES`` from mmdet 3.x's ``dataset_meta['classes']``."""
    meta = dict(meta or {})
    dataset_meta = meta.get('dataset_meta')
    if not meta.get('CLASSES') and isinstance(dataset_meta, Mapping) and dataset_meta.get('classes'):
        meta['CLASSES'] = tuple(dataset_meta['classes'])
    return meta
