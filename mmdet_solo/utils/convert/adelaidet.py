"""AdelaiDet (detectron2) SOLOv2 checkpoints <-> our (original) names.

detectron2 names the caffe-style ResNet ``backbone.bottom_up.{stem,res2..res5}`` (FrozenBN as
``convN.norm``, projection shortcut ``shortcut``, DCN offsets ``conv2_offset``), the FPN
``backbone.fpn_lateral{2..5}`` / ``fpn_output{2..5}``; AdelaiDet's heads are plain Sequentials
(``ins_head.kernel_tower.{3i}`` conv, ``{3i+1}`` GN; ``mask_head.convs_all_levels.L.convj.{0,1}``).
FrozenBN has no ``num_batches_tracked``: ours are dropped when writing and filled in by
``BatchNorm`` when loading.
"""
from __future__ import annotations

from typing import Mapping

from .rules import Renamed, Rule, rename

_BB = 'backbone.bottom_up.'
_STAGE = {'s': (1, 1)}          # detectron2 res2..res5 = our layer1..layer4
_LEVEL = {'l': (1, 2)}          # fpn_lateral2..5 = lateral_convs.0..3

RULES = [
    Rule(_BB + 'stem.conv1.weight', 'backbone.conv1.weight'),
    Rule(_BB + 'stem.conv1.norm.{rest}', 'backbone.bn1.{rest}'),
    Rule(_BB + 'res{s}.{b}.conv{c}.weight', 'backbone.layer{s}.{b}.conv{c}.weight', _STAGE),
    Rule(_BB + 'res{s}.{b}.conv{c}.norm.{rest}', 'backbone.layer{s}.{b}.bn{c}.{rest}', _STAGE),
    Rule(_BB + 'res{s}.{b}.conv2_offset.{rest}', 'backbone.layer{s}.{b}.conv2.conv_offset.{rest}',
         _STAGE),
    Rule(_BB + 'res{s}.{b}.shortcut.weight', 'backbone.layer{s}.{b}.downsample.0.weight', _STAGE),
    Rule(_BB + 'res{s}.{b}.shortcut.norm.{rest}', 'backbone.layer{s}.{b}.downsample.1.{rest}',
         _STAGE),
    Rule('backbone.fpn_lateral{l}.{rest}', 'neck.lateral_convs.{l}.conv.{rest}', _LEVEL),
    Rule('backbone.fpn_output{l}.{rest}', 'neck.fpn_convs.{l}.conv.{rest}', _LEVEL),
    Rule('ins_head.kernel_tower.{t}.{rest}', 'bbox_head.kernel_convs.{t}.conv.{rest}',
         {'t': (3, 0)}),
    Rule('ins_head.kernel_tower.{t}.{rest}', 'bbox_head.kernel_convs.{t}.gn.{rest}',
         {'t': (3, 1)}),
    Rule('ins_head.cate_tower.{t}.{rest}', 'bbox_head.cate_convs.{t}.conv.{rest}', {'t': (3, 0)}),
    Rule('ins_head.cate_tower.{t}.{rest}', 'bbox_head.cate_convs.{t}.gn.{rest}', {'t': (3, 1)}),
    Rule('ins_head.kernel_pred.{rest}', 'bbox_head.solo_kernel.{rest}'),
    Rule('ins_head.cate_pred.{rest}', 'bbox_head.solo_cate.{rest}'),
    Rule('mask_head.convs_all_levels.{l}.conv{j}.0.{rest}',
         'mask_feat_head.convs_all_levels.{l}.conv{j}.conv.{rest}'),
    Rule('mask_head.convs_all_levels.{l}.conv{j}.1.{rest}',
         'mask_feat_head.convs_all_levels.{l}.conv{j}.gn.{rest}'),
    Rule('mask_head.conv_pred.0.{rest}', 'mask_feat_head.conv_pred.0.conv.{rest}'),
    Rule('mask_head.conv_pred.1.{rest}', 'mask_feat_head.conv_pred.0.gn.{rest}'),
]


def adelaidet_to_solo(state_dict: Mapping[str, object]) -> Renamed:
    """AdelaiDet names -> ours."""
    return rename(state_dict, RULES, to_ours=True)


def solo_to_adelaidet(state_dict: Mapping[str, object]) -> Renamed:
    """Our names -> AdelaiDet's (``num_batches_tracked`` dropped: FrozenBN has none)."""
    return rename(state_dict, RULES, to_ours=False, drop=[r'.*\.num_batches_tracked\Z'])
