"""MMDetection 2.x/3.x SOLO, Decoupled SOLO and SOLOv2 checkpoints <-> our (original) names.

mmdet puts every head under ``mask_head`` (SOLOv2's mask-feature branch under
``mask_head.mask_feature_head``, its ``conv_pred`` without the Sequential index) and renames
the towers and output convs; backbone, neck and DCN (``conv.conv_offset``) names are shared.
"""
from __future__ import annotations

from typing import List, Mapping

from .rules import Renamed, Rule, rename

_COMMON = [
    Rule('backbone.{rest}', 'backbone.{rest}'),
    Rule('neck.{rest}', 'neck.{rest}'),
    Rule('mask_head.mask_feature_head.conv_pred.{rest}', 'mask_feat_head.conv_pred.0.{rest}'),
    Rule('mask_head.mask_feature_head.{rest}', 'mask_feat_head.{rest}'),
    Rule('mask_head.mask_convs_x.{rest}', 'bbox_head.ins_convs_x.{rest}'),
    Rule('mask_head.mask_convs_y.{rest}', 'bbox_head.ins_convs_y.{rest}'),
    Rule('mask_head.mask_convs.{rest}', 'bbox_head.ins_convs.{rest}'),
    Rule('mask_head.conv_mask_list_x.{rest}', 'bbox_head.dsolo_ins_list_x.{rest}'),
    Rule('mask_head.conv_mask_list_y.{rest}', 'bbox_head.dsolo_ins_list_y.{rest}'),
    Rule('mask_head.conv_mask_list.{rest}', 'bbox_head.solo_ins_list.{rest}'),
    Rule('mask_head.cls_convs.{rest}', 'bbox_head.cate_convs.{rest}'),
    Rule('mask_head.kernel_convs.{rest}', 'bbox_head.kernel_convs.{rest}'),
    Rule('mask_head.conv_kernel.{rest}', 'bbox_head.solo_kernel.{rest}'),
]
_CLS_SOLO = Rule('mask_head.conv_cls.{rest}', 'bbox_head.solo_cate.{rest}')
_CLS_DECOUPLED = Rule('mask_head.conv_cls.{rest}', 'bbox_head.dsolo_cate.{rest}')


def _rules(decoupled: bool) -> List[Rule]:
    return _COMMON + [_CLS_DECOUPLED if decoupled else _CLS_SOLO]


def mmdet_to_solo(state_dict: Mapping[str, object]) -> Renamed:
    """mmdet names -> ours. Decoupled heads are recognised by ``conv_mask_list_x``."""
    decoupled = any('mask_head.conv_mask_list_x.' in k for k in state_dict)
    return rename(state_dict, _rules(decoupled), to_ours=True)


def solo_to_mmdet(state_dict: Mapping[str, object]) -> Renamed:
    """Our names -> mmdet's (the inverse of :func:`mmdet_to_solo`)."""
    decoupled = any('bbox_head.dsolo_' in k for k in state_dict)
    return rename(state_dict, _rules(decoupled), to_ours=False)
