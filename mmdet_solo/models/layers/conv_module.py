"""Conv + norm + activation block with the mmdetection v1 child names (``conv``, ``gn``/``bn``)."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn as nn

from .deform_conv import DeformConvPack, ModulatedDeformConvPack

CONV_LAYERS = {'Conv': nn.Conv2d, 'DCN': DeformConvPack, 'DCNv2': ModulatedDeformConvPack}
# norm type -> (child-module name used in checkpoints, class)
NORM_LAYERS = {'BN': ('bn', nn.BatchNorm2d), 'SyncBN': ('bn', nn.SyncBatchNorm),
               'GN': ('gn', nn.GroupNorm)}


def build_conv_layer(cfg: Optional[dict], *args, **kwargs) -> nn.Module:
    """Build a conv from ``dict(type='Conv'|'DCN'|'DCNv2', ...)``; ``None`` means Conv."""
    cfg = dict(type='Conv') if cfg is None else dict(cfg)
    layer_type = cfg.pop('type', 'Conv')
    if layer_type not in CONV_LAYERS:
        raise KeyError(f"conv_cfg type '{layer_type}' is unknown; expected one of {sorted(CONV_LAYERS)}")
    if layer_type == 'Conv':
        cfg.pop('deformable_groups', None)
        cfg.pop('fallback_on_stride', None)
    else:
        cfg.pop('fallback_on_stride', None)
        cfg.pop('modulated', None)
    return CONV_LAYERS[layer_type](*args, **kwargs, **cfg)


def build_norm_layer(cfg: dict, num_features: int, postfix='') -> Tuple[str, nn.Module]:
    """Build a norm layer from ``dict(type='BN'|'SyncBN'|'GN', ...)``; returns (name, layer)."""
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f"norm_cfg must be a dict with a 'type' key, got {cfg!r}")
    cfg = dict(cfg)
    layer_type = cfg.pop('type')
    if layer_type not in NORM_LAYERS:
        raise KeyError(f"norm_cfg type '{layer_type}' is unknown; expected one of {sorted(NORM_LAYERS)}")
    abbr, norm_cls = NORM_LAYERS[layer_type]
    requires_grad = cfg.pop('requires_grad', True)
    cfg.setdefault('eps', 1e-5)
    if layer_type == 'GN':
        if 'num_groups' not in cfg:
            raise KeyError(f"norm_cfg {dict(type='GN', **cfg)} needs 'num_groups'")
        layer = norm_cls(num_channels=num_features, **cfg)
    else:
        layer = norm_cls(num_features, **cfg)
    for p in layer.parameters():
        p.requires_grad = requires_grad
    return abbr + str(postfix), layer


def resolve_conv_bias(conv_bias: Union[str, bool], conv_cfg: Optional[dict],
                      owner: str = 'ConvModule') -> Union[str, bool]:
    """A head's ``conv_bias`` for one of its ConvModules.

    ``'auto'``/``True``/``False`` pass through as mmcv's ``bias`` (``'auto'``: a bias only
    without a norm layer); ``'dcn'`` gives a bias to deformable convs only, as
    PaddleDetection's ``ConvNormLayer`` (its DCNv2 always has one, its plain conv none).
    """
    if isinstance(conv_bias, bool) or conv_bias == 'auto':
        return conv_bias
    if conv_bias == 'dcn':
        return conv_cfg is not None and conv_cfg.get('type', 'Conv') != 'Conv'
    raise ValueError(f"{owner}: conv_bias must be 'auto', 'dcn', True or False, got {conv_bias!r}")


class ConvModule(nn.Module):
    """conv → norm → ReLU. ``bias='auto'`` gives a bias only without a norm layer."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias='auto', conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, activation: Optional[str] = 'relu',
                 inplace: bool = True):
        super().__init__()
        self.with_norm = norm_cfg is not None
        if activation not in (None, 'relu'):
            raise ValueError(f"ConvModule: activation '{activation}' is not supported (use 'relu' or None)")
        if bias == 'auto':
            bias = not self.with_norm
        self.conv = build_conv_layer(conv_cfg, in_channels, out_channels, kernel_size, stride=stride,
                                     padding=padding, dilation=dilation, groups=groups, bias=bias)
        self.norm_name = None
        if self.with_norm:
            self.norm_name, norm = build_norm_layer(norm_cfg, out_channels)
            self.add_module(self.norm_name, norm)
        self.activate = nn.ReLU(inplace=inplace) if activation else None
        self.init_weights()

    @property
    def norm(self) -> Optional[nn.Module]:
        return getattr(self, self.norm_name) if self.norm_name else None

    def init_weights(self) -> None:
        if isinstance(self.conv, nn.Conv2d):
            nn.init.kaiming_normal_(self.conv.weight, mode='fan_out', nonlinearity='relu')
            if self.conv.bias is not None:
                nn.init.zeros_(self.conv.bias)
        if self.with_norm:
            nn.init.ones_(self.norm.weight)
            nn.init.zeros_(self.norm.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm_name:
            x = self.norm(x)
        if self.activate is not None:
            x = self.activate(x)
        return x
