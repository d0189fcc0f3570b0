"""Post-processing with static shapes, for an exported graph (ONNX): the same steps as the
PyTorch path (``BaseGridHead.predict`` → ``segm_postprocess``) up to, not including, pasting
the masks at the image size, with every shape fixed by the model and the input size:

1. per image the ``max_candidates`` best (cell, class) scores (``topk``), valid where above
   ``score_thr`` (the PyTorch path takes all of them: the same when at most
   ``max_candidates`` pass; see docs/DEPLOYMENT.md, "The candidate cap");
2. their soft masks at 1/4 of the padded input (the head's ``_candidate_masks_static``);
3. the stride filter and the maskness rescoring, as validity masks;
4. the ``nms_pre`` best rescored candidates, Matrix NMS on the (B, nms_pre, nms_pre) batch
   (the formula of ``ops.matrix_nms_torch``; invalid entries take part in nothing);
5. ``update_thr``, then the ``max_per_img`` best, padded.

Outputs (``N = min(max_per_img, nms_pre, K)``): ``scores`` (B, N) float32 (0 in padding),
``labels`` (B, N) int64 (-1 in padding), ``masks`` (B, N, H/4, W/4) float32 soft masks,
``counts`` (B,) int64; the valid entries of an image are its first ``counts[i]``, by
descending score. :func:`mmdet_solo.models.heads.postprocess.paste_masks` turns them into
the image's masks, as in the PyTorch path.
"""
from __future__ import annotations

from typing import NamedTuple, Tuple

import torch
import torch.nn as nn

from ..models.heads.postprocess import read_test_cfg
from ..models.heads.utils import (batched_take, flatten_cate_preds, level_strides_per_cell,
                                  points_nms)

DEFAULT_MAX_CANDIDATES = 1000
OUTPUT_NAMES = ('scores', 'labels', 'masks', 'counts')


def matrix_nms_batched(masks: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor,
                       areas: torch.Tensor, valid: torch.Tensor, kernel: str = 'gaussian',
                       sigma: float = 2.0) -> torch.Tensor:
    """Matrix NMS of a batch: ``ops.matrix_nms_torch`` on each image's valid entries.

    ``masks`` (B, N, P) binary float, sorted by descending score with the invalid entries
    last; ``labels``, ``scores``, ``areas``, ``valid`` (B, N). Invalid entries neither decay
    nor are decayed (they add ratios of 1 to a minimum that is at most 1 already).
    """
    inter = masks @ masks.transpose(1, 2)                              # (B, N, N)
    union = areas[:, :, None] + areas[:, None, :] - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))
    same = (labels[:, :, None] == labels[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    decay_iou = (iou * same.float()).triu(diagonal=1)
    compensate_iou = decay_iou.max(1).values[:, :, None]               # (B, N, 1), row i
    if kernel == 'gaussian':
        ratio = torch.exp(-sigma * decay_iou ** 2) / torch.exp(-sigma * compensate_iou ** 2)
    else:
        ratio = (1 - decay_iou) / (1 - compensate_iou)
        ratio = torch.where(torch.isnan(ratio), torch.full_like(ratio, float('inf')), ratio)
    return scores * ratio.min(1).values


def static_postprocess(head: nn.Module, outputs: NamedTuple, cfg, max_candidates: int
                       ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(scores, labels, masks, counts)`` of a batch from the head's raw ``outputs``
    (see the module docstring); ``cfg`` is the test_cfg."""
    all_scores = flatten_cate_preds([points_nms(p.sigmoid()) for p in outputs.cate_preds])
    num_cells, num_classes = all_scores.shape[1], all_scores.shape[2]
    strides = level_strides_per_cell(head.seg_num_grids, head.strides, all_scores.device)
    k = min(int(max_candidates), num_cells * num_classes)
    scores, idx = all_scores.flatten(1).topk(k, dim=1)                 # (B, K), descending
    cells = torch.div(idx, num_classes, rounding_mode='floor')
    labels = idx - cells * num_classes
    valid = scores > read_test_cfg(cfg, 'score_thr')

    masks = head._candidate_masks_static(outputs, cells)                # (B, K, h, w)
    mask_thr = read_test_cfg(cfg, 'mask_thr')
    bin_masks = masks > mask_thr
    areas = bin_masks.flatten(2).sum(2, dtype=torch.int32).float()
    soft_sums = (masks * bin_masks.float()).sum((2, 3))
    valid = valid & (areas > strides[cells])
    scores = scores * (soft_sums / areas.clamp(min=1))
    scores = torch.where(valid, scores, torch.full_like(scores, -1.0))

    n_pre = min(int(read_test_cfg(cfg, 'nms_pre')), k)
    scores, order = scores.topk(n_pre, dim=1)
    valid, labels, areas = (batched_take(t, order) for t in (valid, labels, areas))
    flat_bin = batched_take(bin_masks.flatten(2), order).float()       # (B, n_pre, h*w)
    scores = matrix_nms_batched(flat_bin, labels, scores, areas, valid,
                                kernel=read_test_cfg(cfg, 'kernel'),
                                sigma=read_test_cfg(cfg, 'sigma'))
    valid = valid & (scores >= read_test_cfg(cfg, 'update_thr'))
    scores = torch.where(valid, scores, torch.full_like(scores, -1.0))

    n_out = min(int(read_test_cfg(cfg, 'max_per_img')), n_pre)
    scores, final = scores.topk(n_out, dim=1)
    valid = batched_take(valid, final)
    labels = torch.where(valid, batched_take(labels, final), torch.full_like(scores, -1).long())
    scores = torch.where(valid, scores, torch.zeros_like(scores))
    masks = batched_take(masks, batched_take(order, final))
    return scores, labels, masks, valid.sum(1)


class ExportableDetector(nn.Module):
    """``img`` (B, 3, H, W), normalised and padded to multiples of 32 → ``(scores, labels,
    masks, counts)``: the detector's network and :func:`static_postprocess` in one module."""

    def __init__(self, detector: nn.Module, max_candidates: int = DEFAULT_MAX_CANDIDATES) -> None:
        super().__init__()
        if not hasattr(detector.bbox_head, '_candidate_masks_static'):
            raise TypeError(f'{type(detector.bbox_head).__name__} has no static post-processing '
                            '(_candidate_masks_static); it cannot be exported')
        if not isinstance(max_candidates, int) or max_candidates < 1:
            raise ValueError(f'max_candidates must be an int >= 1, got {max_candidates!r}')
        self.detector = detector
        self.max_candidates = max_candidates

    def forward(self, img: torch.Tensor):
        outputs = self.detector.forward_heads(self.detector.extract_feat(img))
        return static_postprocess(self.detector.bbox_head, outputs, self.detector.test_cfg,
                                  self.max_candidates)
