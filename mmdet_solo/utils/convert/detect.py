"""Tell which implementation wrote a state dict, from its key names alone."""
from __future__ import annotations

from typing import Iterable

FORMATS = ('solo', 'mmdet', 'adelaidet', 'paddle')

_ADELAIDET = ('ins_head.', 'backbone.bottom_up.', 'backbone.fpn_lateral', 'backbone.fpn_output')
_PADDLE = ('solov2_head.', 'neck.fpn_inner_', 'neck.fpn_res', 'backbone.res2.', 'backbone.conv1.conv1',
           'backbone.conv1.conv1_1', 'mask_head.mask_feat_head.')
_MMDET = ('mask_head.',)
_SOLO = ('bbox_head.', 'mask_feat_head.')


def detect_format(keys: Iterable[str]) -> str:
    """``'solo'`` (the original release, our names), ``'mmdet'``, ``'adelaidet'``, ``'paddle'``,
    or ``'unknown'`` (e.g. a bare ImageNet backbone or an empty dict).

    The head prefixes decide; a backbone/neck-only dict with our names is ``'solo'``.
    """
    keys = list(keys)

    def has(prefixes) -> bool:
        return any(k.startswith(prefixes) for k in keys)

    if has(_ADELAIDET):
        return 'adelaidet'
    if has(_PADDLE) or any(k.endswith(('._mean', '._variance')) for k in keys):
        return 'paddle'
    if has(_SOLO):
        return 'solo'
    if has(_MMDET):
        return 'mmdet'
    if has(('backbone.', 'neck.')):
        return 'solo'
    return 'unknown'
