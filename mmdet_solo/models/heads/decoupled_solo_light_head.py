"""Decoupled SOLO light head: one shared mask tower (with x and y coordinates) feeding both the
X and the Y mask convs; optionally a deformable conv as the last conv of both towers.

Names follow the original release (``ins_convs``, ``cate_convs``, ``dsolo_ins_list_x/y``,
``dsolo_cate``).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import HEADS
from .decoupled_solo_head import DecoupledSOLOHead
from .utils import coord_features


@HEADS.register_module()
class DecoupledSOLOLightHead(DecoupledSOLOHead):
    """Decoupled SOLO light head.

    Arguments as :class:`SOLOHead` (without ``with_deform``) plus:
        use_dcn_in_tower: make the last conv of the mask and category towers deformable.
        type_dcn: its ``conv_cfg`` type, ``'DCN'`` (v1) or ``'DCNv2'``.
    """

    def __init__(self, num_classes: int, in_channels: int, *args,
                 use_dcn_in_tower: bool = False, type_dcn: Optional[str] = None,
                 **kwargs) -> None:
        if 'with_deform' in kwargs:
            raise TypeError("DecoupledSOLOLightHead has no 'with_deform' argument (as in the "
                            "original); use use_dcn_in_tower=True, type_dcn='DCN'")
        if use_dcn_in_tower and type_dcn not in ('DCN', 'DCNv2'):
            raise ValueError("DecoupledSOLOLightHead: use_dcn_in_tower=True needs type_dcn='DCN' "
                             f"or 'DCNv2', got {type_dcn!r}")
        self.use_dcn_in_tower = use_dcn_in_tower
        self.type_dcn = type_dcn
        super().__init__(num_classes, in_channels, *args, **kwargs)

    def _init_layers(self) -> None:
        self.ins_convs = nn.ModuleList()
        self.cate_convs = nn.ModuleList()
        for i in range(self.stacked_convs):
            if self.use_dcn_in_tower and i == self.stacked_convs - 1:
                conv_cfg = dict(type=self.type_dcn)
            else:
                conv_cfg = self.conv_cfg
            chn = self.in_channels + 2 if i == 0 else self.seg_feat_channels
            self.ins_convs.append(self._tower_conv(chn, conv_cfg))
            chn = self.in_channels if i == 0 else self.seg_feat_channels
            self.cate_convs.append(self._tower_conv(chn, conv_cfg))
        self._init_output_layers()

    def _tower_modules(self) -> List[nn.Module]:
        return list(self.ins_convs) + list(self.cate_convs)

    def _ins_towers(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, C_in, h, w) → the shared mask-tower feature (B, C, 2h, 2w), twice."""
        feat = torch.cat([x, coord_features(x)], 1)
        for layer in self.ins_convs:
            feat = layer(feat)
        feat = F.interpolate(feat, scale_factor=2, mode='bilinear')
        return feat, feat
