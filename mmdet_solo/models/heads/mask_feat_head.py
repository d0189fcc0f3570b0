"""SOLOv2's unified mask feature: FPN levels P2–P5 fused at 1/4 resolution."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn as nn

from ...registry import HEADS
from ..layers import ConvModule, resolve_conv_bias
from ..layers.inplace import accumulate
from .utils import coord_features


@HEADS.register_module()
class MaskFeatHead(nn.Module):
    """Level ``i`` gets ``max(i, 1)`` 3x3 convs, each but level 0's followed by a bilinear x2
    upsample; the levels are summed and a 1x1 conv (+norm, ReLU) gives ``num_classes`` channels
    (the original's name for the mask-feature width E). CoordConv channels are appended to the
    deepest input (P5), as in the original.

    ``conv_bias`` is every conv's bias: ``'auto'`` (mmcv's rule: none when ``norm_cfg`` is set;
    the original), ``True``/``False``, or ``'dcn'`` (only when ``conv_cfg`` is deformable, as
    PaddleDetection's DCNv2 mask-feature convs).

    Input: ``end_level - start_level + 1`` maps (B, in_channels, H/2^i, W/2^i); output (B, E, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, start_level: int, end_level: int,
                 num_classes: int, conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 conv_bias: Union[str, bool] = 'auto'):
        super().__init__()
        bias = resolve_conv_bias(conv_bias, conv_cfg, 'MaskFeatHead')
        if not 0 <= start_level <= end_level:
            raise ValueError(f'MaskFeatHead: need 0 <= start_level <= end_level, got '
                             f'{start_level}, {end_level}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.start_level = start_level
        self.end_level = end_level
        self.num_classes = num_classes
        num_inputs = end_level - start_level + 1

        def conv(cin: int, cout: int, k: int = 3) -> ConvModule:
            return ConvModule(cin, cout, k, padding=k // 2, bias=bias, conv_cfg=conv_cfg,
                              norm_cfg=norm_cfg, inplace=False)

        self.convs_all_levels = nn.ModuleList()
        for idx, i in enumerate(range(start_level, end_level + 1)):
            level = nn.Sequential()
            with_coord = idx == num_inputs - 1 and idx > 0
            if i == 0:
                level.add_module('conv0', conv(in_channels, out_channels))
            for j in range(i):
                cin = out_channels if j > 0 else in_channels + (2 if with_coord else 0)
                level.add_module(f'conv{j}', conv(cin, out_channels))
                level.add_module(f'upsample{j}', nn.Upsample(scale_factor=2, mode='bilinear',
                                                             align_corners=False))
            self.convs_all_levels.append(level)
        self.conv_pred = nn.Sequential(
            ConvModule(out_channels, num_classes, 1, padding=0, bias=bias, conv_cfg=conv_cfg,
                       norm_cfg=norm_cfg))

    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(inputs) != len(self.convs_all_levels):
            raise ValueError(f'MaskFeatHead expects {len(self.convs_all_levels)} feature maps '
                             f'(levels {self.start_level}..{self.end_level}), got {len(inputs)}')
        last = len(inputs) - 1
        out = self.convs_all_levels[0](inputs[0])
        for i in range(1, len(inputs)):
            x = inputs[i]
            if i == last:
                x = torch.cat([x, coord_features(x)], 1)
            out = accumulate(out, self.convs_all_levels[i](x))
        return self.conv_pred(out)
