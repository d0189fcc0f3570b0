"""ResNet-D ("ResNet-vd", Bag of Tricks): deep 3x3 stem and average-pool shortcuts.

Used by PaddleDetection's SOLOv2 R101-vd and enhanced light R50-vd-DCN models. Names follow
mmdetection's ``ResNetV1d``: ``stem.{0,1,3,4,6,7}`` (conv, BN, ReLU x3) and, in the first block
of a strided stage, ``downsample.0`` AvgPool(stride), ``downsample.1`` 1x1 conv (stride 1),
``downsample.2`` BN.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn as nn

from ...registry import BACKBONES
from ..layers.conv_module import build_conv_layer, build_norm_layer
from .resnet import ResNet


@BACKBONES.register_module()
class ResNetV1d(ResNet):
    """ResNet with a deep stem (3x3 convs 3-32-32-64) and avg-down shortcuts.

    Arguments are those of :class:`ResNet`; ``style`` stays ``'pytorch'`` (stride in the 3x3).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for i, layer_name in enumerate(self.res_layers):
            first = getattr(self, layer_name)[0]
            stride = self.strides[i]
            if first.downsample is None or stride == 1:
                continue
            conv, norm = first.downsample[0], first.downsample[1]
            first.downsample = nn.Sequential(
                nn.AvgPool2d(kernel_size=stride, stride=stride, ceil_mode=True,
                             count_include_pad=False),
                build_conv_layer(self.conv_cfg, conv.in_channels, conv.out_channels,
                                 kernel_size=1, stride=1, bias=False),
                norm)
        self.init_weights()
        self._freeze_stages()

    def _make_stem_layer(self, in_channels: int) -> None:
        layers = []
        for cin, cout, stride in ((in_channels, 32, 2), (32, 32, 1), (32, 64, 1)):
            layers += [build_conv_layer(self.conv_cfg, cin, cout, kernel_size=3, stride=stride,
                                        padding=1, bias=False),
                       build_norm_layer(self.norm_cfg, cout)[1], nn.ReLU(inplace=True)]
        self.stem = nn.Sequential(*layers)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def _freeze_stages(self) -> None:
        frozen = []
        if self.frozen_stages >= 0:
            frozen.append(self.stem)
        frozen += [getattr(self, f'layer{i}') for i in range(1, self.frozen_stages + 1)]
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.maxpool(self.stem(x))
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
