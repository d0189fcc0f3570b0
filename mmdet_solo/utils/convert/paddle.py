"""PaddleDetection SOLOv2 ``.pdparams`` <-> our (original) names.

Paddle's ResNet: stem ``backbone.conv1.conv1`` (ResNet-vd: ``conv1_1/2/3``), blocks
``backbone.res{2-5}.res{s}{a,b,c...}`` (R101 res4: ``res4a, res4b1 ... res4b22``) with
``branch2{a,b,c}`` ConvNormLayers (``.conv``, ``.norm``) and shortcut ``short`` (vd with
stride 2: ``short.conv`` after an average pool). BN statistics are ``_mean``/``_variance``.
FPN: ``neck.fpn_inner_res5_sum``, ``neck.fpn_inner_res{2,3,4}_sum_lateral``,
``neck.fpn_res{2-5}_sum``. Heads: ``solov2_head.bbox_head.*`` (``.norm`` for GN) and
``mask_head.conv_pre_feat{L}.mask_feat_head.convs_all_levels.{L}.conv{j}``.

DCNv2 comes in two layouts. The heads' ``ppdet.modeling.layers.ConvNormLayer`` nests it in
``conv``: ``conv.conv_offset.*`` and ``conv.conv_dcn.weight`` plus ``conv.conv_dcn.bias`` (always
present there, though a GN follows; our heads' ``conv_bias='dcn'``). The backbone's own
``ConvNormLayer`` (ppdet >= 2.0) puts it beside ``conv``: ``branch2b.conv_offset.*`` and
``branch2b.conv.weight``, no bias. Both are read; each is written in its own module's layout.
Values are numpy arrays on Paddle's side.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import List, Mapping, Optional, Tuple

import numpy as np

from .rules import ConversionError, Renamed

# BN / GN / conv leaves: Paddle -> ours
_BN_LEAF = {'weight': 'weight', 'bias': 'bias', '_mean': 'running_mean',
            '_variance': 'running_var'}
_BN_LEAF_INV = {v: k for k, v in _BN_LEAF.items()}


def _block_index(stage: int, suffix: str) -> Optional[int]:
    """'a' -> 0, 'b' -> 1 ...; for deep res4: 'a' -> 0, 'b7' -> 7."""
    if re.fullmatch(r'[a-z]', suffix):
        return ord(suffix) - ord('a')
    m = re.fullmatch(r'b(\d+)', suffix)
    return int(m.group(1)) if m and stage == 4 else None


def _block_suffix(stage: int, index: int, num_blocks: int) -> str:
    if stage == 4 and num_blocks > 10:
        return 'a' if index == 0 else f'b{index}'
    return chr(ord('a') + index)


def _conv_norm(prefix_ours_conv: str, prefix_ours_norm: str, rest: str, is_bn: bool
               ) -> Optional[str]:
    """``conv.weight`` / ``[conv.]conv_offset.*`` / ``conv.conv_dcn.*`` / ``norm.<leaf>``."""
    if rest == 'conv.weight':
        return prefix_ours_conv + '.weight'
    m = re.fullmatch(r'conv\.conv_dcn\.(weight|bias)', rest)
    if m:
        return f'{prefix_ours_conv}.{m.group(1)}'
    m = re.fullmatch(r'(?:conv\.)?conv_offset\.(weight|bias)', rest)
    if m:
        return f'{prefix_ours_conv}.conv_offset.{m.group(1)}'
    m = re.fullmatch(r'norm\.(\w+)', rest)
    if m:
        leaf = _BN_LEAF.get(m.group(1)) if is_bn else (
            m.group(1) if m.group(1) in ('weight', 'bias') else None)
        return f'{prefix_ours_norm}.{leaf}' if leaf else None
    return None


def _paddle_key_to_ours(key: str) -> Optional[str]:
    m = re.fullmatch(r'backbone\.conv1\.conv1\.(.+)', key)
    if m:
        return _conv_norm('backbone.conv1', 'backbone.bn1', m.group(1), True)
    m = re.fullmatch(r'backbone\.conv1\.conv1_([123])\.(.+)', key)
    if m:
        i = 3 * (int(m.group(1)) - 1)
        return _conv_norm(f'backbone.stem.{i}', f'backbone.stem.{i + 1}', m.group(2), True)
    m = re.fullmatch(r'backbone\.res(\d)\.res(\d)([a-z]\d*)\.(\w+)\.(.+)', key)
    if m and m.group(1) == m.group(2):
        stage = int(m.group(1))
        b = _block_index(stage, m.group(3))
        if b is None or not 2 <= stage <= 5:
            return None
        blk = f'backbone.layer{stage - 1}.{b}'
        part, rest = m.group(4), m.group(5)
        bm = re.fullmatch(r'branch2([abc])', part)
        if bm:
            c = ord(bm.group(1)) - ord('a') + 1
            return _conv_norm(f'{blk}.conv{c}', f'{blk}.bn{c}', rest, True)
        if part == 'short':
            if rest.startswith('conv.conv.') or rest.startswith('conv.norm.'):
                # ResNet-vd stride-2 shortcut: AvgPool, conv, BN (our downsample.0/1/2)
                return _conv_norm(f'{blk}.downsample.1', f'{blk}.downsample.2', rest[5:], True)
            return _conv_norm(f'{blk}.downsample.0', f'{blk}.downsample.1', rest, True)
        return None
    m = re.fullmatch(r'neck\.fpn_inner_res(\d)_sum(_lateral)?\.(weight|bias)', key)
    if m and (m.group(2) is None) == (m.group(1) == '5'):
        return f'neck.lateral_convs.{int(m.group(1)) - 2}.conv.{m.group(3)}'
    m = re.fullmatch(r'neck\.fpn_res(\d)_sum\.(weight|bias)', key)
    if m:
        return f'neck.fpn_convs.{int(m.group(1)) - 2}.conv.{m.group(2)}'
    m = re.fullmatch(r'solov2_head\.bbox_head\.(kernel_convs|cate_convs)\.(\d+)\.(.+)', key)
    if m:
        p = f'bbox_head.{m.group(1)}.{m.group(2)}'
        return _conv_norm(f'{p}.conv', f'{p}.gn', m.group(3), False)
    m = re.fullmatch(r'solov2_head\.bbox_head\.(solo_kernel|solo_cate)\.(weight|bias)', key)
    if m:
        return f'bbox_head.{m.group(1)}.{m.group(2)}'
    m = re.fullmatch(r'mask_head\.conv_pre_feat(\d)\.mask_feat_head\.convs_all_levels\.(\d)'
                     r'\.conv(\d)\.(.+)', key)
    if m and m.group(1) == m.group(2):
        p = f'mask_feat_head.convs_all_levels.{m.group(2)}.conv{m.group(3)}'
        return _conv_norm(f'{p}.conv', f'{p}.gn', m.group(4), False)
    m = re.fullmatch(r'mask_head\.mask_feat_head\.conv_pred\.0\.(.+)', key)
    if m:
        p = 'mask_feat_head.conv_pred.0'
        return _conv_norm(f'{p}.conv', f'{p}.gn', m.group(1), False)
    return None


def _to_numpy(key: str, value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    try:
        return value.detach().cpu().numpy()
    except AttributeError as e:
        raise ConversionError(f"key '{key}': not a tensor or array ({type(value).__name__})") from e


def paddle_to_solo(state_dict: Mapping[str, object]) -> Renamed:
    """Paddle names -> ours (values unchanged; ``to_solo`` makes them tensors)."""
    out: 'OrderedDict[str, object]' = OrderedDict()
    unmatched: List[str] = []
    for key, value in state_dict.items():
        new = _paddle_key_to_ours(key)
        if new is None:
            unmatched.append(key)
        elif new in out:
            raise ConversionError(f"two Paddle keys map to '{new}' (the second is '{key}')")
        else:
            out[new] = value
    return Renamed(out, unmatched)


def _num_blocks(keys, stage_ours: int) -> int:
    blocks = {int(m.group(1)) for k in keys
              for m in [re.match(rf'backbone\.layer{stage_ours}\.(\d+)\.', k)] if m}
    return max(blocks) + 1 if blocks else 0


def _ours_key_to_paddle(key: str, keys: Tuple[str, ...]) -> Optional[str]:
    m = re.fullmatch(r'(.+)\.(weight|bias|running_mean|running_var|num_batches_tracked)', key)
    if m is None:
        return None
    mod, leaf = m.group(1), m.group(2)
    if leaf == 'num_batches_tracked':
        return None
    norm_leaf = _BN_LEAF_INV.get(leaf, leaf)

    def conv_or_norm(prefix: str, is_norm: bool, dcn: bool = False) -> str:
        if is_norm:
            return f'{prefix}.norm.{norm_leaf}'
        return f'{prefix}.conv.conv_dcn.{leaf}' if dcn else f'{prefix}.conv.{leaf}'

    def dcn_here(mod_conv: str) -> bool:
        return f'{mod_conv}.conv_offset.weight' in keys

    if mod in ('backbone.conv1', 'backbone.bn1'):
        return conv_or_norm('backbone.conv1.conv1', mod == 'backbone.bn1')
    m = re.fullmatch(r'backbone\.stem\.(\d)', mod)
    if m and int(m.group(1)) % 3 in (0, 1):
        i = int(m.group(1))
        return conv_or_norm(f'backbone.conv1.conv1_{i // 3 + 1}', i % 3 == 1)
    m = re.fullmatch(r'backbone\.layer(\d)\.(\d+)\.(.+)', mod)
    if m:
        s, b, part = int(m.group(1)), int(m.group(2)), m.group(3)
        stage = s + 1
        blk = f'backbone.res{stage}.res{stage}{_block_suffix(stage, b, _num_blocks(keys, s))}'
        pm = re.fullmatch(r'(conv|bn)([123])(\.conv_offset)?', part)
        if pm:
            # ResNet's DCNv2: ``conv_offset`` beside ``conv`` (plain ``conv.weight``), no bias
            prefix = f'{blk}.branch2{"abc"[int(pm.group(2)) - 1]}'
            if pm.group(3):
                return f'{prefix}.conv_offset.{leaf}'
            return conv_or_norm(prefix, pm.group(1) == 'bn')
        dm = re.fullmatch(r'downsample\.(\d)', part)
        if dm:
            base = f'backbone.layer{s}.{b}.downsample'
            pooled = f'{base}.2.running_mean' in keys
            idx = int(dm.group(1)) - (1 if pooled else 0)
            prefix = f'{blk}.short.conv' if pooled else f'{blk}.short'
            return conv_or_norm(prefix, idx == 1)
        return None
    m = re.fullmatch(r'neck\.lateral_convs\.(\d)\.conv', mod)
    if m:
        s = int(m.group(1)) + 2
        lateral = '' if f'neck.lateral_convs.{s - 1}.conv.weight' not in keys else '_lateral'
        return f'neck.fpn_inner_res{s}_sum{lateral}.{leaf}'
    m = re.fullmatch(r'neck\.fpn_convs\.(\d)\.conv', mod)
    if m:
        return f'neck.fpn_res{int(m.group(1)) + 2}_sum.{leaf}'
    m = re.fullmatch(r'bbox_head\.(kernel_convs|cate_convs)\.(\d+)\.(conv|gn)(\.conv_offset)?', mod)
    if m:
        prefix = f'solov2_head.bbox_head.{m.group(1)}.{m.group(2)}'
        if m.group(4):
            return f'{prefix}.conv.conv_offset.{leaf}'
        return conv_or_norm(prefix, m.group(3) == 'gn', dcn_here(f'{mod}'))
    m = re.fullmatch(r'bbox_head\.(solo_kernel|solo_cate)', mod)
    if m:
        return f'solov2_head.bbox_head.{m.group(1)}.{leaf}'
    m = re.fullmatch(r'mask_feat_head\.convs_all_levels\.(\d)\.conv(\d)\.(conv|gn)(\.conv_offset)?',
                     mod)
    if m:
        lvl = m.group(1)
        prefix = f'mask_head.conv_pre_feat{lvl}.mask_feat_head.convs_all_levels.{lvl}.conv{m.group(2)}'
        if m.group(4):
            return f'{prefix}.conv.conv_offset.{leaf}'
        return conv_or_norm(prefix, m.group(3) == 'gn', dcn_here(f'{mod}'))
    m = re.fullmatch(r'mask_feat_head\.conv_pred\.0\.(conv|gn)(\.conv_offset)?', mod)
    if m:
        prefix = 'mask_head.mask_feat_head.conv_pred.0'
        if m.group(2):
            return f'{prefix}.conv.conv_offset.{leaf}'
        return conv_or_norm(prefix, m.group(1) == 'gn', dcn_here(f'{mod}'))
    return None


def solo_to_paddle(state_dict: Mapping[str, object]) -> Renamed:
    """Our names -> Paddle's, values as float32/int64 numpy arrays (``num_batches_tracked``
    dropped: Paddle has none)."""
    keys = tuple(state_dict)
    out: 'OrderedDict[str, object]' = OrderedDict()
    unmatched: List[str] = []
    for key, value in state_dict.items():
        if key.endswith('.num_batches_tracked'):
            continue
        new = _ours_key_to_paddle(key, keys)
        if new is None:
            unmatched.append(key)
        elif new in out:
            raise ConversionError(f"two keys map to Paddle's '{new}' (the second is '{key}')")
        else:
            out[new] = _to_numpy(key, value)
    return Renamed(out, unmatched)
