"""Deformable convolutions (DCN v1 and v2) on ``torchvision.ops.deform_conv2d``.

Parameter names follow mmdetection v1 / mmcv (``weight``, ``bias``, ``conv_offset.*``) so
published checkpoints load unchanged. Offsets are (dy, dx) pairs per kernel position, the
layout shared by mmdetection's CUDA op and torchvision.
"""
from __future__ import annotations

import math
from contextlib import nullcontext

import torch
import torch.nn as nn
from torch.nn.modules.utils import _pair
from torchvision.ops import deform_conv2d


class _DeformConvBase(nn.Module):
    offset_factor = 2  # offset channels per kernel position and deformable group

    def __init__(self, in_channels: int, out_channels: int, kernel_size=3, stride=1, padding=0,
                 dilation=1, groups: int = 1, deformable_groups: int = 1, bias: bool = False):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f'{type(self).__name__}: in_channels={in_channels} and '
                             f'out_channels={out_channels} must be divisible by groups={groups}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.deformable_groups = deformable_groups
        self.transposed = False
        self.output_padding = (0,)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        k = self.kernel_size[0] * self.kernel_size[1]
        self.conv_offset = nn.Conv2d(in_channels, deformable_groups * self.offset_factor * k,
                                     self.kernel_size, stride=self.stride, padding=self.padding,
                                     dilation=self.dilation, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def _offset_and_mask(self, x: torch.Tensor):
        return self.conv_offset(x), None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset, mask = self._offset_and_mask(x)
        weight, bias = self.weight, self.bias
        device = x.device.type
        in_float32 = nullcontext()
        if torch.is_autocast_enabled(device):
            # torchvision's CPU kernel has no bfloat16/float16 version: under autocast (mixed
            # precision training, --amp) the deformable conv runs in float32, as on CUDA
            x, offset, weight = x.float(), offset.float(), weight.float()
            bias = bias.float() if bias is not None else None
            mask = mask.float() if mask is not None else None
            in_float32 = torch.autocast(device, enabled=False)
        with in_float32:
            return deform_conv2d(x, offset, weight, bias, stride=self.stride,
                                 padding=self.padding, dilation=self.dilation, mask=mask)


def has_deform_conv(model: nn.Module) -> bool:
    """Whether ``model`` has a deformable convolution (DCN) anywhere."""
    return any(isinstance(m, _DeformConvBase) for m in model.modules())


class DeformConvPack(_DeformConvBase):
    """DCN v1: offsets predicted by ``conv_offset`` (2·k² channels), no bias."""

    def __init__(self, *args, bias: bool = False, **kwargs):
        if bias:
            raise ValueError('DeformConvPack (DCN v1) has no bias, as in the original release')
        super().__init__(*args, bias=False, **kwargs)


class ModulatedDeformConvPack(_DeformConvBase):
    """DCN v2: ``conv_offset`` predicts 2·k² offsets then k² modulation logits."""

    offset_factor = 3

    def __init__(self, *args, bias: bool = True, **kwargs):
        super().__init__(*args, bias=bias, **kwargs)

    def _offset_and_mask(self, x: torch.Tensor):
        out = self.conv_offset(x)
        n = out.shape[1] // 3
        return out[:, :2 * n], out[:, 2 * n:].sigmoid()
