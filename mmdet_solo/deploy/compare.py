"""Compare two sets of detections of one image (exported model vs PyTorch): the check of
``pytorch2onnx.py --verify``, the tests and ``benchmarks/onnx_matrix.py``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from ..structures import InstanceResult

SCORE_TOL = 1e-3
MIN_MASK_IOU = 0.99
MAX_COUNT_DIFF = 2


@dataclass
class Comparison:
    """``matched``: reference instances with a counterpart of the same label, a score within
    ``SCORE_TOL`` and a mask IoU >= ``MIN_MASK_IOU``; the rest are ``unmatched_*``."""

    num_ref: int
    num_got: int
    matched: int
    unmatched_ref: int
    unmatched_got: int
    max_score_diff: float   # over the matched pairs (0 when none)
    min_mask_iou: float     # over the matched pairs (1 when none)

    @property
    def ok(self) -> bool:
        return (abs(self.num_ref - self.num_got) <= MAX_COUNT_DIFF
                and self.unmatched_ref <= MAX_COUNT_DIFF and self.unmatched_got <= MAX_COUNT_DIFF)

    def __str__(self) -> str:
        return (f'{self.num_ref} vs {self.num_got} instances, {self.matched} matched (max score '
                f'diff {self.max_score_diff:.2e}, min mask IoU {self.min_mask_iou:.4f}), '
                f'unmatched {self.unmatched_ref}/{self.unmatched_got}')


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def compare_results(ref: InstanceResult, got: InstanceResult) -> Comparison:
    """Match each reference instance, by descending score, to the best unused instance of
    ``got`` (same label, score within ``SCORE_TOL``, highest mask IoU, at least
    ``MIN_MASK_IOU``). A diagnostic: loops over the instances of one image."""
    used = np.zeros(len(got), bool)
    diffs, ious = [], []
    for i in range(len(ref)):
        close = np.nonzero(~used & (got.labels == ref.labels[i])
                           & (np.abs(got.scores - ref.scores[i]) <= SCORE_TOL))[0]
        best, best_iou = -1, MIN_MASK_IOU
        for j in close:
            iou = mask_iou(ref.masks[i], got.masks[j])
            if iou >= best_iou:
                best, best_iou = j, iou
        if best >= 0:
            used[best] = True
            diffs.append(abs(float(got.scores[best]) - float(ref.scores[i])))
            ious.append(best_iou)
    matched = len(diffs)
    return Comparison(len(ref), len(got), matched, len(ref) - matched, len(got) - matched,
                      max(diffs, default=0.0), min(ious, default=1.0))


def compare_all(refs: Sequence[InstanceResult], gots: Sequence[InstanceResult]):
    """Per image :func:`compare_results`; ``(all ok, comparisons)``."""
    if len(refs) != len(gots):
        raise ValueError(f'compare_all: {len(refs)} reference results but {len(gots)} results')
    comps = [compare_results(r, g) for r, g in zip(refs, gots)]
    return all(c.ok for c in comps), comps


def spread_head_outputs(model: nn.Module, seed: int = 0) -> None:
    """For tests and benchmarks with random weights: redraw the head's output convs (seeded),
    category biases ~ N(-2, 0.5), weights std 0.05, so that scores spread over (0, 1) and the
    masks vary (at initialisation every score is ~0.01, the prior, below ``score_thr``)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.bbox_head.named_modules():
            last = name.split('.')[0]
            if not isinstance(m, nn.Conv2d) or last not in (
                    'solo_cate', 'dsolo_cate', 'solo_kernel', 'solo_ins_list',
                    'dsolo_ins_list_x', 'dsolo_ins_list_y'):
                continue
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.05)
            if m.bias is not None:
                shift = -2.0 if 'cate' in last else 0.0
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.5 + shift)
