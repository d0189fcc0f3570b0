"""Batch pipeline outputs (the ``collate_fn`` of the data loaders).

Follows mmcv's ``collate`` + ``DataContainer`` as used by mmdet v1:

- ``img``: (3, H, W) tensors zero-padded at the bottom/right to the largest H and W of the
  batch and stacked to (B, 3, H_max, W_max).
- ``img_metas``: list of per-image dicts, **unchanged**: ``pad_shape`` stays the per-image
  value (the original did not update it either; the SOLO heads take their sizes from the
  feature maps and place mask targets at the top-left, so the extra batch padding is harmless).
- ``gt_bboxes``, ``gt_labels``, ``gt_bboxes_ignore``, ``proposals``: lists of tensors.
- ``gt_masks``: list of (K, H, W) uint8 numpy arrays. The original left them at the per-image
  pad shape; by default they are zero-padded here to (K, H_max, W_max) so every mask of a
  batch has the batch input size (bottom/right zeros: the mask targets do not change).
- ``gt_semantic_seg``: padded with ``seg_pad_value`` and stacked to (B, 1, H_max, W_max).
- any other key: list.

A test-time sample from ``MultiScaleFlipAug`` holds lists (one entry per augmentation); such
a batch is collated per augmentation: ``img`` becomes a list of (B, 3, H, W) tensors and
``img_metas`` a list of lists of dicts.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F

_TENSOR_LIST_KEYS = ('gt_bboxes', 'gt_labels', 'gt_bboxes_ignore', 'proposals')


def pad_stack(tensors: Sequence[torch.Tensor], pad_value: float = 0) -> torch.Tensor:
    """Zero-pad (C, H, W) tensors at the bottom/right to the largest H, W and stack them."""
    if len(tensors) == 0:
        raise ValueError('pad_stack: got an empty list of tensors')
    for i, t in enumerate(tensors):
        if not isinstance(t, torch.Tensor) or t.dim() != 3:
            raise ValueError(f"collate: 'img' #{i} must be a (C, H, W) tensor, got "
                             f'{type(t).__name__} {tuple(getattr(t, "shape", ()))}')
        if t.shape[0] != tensors[0].shape[0]:
            raise ValueError(f"collate: 'img' #{i} has {t.shape[0]} channels, #0 has {tensors[0].shape[0]}")
    max_h = max(t.shape[1] for t in tensors)
    max_w = max(t.shape[2] for t in tensors)
    padded = [F.pad(t, (0, max_w - t.shape[2], 0, max_h - t.shape[1]), value=pad_value)
              if t.shape[1:] != (max_h, max_w) else t for t in tensors]
    return torch.stack(padded, dim=0)


def pad_masks(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Zero-pad a (K, h, w) mask array at the bottom/right to (K, height, width)."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"collate: 'gt_masks' must be (K, H, W), got shape {masks.shape}")
    if masks.shape[1:] == (height, width):
        return masks
    out = np.zeros((masks.shape[0], height, width), dtype=masks.dtype)
    out[:, :masks.shape[1], :masks.shape[2]] = masks
    return out


def _collate_flat(batch: Sequence[dict], pad_value: float, pad_masks_to_batch: bool,
                  seg_pad_value: float) -> Dict[str, Any]:
    keys = list(batch[0])
    for i, sample in enumerate(batch):
        if set(sample) != set(keys):
            raise KeyError(f'collate: sample #{i} has keys {sorted(sample)}, sample #0 has {sorted(keys)}')
    out: Dict[str, Any] = {}
    for key in keys:
        values = [s[key] for s in batch]
        if key == 'img':
            out[key] = pad_stack(values, pad_value)
        elif key == 'gt_semantic_seg':
            out[key] = pad_stack([torch.as_tensor(v) for v in values], seg_pad_value)
        elif key in _TENSOR_LIST_KEYS:
            out[key] = [torch.as_tensor(v) for v in values]
        else:
            out[key] = values
    if 'gt_masks' in out and pad_masks_to_batch and 'img' in out:  # after 'img' whatever the order
        h, w = out['img'].shape[-2:]
        out['gt_masks'] = [pad_masks(m, h, w) for m in out['gt_masks']]
    return out


def collate(batch: Sequence[dict], pad_value: float = 0, pad_masks_to_batch: bool = True,
            seg_pad_value: float = 0) -> Dict[str, Any]:
    """Turn a list of pipeline outputs (``Collect`` dicts) into one batch dict (see module doc)."""
    if len(batch) == 0:
        raise ValueError('collate: got an empty batch')
    for i, sample in enumerate(batch):
        if not isinstance(sample, dict):
            raise TypeError(f'collate: sample #{i} must be a dict (a Collect output), '
                            f'got {type(sample).__name__}')
    if isinstance(batch[0].get('img'), list):  # MultiScaleFlipAug output: one entry per aug
        num_augs = len(batch[0]['img'])
        for i, sample in enumerate(batch):
            if not isinstance(sample.get('img'), list) or len(sample['img']) != num_augs:
                raise ValueError(f'collate: test sample #{i} does not have {num_augs} augmentations')
        per_aug = [_collate_flat([{k: v[a] for k, v in s.items()} for s in batch],
                                 pad_value, pad_masks_to_batch, seg_pad_value)
                   for a in range(num_augs)]
        return {key: [d[key] for d in per_aug] for key in per_aug[0]}
    return _collate_flat(batch, pad_value, pad_masks_to_batch, seg_pad_value)


def collate_per_gpu(batch: Sequence[dict], samples_per_gpu: int, **kwargs: Any
                    ) -> List[Dict[str, Any]]:
    """mmcv-style chunking: collate each run of ``samples_per_gpu`` samples separately
    (each chunk padded to its own largest size)."""
    if not isinstance(samples_per_gpu, int) or samples_per_gpu <= 0:
        raise ValueError(f'collate_per_gpu: samples_per_gpu must be a positive int, got {samples_per_gpu!r}')
    return [collate(batch[i:i + samples_per_gpu], **kwargs)
            for i in range(0, len(batch), samples_per_gpu)]


__all__ = ['collate', 'collate_per_gpu', 'pad_stack', 'pad_masks']
