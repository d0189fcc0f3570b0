"""Matrix NMS (SOLOv2, Wang et al. 2020): parallel, class-aware soft suppression of masks.

This is the PyTorch reference implementation; it follows the original release exactly for
well-formed input. Two degenerate cases that make the original produce NaN are defined here:

* a mask of zero area has IoU 0 with every mask (the original divides 0 by 0);
* with ``kernel='linear'`` a mask that duplicates a higher-scored one of its class (its
  compensation IoU is 1) no longer suppresses anything (the original divides by zero).
"""
from __future__ import annotations

from typing import Optional

import torch


def _check_inputs(seg_masks: torch.Tensor, cate_labels: torch.Tensor, cate_scores: torch.Tensor,
                  kernel: str, sum_masks: Optional[torch.Tensor]) -> None:
    if kernel not in ('gaussian', 'linear'):
        raise ValueError(f"matrix_nms: kernel must be 'gaussian' or 'linear', got {kernel!r}")
    if seg_masks.dim() != 3:
        raise ValueError(f'matrix_nms: seg_masks must be (N, H, W), got shape {tuple(seg_masks.shape)}')
    n = seg_masks.shape[0]
    for name, t in (('cate_labels', cate_labels), ('cate_scores', cate_scores), ('sum_masks', sum_masks)):
        if t is None:
            continue
        if t.dim() != 1 or t.shape[0] != n:
            raise ValueError(f'matrix_nms: {name} must have shape ({n},) to match seg_masks, '
                             f'got {tuple(t.shape)}')
        if t.device != seg_masks.device:
            raise ValueError(f'matrix_nms: {name} is on {t.device} but seg_masks is on {seg_masks.device}')
    if cate_scores.is_floating_point() is False:
        raise TypeError(f'matrix_nms: cate_scores must be floating point, got {cate_scores.dtype}')


def matrix_nms(seg_masks: torch.Tensor, cate_labels: torch.Tensor, cate_scores: torch.Tensor,
               kernel: str = 'gaussian', sigma: float = 2.0,
               sum_masks: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Decay the scores of masks that overlap higher-scored masks of the same class.

    Args:
        seg_masks: (N, H, W) binary masks (bool, uint8 or float 0/1), sorted by descending score.
        cate_labels: (N,) class of each mask.
        cate_scores: (N,) scores, descending.
        kernel: ``'gaussian'`` (decay ``exp(-sigma * iou**2)``) or ``'linear'`` (``1 - iou``).
        sigma: the gaussian kernel's coefficient (it multiplies, as in the original).
        sum_masks: (N,) mask areas, computed when not given.

    Returns:
        (N,) decayed scores, same order and dtype as ``cate_scores``.
    """
    _check_inputs(seg_masks, cate_labels, cate_scores, kernel, sum_masks)
    n = seg_masks.shape[0]
    if n == 0:
        return cate_scores.new_zeros((0,))
    flat = seg_masks.reshape(n, -1).float()
    if sum_masks is None:
        sum_masks = flat.sum(1)
    sum_masks = sum_masks.float()
    inter = flat @ flat.t()                                     # (N, N)
    union = sum_masks[:, None] + sum_masks[None, :] - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))
    same_class = cate_labels[:, None] == cate_labels[None, :]
    # decay_iou[i, j]: IoU of a lower-scored mask j with a higher-scored mask i (i < j) of its class
    decay_iou = (iou * same_class).triu(diagonal=1)
    # compensation of i: its own largest IoU with any higher-scored mask of its class
    compensate_iou = decay_iou.max(0).values[:, None]            # (N, 1), indexed by row i
    if kernel == 'gaussian':
        ratio = torch.exp(-sigma * decay_iou ** 2) / torch.exp(-sigma * compensate_iou ** 2)
    else:
        ratio = (1 - decay_iou) / (1 - compensate_iou)
        ratio = torch.nan_to_num(ratio, nan=float('inf'))
    decay = ratio.min(0).values
    return cate_scores * decay.to(cate_scores.dtype)
