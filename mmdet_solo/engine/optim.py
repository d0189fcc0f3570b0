"""``build_optimizer``: ``optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4)``."""
from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn as nn


def _optimizer_classes() -> dict:
    return {name: obj for name, obj in vars(torch.optim).items()
            if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer)
            and obj is not torch.optim.Optimizer}


def optimizer_class(name: str) -> type:
    """The ``torch.optim`` optimizer class called ``name``."""
    classes = _optimizer_classes()
    if name not in classes:
        raise KeyError(f"optimizer type '{name}' is not in torch.optim "
                       f"(available: {', '.join(sorted(classes))})")
    return classes[name]


def build_optimizer(model: nn.Module, cfg: dict) -> torch.optim.Optimizer:
    """Any ``torch.optim`` optimizer by name, over all parameters of ``model`` (as the original:
    frozen parameters are included and simply never get a gradient)."""
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f"optimizer config must be a dict with a 'type', got {cfg!r}")
    args = dict(cfg)
    name = args.pop('type')
    if args.pop('paramwise_options', None):
        raise NotImplementedError('optimizer.paramwise_options is not supported')
    cls = optimizer_class(name)
    if 'lr' not in args:
        raise ValueError(f"optimizer config {cfg!r} needs an 'lr'")
    model = model.module if hasattr(model, 'module') else model
    try:
        return cls(model.parameters(), **args)
    except TypeError as e:
        raise TypeError(f'building optimizer {name} from {cfg!r} failed: {e}') from e


AUTO_SCALE_LR_KEYS = ('enable', 'base_batch_size')


def check_auto_scale_lr(cfg: Any, where: str = 'auto_scale_lr') -> None:
    """``auto_scale_lr = dict(enable=bool, base_batch_size=positive int)``; anything else is an
    error naming the key (raises ``ValueError``)."""
    if not isinstance(cfg, dict):
        raise ValueError(f'{where} must be a dict(enable=..., base_batch_size=...), got '
                         f'{type(cfg).__name__}: {cfg!r}')
    unknown = [k for k in cfg if k not in AUTO_SCALE_LR_KEYS]
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: "
                         f"{', '.join(AUTO_SCALE_LR_KEYS)}")
    if not isinstance(cfg.get('enable', False), bool):
        raise ValueError(f"{where}.enable must be True or False, got {cfg['enable']!r}")
    base = cfg.get('base_batch_size')
    if not isinstance(base, int) or isinstance(base, bool) or base < 1:
        raise ValueError(f'{where}.base_batch_size must be a positive int (the total batch '
                         f'size the lr was set for, e.g. 16 = 8 GPUs x 2 images), got {base!r}')


def scaled_lr(lr: float, auto_scale_lr: dict, world_size: int, imgs_per_gpu: int) -> float:
    """The linear scaling rule (Goyal et al., 2017; MMDetection's ``auto_scale_lr``):
    ``lr * (world_size * imgs_per_gpu) / base_batch_size``."""
    check_auto_scale_lr(auto_scale_lr)
    return lr * (world_size * imgs_per_gpu) / auto_scale_lr['base_batch_size']


__all__ = ['build_optimizer', 'optimizer_class', 'check_auto_scale_lr', 'scaled_lr',
           'AUTO_SCALE_LR_KEYS']
