"""ResNet backbone with the mmdetection v1 module names (``conv1``, ``bn1``, ``layer1.0.conv1``).

The names equal torchvision's, so ``torchvision://resnet50`` weights and the SOLO release's
checkpoints load unchanged. With DCN, a Bottleneck's ``conv2`` becomes a deformable conv whose
offsets come from ``conv2.conv_offset`` (the mmdet v1 layout).
"""
from __future__ import annotations

import logging
from typing import List, Optional, Sequence, Tuple, Type

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from torch.nn.modules.batchnorm import _BatchNorm

from ...registry import BACKBONES
from ...utils.checkpoint import load_checkpoint
from ..layers import build_conv_layer, build_norm_layer


def _split_dcn(dcn: Optional[dict]) -> Tuple[Optional[dict], bool]:
    """Copy ``dcn`` and take ``fallback_on_stride`` out of it."""
    if dcn is None:
        return None, False
    if not isinstance(dcn, dict) or 'type' not in dcn:
        raise TypeError(f"ResNet: dcn must be None or a dict with a 'type' key "
                        f"(e.g. dict(type='DCN', deformable_groups=1)), got {dcn!r}")
    dcn = dict(dcn)
    return dcn, bool(dcn.pop('fallback_on_stride', False))


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34). ``(B, inplanes, H, W) -> (B, planes, H/stride, W/stride)``."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None, style: str = 'pytorch',
                 with_cp: bool = False, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'), dcn: Optional[dict] = None,
                 groups: int = 1, base_width: int = 64):
        super().__init__()
        if dcn is not None:
            raise NotImplementedError('ResNet: DCN is only supported in Bottleneck blocks '
                                      '(depth 50/101/152), as in the original release')
        if groups != 1:
            raise ValueError(f'BasicBlock supports only groups=1, got groups={groups}')
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, planes, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, planes, postfix=2)
        self.conv1 = build_conv_layer(conv_cfg, inplanes, planes, 3, stride=stride,
                                      padding=dilation, dilation=dilation, bias=False)
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(conv_cfg, planes, planes, 3, padding=1, bias=False)
        self.add_module(self.norm2_name, norm2)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.dilation = dilation
        self.with_cp = with_cp

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    @property
    def last_norm(self) -> nn.Module:
        return self.norm2

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        out += identity   # a norm's output: backward does not read it (as torchvision)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        else:
            out = self._inner_forward(x)
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 block (ResNet-50+; grouped 3x3 for ResNeXt).

    ``style='pytorch'`` puts the stride in the 3x3 conv (``conv2``), ``'caffe'`` in the first 1x1
    (``conv1``). The inner width is ``planes`` for ``groups == 1`` and
    ``floor(planes * base_width / 64) * groups`` otherwise (the original ResNeXt formula).
    ``(B, inplanes, H, W) -> (B, 4 * planes, H/stride, W/stride)``.

    ``dcn``: the config of ``conv2`` (``dict(type='DCN'|'DCNv2', deformable_groups=1)``). With
    ``fallback_on_stride=True``, a block whose 3x3 conv is strided keeps a plain conv. (In the
    original the flag is popped from a dict shared by all blocks, so only the first block built
    would fall back; no released config sets it.)
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None, style: str = 'pytorch',
                 with_cp: bool = False, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'), dcn: Optional[dict] = None,
                 groups: int = 1, base_width: int = 4):
        super().__init__()
        if style not in ('pytorch', 'caffe'):
            raise ValueError(f"ResNet: style must be 'pytorch' or 'caffe', got {style!r}")
        dcn, fallback_on_stride = _split_dcn(dcn)
        self.inplanes = inplanes
        self.planes = planes
        self.stride = stride
        self.dilation = dilation
        self.style = style
        self.with_cp = with_cp
        self.conv1_stride, self.conv2_stride = (1, stride) if style == 'pytorch' else (stride, 1)
        width = planes if groups == 1 else (planes * base_width // 64) * groups
        self.width = width

        self.norm1_name, norm1 = build_norm_layer(norm_cfg, width, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, width, postfix=2)
        self.norm3_name, norm3 = build_norm_layer(norm_cfg, planes * self.expansion, postfix=3)

        self.conv1 = build_conv_layer(conv_cfg, inplanes, width, kernel_size=1,
                                      stride=self.conv1_stride, bias=False)
        self.add_module(self.norm1_name, norm1)
        self.with_dcn = dcn is not None and not (fallback_on_stride and self.conv2_stride != 1)
        if self.with_dcn and conv_cfg is not None:
            raise ValueError(f'ResNet: conv_cfg must be None when dcn is used, got {conv_cfg!r}')
        self.conv2 = build_conv_layer(dcn if self.with_dcn else conv_cfg, width, width,
                                      kernel_size=3, stride=self.conv2_stride, padding=dilation,
                                      dilation=dilation, groups=groups, bias=False)
        self.add_module(self.norm2_name, norm2)
        self.conv3 = build_conv_layer(conv_cfg, width, planes * self.expansion, kernel_size=1,
                                      bias=False)
        self.add_module(self.norm3_name, norm3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    @property
    def norm3(self) -> nn.Module:
        return getattr(self, self.norm3_name)

    @property
    def last_norm(self) -> nn.Module:
        return self.norm3

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        out += identity   # a norm's output: backward does not read it (as torchvision)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        else:
            out = self._inner_forward(x)
        return self.relu(out)


def make_res_layer(block: Type[nn.Module], inplanes: int, planes: int, blocks: int,
                   stride: int = 1, dilation: int = 1, style: str = 'pytorch',
                   with_cp: bool = False, conv_cfg: Optional[dict] = None,
                   norm_cfg: dict = dict(type='BN'), dcn: Optional[dict] = None,
                   groups: int = 1, base_width: int = 4) -> nn.Sequential:
    """One stage of ``blocks`` blocks; the first strides and gets a 1x1 ``downsample`` if needed."""
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        # the projection shortcut always strides in its 1x1 conv (both styles)
        downsample = nn.Sequential(
            build_conv_layer(conv_cfg, inplanes, planes * block.expansion, kernel_size=1,
                             stride=stride, bias=False),
            build_norm_layer(norm_cfg, planes * block.expansion)[1])
    kwargs = dict(dilation=dilation, style=style, with_cp=with_cp, conv_cfg=conv_cfg,
                  norm_cfg=norm_cfg, dcn=dcn, groups=groups, base_width=base_width)
    layers = [block(inplanes, planes, stride=stride, downsample=downsample, **kwargs)]
    for _ in range(1, blocks):
        layers.append(block(planes * block.expansion, planes, stride=1, **kwargs))
    return nn.Sequential(*layers)


@BACKBONES.register_module()
class ResNet(nn.Module):
    """ResNet-18/34/50/101/152 (mmdetection v1 semantics and parameter names).

    Args:
        depth: 18, 34, 50, 101 or 152.
        in_channels: input image channels.
        num_stages: 1..4 residual stages.
        strides / dilations: per stage, of the first block.
        out_indices: stages whose outputs ``forward`` returns (0-based).
        style: ``'pytorch'`` (stride in the 3x3 conv) or ``'caffe'`` (stride in the first 1x1).
        frozen_stages: freeze the stem and stages ``1..frozen_stages`` (``requires_grad=False``
            and eval mode, also after ``train()``); ``-1`` freezes nothing, ``0`` the stem only.
        conv_cfg / norm_cfg: conv and norm configs (``BN``, ``SyncBN``, ``GN``).
        norm_eval: keep every BatchNorm (running statistics) in eval mode during training.
        dcn / stage_with_dcn: deformable ``conv2`` in the Bottlenecks of the flagged stages.
        with_cp: gradient checkpointing of each block (saves memory, costs time).
        zero_init_residual: zero-init the last norm of every block in ``init_weights``.

    Attributes:
        out_channels: channels of each returned feature map, e.g. ``[256, 512, 1024, 2048]``.
        out_strides: their strides w.r.t. the input, e.g. ``[4, 8, 16, 32]``.
        feature_info: ``[{'num_chs', 'reduction', 'module'}]`` per returned map (timm-like).

    ``forward``: ``(B, in_channels, H, W)`` -> tuple of ``(B, out_channels[i], ~H/s_i, ~W/s_i)``.
    """

    arch_settings = {
        18: (BasicBlock, (2, 2, 2, 2)),
        34: (BasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }
    default_base_width = 64  # BasicBlock / plain Bottleneck: width == planes

    def __init__(self, depth: int, in_channels: int = 3, num_stages: int = 4,
                 strides: Sequence[int] = (1, 2, 2, 2), dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Sequence[int] = (0, 1, 2, 3), style: str = 'pytorch',
                 frozen_stages: int = -1, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True), norm_eval: bool = True,
                 dcn: Optional[dict] = None,
                 stage_with_dcn: Sequence[bool] = (False, False, False, False),
                 with_cp: bool = False, zero_init_residual: bool = True,
                 groups: int = 1, base_width: Optional[int] = None):
        super().__init__()
        name = type(self).__name__
        if depth not in self.arch_settings:
            raise KeyError(f'{name}: invalid depth {depth}; expected one of '
                           f'{sorted(self.arch_settings)}')
        if not 1 <= num_stages <= 4:
            raise ValueError(f'{name}: num_stages must be in 1..4, got {num_stages}')
        if len(strides) != num_stages or len(dilations) != num_stages:
            raise ValueError(f'{name}: strides {tuple(strides)} and dilations {tuple(dilations)} '
                             f'must both have num_stages={num_stages} entries')
        if not out_indices or min(out_indices) < 0 or max(out_indices) >= num_stages:
            raise ValueError(f'{name}: out_indices {tuple(out_indices)} must be in '
                             f'0..{num_stages - 1}')
        if style not in ('pytorch', 'caffe'):
            raise ValueError(f"{name}: style must be 'pytorch' or 'caffe', got {style!r}")
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'{name}: frozen_stages must be in -1..{num_stages}, '
                             f'got {frozen_stages}')
        if dcn is not None and len(stage_with_dcn) != num_stages:
            raise ValueError(f'{name}: stage_with_dcn {tuple(stage_with_dcn)} must have '
                             f'num_stages={num_stages} entries')
        self.depth = depth
        self.num_stages = num_stages
        self.strides = tuple(strides)
        self.dilations = tuple(dilations)
        self.out_indices = tuple(out_indices)
        self.style = style
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.norm_eval = norm_eval
        self.dcn = dcn
        self.stage_with_dcn = tuple(stage_with_dcn)
        self.with_cp = with_cp
        self.zero_init_residual = zero_init_residual
        self.groups = groups
        self.base_width = self.default_base_width if base_width is None else base_width
        self.block, stage_blocks = self.arch_settings[depth]
        self.stage_blocks = stage_blocks[:num_stages]

        self._make_stem_layer(in_channels)
        self.res_layers: List[str] = []
        inplanes, stride_so_far = 64, 4
        stage_channels, stage_strides = [], []
        for i, num_blocks in enumerate(self.stage_blocks):
            planes = 64 * 2 ** i
            layer = make_res_layer(
                self.block, inplanes, planes, num_blocks, stride=self.strides[i],
                dilation=self.dilations[i], style=style, with_cp=with_cp, conv_cfg=conv_cfg,
                norm_cfg=norm_cfg, dcn=dcn if (dcn is not None and stage_with_dcn[i]) else None,
                groups=groups, base_width=self.base_width)
            inplanes = planes * self.block.expansion
            stride_so_far *= self.strides[i]
            stage_channels.append(inplanes)
            stage_strides.append(stride_so_far)
            self.add_module(f'layer{i + 1}', layer)
            self.res_layers.append(f'layer{i + 1}')
        self.out_channels: List[int] = [stage_channels[i] for i in self.out_indices]
        self.out_strides: List[int] = [stage_strides[i] for i in self.out_indices]
        self.feature_info = [dict(num_chs=c, reduction=s, module=f'layer{i + 1}')
                             for i, c, s in zip(self.out_indices, self.out_channels,
                                                self.out_strides)]
        self.feat_dim = stage_channels[-1]
        self.init_weights()
        self._freeze_stages()

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    def _make_stem_layer(self, in_channels: int) -> None:
        self.conv1 = build_conv_layer(self.conv_cfg, in_channels, 64, kernel_size=7, stride=2,
                                      padding=3, bias=False)
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, 64, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def _freeze_stages(self) -> None:
        frozen = []
        if self.frozen_stages >= 0:
            frozen += [self.conv1, self.norm1]
        frozen += [getattr(self, f'layer{i}') for i in range(1, self.frozen_stages + 1)]
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def init_weights(self, pretrained: Optional[str] = None) -> None:
        """Random init (kaiming convs, unit norms, zero DCN offsets, zero last norm per block when
        ``zero_init_residual``), then, if ``pretrained`` is a path or ``torchvision://name``,
        load it on top (non-strict; ``fc.*`` ignored; problems are logged)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (_BatchNorm, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for name, m in self.named_modules():
            if name.endswith('conv_offset'):
                nn.init.zeros_(m.weight)
                nn.init.zeros_(m.bias)
        if self.zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.last_norm.weight)
        if pretrained is None:
            return
        if not isinstance(pretrained, str):
            raise TypeError(f'{type(self).__name__}.init_weights: pretrained must be a str or '
                            f'None, got {type(pretrained).__name__}')
        load_checkpoint(self, pretrained, strict=False, ignore_prefixes=('fc.',),
                        logger=logging.getLogger(__name__))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.maxpool(self.relu(self.norm1(self.conv1(x))))
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'ResNet':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
