"""Fold inference-time BatchNorm layers into the convolutions before them."""
from __future__ import annotations

import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fuse_conv_bn(module: nn.Module) -> int:
    """Fold every ``BatchNorm2d`` registered right after an ``nn.Conv2d`` (in the same parent)
    into that convolution, in place, and replace it by ``nn.Identity``; returns how many.

    Inference only: the fused convolution computes ``bn(conv(x))`` with the running statistics
    (the same function up to float rounding, ~1e-6 relative), one pass over the activations
    less per layer. The registration order of the children is the order the ResNet blocks apply
    them in (``conv1``/``bn1``, ``downsample.0``/``downsample.1``), as mmcv's ``fuse_conv_bn``
    assumes. Deformable convolutions are not ``nn.Conv2d`` and keep their BatchNorm. The
    state dict changes (BatchNorm keys disappear): do not save a fused model as a checkpoint.
    """
    if module.training:
        raise RuntimeError('fuse_conv_bn: the model must be in eval mode (BatchNorm running '
                           'statistics are folded); call model.eval() first')
    fused = 0
    prev_name, prev = None, None
    for name, child in list(module.named_children()):
        if (type(child) is nn.BatchNorm2d and type(prev) is nn.Conv2d
                and child.track_running_stats and child.running_mean is not None):
            setattr(module, prev_name, fuse_conv_bn_eval(prev, child))
            setattr(module, name, nn.Identity())
            fused += 1
        else:
            fused += fuse_conv_bn(child)
        prev_name, prev = name, child
    return fused
