"""Focal and Dice losses against closed forms."""
import math

import pytest
import torch

from mmdet_solo.models.losses import DiceLoss, FocalLoss, dice_loss


def test_focal_loss_closed_form():
    # one cell, two classes: logit 0 (p = 0.5) for the true class 0, logit ln 3 (p = 0.75) for class 1
    logits = torch.tensor([[0.0, math.log(3.0)]])
    loss = FocalLoss(gamma=2.0, alpha=0.25, loss_weight=1.0)(logits, torch.tensor([0]), avg_factor=2.0)
    pos = 0.25 * (1 - 0.5) ** 2 * -math.log(0.5)          # positive term of class 0
    neg = 0.75 * 0.75 ** 2 * -math.log(1 - 0.75)           # negative term of class 1
    assert loss.item() == pytest.approx((pos + neg) / 2.0, rel=1e-6)


def test_focal_loss_background_label_is_all_negative():
    logits = torch.tensor([[0.0, 0.0, 0.0]])
    loss = FocalLoss()(logits, torch.tensor([3]), avg_factor=1.0)   # 3 == num_classes: background
    assert loss.item() == pytest.approx(3 * 0.75 * 0.25 * math.log(2.0), rel=1e-6)


def test_focal_loss_weight_and_reductions():
    logits = torch.randn(5, 4)
    labels = torch.tensor([0, 4, 2, 4, 1])
    base = FocalLoss(reduction='none')(logits, labels)
    assert base.shape == (5, 4)
    assert FocalLoss(reduction='sum', loss_weight=2.0)(logits, labels).item() == pytest.approx(2 * base.sum().item(), rel=1e-6)
    assert FocalLoss()(logits, labels).item() == pytest.approx(base.mean().item(), rel=1e-6)
    with pytest.raises(ValueError):
        FocalLoss(use_sigmoid=False)


def test_dice_loss_closed_form():
    pred = torch.tensor([[[0.5, 1.0], [0.0, 0.0]]])
    target = torch.tensor([[[1, 1], [0, 0]]], dtype=torch.uint8)
    # 1 - 2 * 1.5 / (1.25 + 0.001 + 2 + 0.001)
    expected = 1 - 3.0 / 3.252
    assert dice_loss(pred, target).item() == pytest.approx(expected, rel=1e-6)
    assert DiceLoss(loss_weight=3.0)(pred, target).item() == pytest.approx(3 * expected, rel=1e-6)


def test_dice_loss_empty_target_is_connected_zero():
    pred = torch.zeros(0, 4, 4, requires_grad=True)
    loss = DiceLoss()(pred, torch.zeros(0, 4, 4))
    assert loss.item() == 0.0
    loss.backward()
    assert pred.grad is not None
