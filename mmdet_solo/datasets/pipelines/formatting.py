"""Formatting transforms: arrays to tensors and the final ``Collect``.

mmdet v1 wrapped fields in mmcv ``DataContainer``s; here they are plain objects and
:func:`mmdet_solo.datasets.collate.collate` knows how to batch each key.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Iterable, Tuple

import numpy as np
import torch

from ...registry import PIPELINES

DEFAULT_META_KEYS: Tuple[str, ...] = ('filename', 'ori_shape', 'img_shape', 'pad_shape',
                                      'scale_factor', 'flip', 'img_norm_cfg')


def to_tensor(data: Any) -> torch.Tensor:
    """Convert an ndarray, tensor, sequence, int or float to a ``torch.Tensor``."""
    if isinstance(data, torch.Tensor):
        return data
    if isinstance(data, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(data))
    if isinstance(data, Sequence) and not isinstance(data, str):
        return torch.tensor(data)
    if isinstance(data, (bool, np.bool_)):
        return torch.tensor([bool(data)])
    if isinstance(data, (int, np.integer)):
        return torch.LongTensor([int(data)])
    if isinstance(data, (float, np.floating)):
        return torch.FloatTensor([float(data)])
    raise TypeError(f'to_tensor: cannot convert {type(data).__name__} to a tensor')


def _img_to_chw(img: np.ndarray) -> torch.Tensor:
    if img.ndim < 3:
        img = img[..., None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def _require(results: dict, key: str, who: str) -> Any:
    if key not in results:
        raise KeyError(f'{who}: the sample has no {key!r} key (keys: {sorted(results)})')
    return results[key]


@PIPELINES.register_module()
class ToTensor:
    """Convert ``results[key]`` to a tensor for each key."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = list(keys)

    def __call__(self, results: dict) -> dict:
        for key in self.keys:
            results[key] = to_tensor(_require(results, key, 'ToTensor'))
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(keys={self.keys})'


@PIPELINES.register_module()
class ImageToTensor:
    """(H, W[, C]) arrays to (C, H, W) tensors, dtype kept."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = list(keys)

    def __call__(self, results: dict) -> dict:
        for key in self.keys:
            results[key] = _img_to_chw(np.asarray(_require(results, key, 'ImageToTensor')))
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(keys={self.keys})'


@PIPELINES.register_module()
class Transpose:
    """``results[key].transpose(order)`` for each key."""

    def __init__(self, keys: Iterable[str], order: Sequence[int]) -> None:
        self.keys = list(keys)
        self.order = tuple(order)

    def __call__(self, results: dict) -> dict:
        for key in self.keys:
            results[key] = _require(results, key, 'Transpose').transpose(self.order)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(keys={self.keys}, order={self.order})'


@PIPELINES.register_module()
class DefaultFormatBundle:
    """Format the common fields for training.

    - ``img``: (H, W, C) array -> (C, H, W) tensor (float32 after ``Normalize``)
    - ``proposals``, ``gt_bboxes``, ``gt_bboxes_ignore``, ``gt_labels``: tensors
    - ``gt_masks``: kept as a (K, H, W) uint8 numpy array (the heads build targets on the CPU)
    - ``gt_semantic_seg``: (1, H, W) tensor
    """

    def __call__(self, results: dict) -> dict:
        if 'img' in results:
            results['img'] = _img_to_chw(np.asarray(results['img']))
        for key in ('proposals', 'gt_bboxes', 'gt_bboxes_ignore', 'gt_labels'):
            if key in results:
                results[key] = to_tensor(results[key])
        if 'gt_masks' in results:
            results['gt_masks'] = np.ascontiguousarray(results['gt_masks'], dtype=np.uint8)
        if 'gt_semantic_seg' in results:
            results['gt_semantic_seg'] = to_tensor(np.asarray(results['gt_semantic_seg'])[None, ...])
        return results

    def __repr__(self) -> str:
        return self.__class__.__name__


@PIPELINES.register_module()
class Collect:
    """Keep ``keys`` and gather ``meta_keys`` into one dict under ``'img_metas'``.

    mmdet v1 named that entry ``'img_meta'`` (a ``DataContainer``); here it is a plain dict
    per image, called ``'img_metas'`` so that the batched list reads naturally.
    Output: ``{'img_metas': {...}, key: results[key] for key in keys}``.
    """

    def __init__(self, keys: Iterable[str], meta_keys: Iterable[str] = DEFAULT_META_KEYS) -> None:
        self.keys = list(keys)
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        meta = {key: _require(results, key, 'Collect (meta_keys)') for key in self.meta_keys}
        data = {'img_metas': meta}
        for key in self.keys:
            data[key] = _require(results, key, 'Collect')
        return data

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(keys={self.keys}, meta_keys={self.meta_keys})'
