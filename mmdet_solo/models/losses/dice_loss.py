"""Dice loss of SOLO's mask branch: ``1 - 2Σpt / (Σp² + 1e-3 + Σt² + 1e-3)`` per mask."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from ...registry import LOSSES


def dice_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Per-mask dice loss. ``pred`` (probabilities) and ``target`` are (K, H, W); returns (K,)."""
    pred = pred.reshape(pred.shape[0], -1)
    target = target.reshape(target.shape[0], -1).to(pred.dtype)
    inter = (pred * target).sum(1)
    denom = ((pred * pred).sum(1) + eps) + ((target * target).sum(1) + eps)
    return 1 - 2 * inter / denom


@LOSSES.register_module()
class DiceLoss(nn.Module):
    """Mean dice loss over all mask targets times ``loss_weight`` (3.0 in every SOLO config).

    With no targets it returns a zero that is still connected to ``pred`` (so every rank of a
    distributed run keeps the same graph).
    """

    def __init__(self, use_sigmoid: bool = True, loss_weight: float = 3.0, eps: float = 1e-3):
        super().__init__()
        self.use_sigmoid = use_sigmoid
        self.loss_weight = loss_weight
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                avg_factor: Optional[float] = None) -> torch.Tensor:
        """``pred``: (K, H, W) probabilities (already passed through a sigmoid). The summed
        loss is divided by ``avg_factor`` (default K, i.e. the mean)."""
        if avg_factor is None:
            avg_factor = pred.shape[0]
        if pred.shape[0] == 0 or avg_factor == 0:
            return pred.sum() * 0.0
        return dice_loss(pred.float(), target, self.eps).sum() / avg_factor * self.loss_weight
