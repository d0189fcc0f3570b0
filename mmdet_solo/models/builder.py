"""Build models from config dicts."""
from __future__ import annotations

from typing import Optional

import torch.nn as nn

from ..registry import MODELS


def build_detector(cfg: dict, train_cfg: Optional[dict] = None,
                   test_cfg: Optional[dict] = None) -> nn.Module:
    """Build ``cfg.model``; ``train_cfg``/``test_cfg`` (top level in the original configs) are
    passed in unless the model dict has its own."""
    defaults = {}
    if train_cfg is not None:
        defaults['train_cfg'] = train_cfg
    if test_cfg is not None:
        defaults['test_cfg'] = test_cfg
    return MODELS.build(cfg, default_args=defaults)
