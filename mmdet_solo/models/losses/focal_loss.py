"""Sigmoid focal loss (Lin et al. 2017) as used for SOLO's category branch."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import LOSSES


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0,
                       alpha: float = 0.25) -> torch.Tensor:
    """Element-wise focal loss. ``logits`` and ``targets`` (0/1) are (N, C); returns (N, C)."""
    targets = targets.to(logits.dtype)
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction='none')
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * (1 - p_t).pow(gamma) * ce


@LOSSES.register_module()
class FocalLoss(nn.Module):
    """Focal loss over (N, C) logits with integer labels (N,); label ``C`` is background.

    ``avg_factor`` divides the summed loss (SOLO uses number of positive cells + 1).
    """

    def __init__(self, use_sigmoid: bool = True, gamma: float = 2.0, alpha: float = 0.25,
                 reduction: str = 'mean', loss_weight: float = 1.0):
        super().__init__()
        if not use_sigmoid:
            raise ValueError('FocalLoss: only use_sigmoid=True is supported (as in the original)')
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f"FocalLoss: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
        self.use_sigmoid = use_sigmoid
        self.gamma = gamma
        self.alpha = alpha
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, labels: torch.Tensor,
                avg_factor: Optional[float] = None) -> torch.Tensor:
        num_classes = pred.shape[1]
        # one-hot with an extra background column that is then dropped
        onehot = F.one_hot(labels.long(), num_classes + 1)[:, :num_classes]
        loss = sigmoid_focal_loss(pred.float(), onehot, self.gamma, self.alpha)
        if self.reduction == 'none':
            return self.loss_weight * loss
        total = loss.sum()
        if avg_factor is not None:
            total = total / avg_factor
        elif self.reduction == 'mean':
            total = total / max(loss.numel(), 1)
        return self.loss_weight * total
