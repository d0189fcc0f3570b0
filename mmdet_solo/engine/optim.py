"""``build_optimizer``: ``optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4)``."""
from __future__ import annotations

import inspect

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


__all__ = ['build_optimizer', 'optimizer_class']
