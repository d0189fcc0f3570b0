"""``custom_hooks = [dict(type='EMAHook', momentum=0.0002)]``: an exponential moving average of
the weights, used for validation, saved in checkpoints and used for testing.

The update after every ``interval``-th training iteration (``t`` = number of updates so far)::

    ema = (1 - m_t) * ema + m_t * weights        (torch.lerp)
    m_t = (1 - momentum) * exp(-(1 + t) / gamma) + momentum    ExpMomentumEMA (default)
    m_t = momentum                                              ExponentialMovingAverage

These are MMDetection 3's ``ExpMomentumEMA`` (``mmdet/models/layers/ema.py``, YOLOX's rule:
a large momentum early, annealed to ``momentum`` with time constant ``gamma`` updates) and
MMEngine's ``ExponentialMovingAverage``, with MMEngine's ``AveragedModel`` bookkeeping: the
first update copies the weights, buffers (BatchNorm statistics) are copied from the model
unless ``update_buffers=True`` averages them too, integer buffers are always copied.
PaddleDetection's ``ModelEMA`` (``decay = 1 - momentum = 0.9998``; zero start with the bias
correction ``ema / (1 - decay**t)``, or ``min(decay, (1 + t) / (10 + t))``) is not reproduced;
its ``decay`` maps to ``momentum = 1 - decay`` with ``ema_type='ExponentialMovingAverage'``.

Where the average is used (docs/GETTING_STARTED.md, "EMA"):

* validation (``EvalHook``) swaps the averaged weights in for the test loop, then back;
* checkpoints keep the raw weights in ``state_dict`` and the averaged ones, under the same
  names, in ``ema_state_dict`` (``meta['ema']`` holds the update count); ``resume_from``
  restores both;
* ``init_detector`` / ``tools/test_ins.py`` / ``load_from`` load ``ema_state_dict`` when the file
  has one (``--no-ema`` / ``use_ema=False``: the raw weights).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Union

import torch

from ..registry import HOOKS
from .hooks import Hook
from .trainer import unwrap_model

EMA_TYPES = ('ExpMomentumEMA', 'ExponentialMovingAverage')
# MMEngine's priority names (a config may write priority='NORMAL' or an int, lower runs first)
PRIORITIES = {'HIGHEST': 0, 'VERY_HIGH': 10, 'HIGH': 30, 'ABOVE_NORMAL': 40, 'NORMAL': 50,
              'BELOW_NORMAL': 60, 'LOW': 70, 'VERY_LOW': 90, 'LOWEST': 100}


@HOOKS.register_module()
class EMAHook(Hook):
    """Keeps an exponential moving average of the model's weights (see the module docstring).

    Args:
        momentum: the weight of the current weights in each update (MMEngine's convention;
            PaddleDetection's ``decay`` is ``1 - momentum``), in (0, 1).
        gamma: ``ExpMomentumEMA`` only: updates over which the momentum anneals (default 2000).
        ema_type: ``'ExpMomentumEMA'`` (default) or ``'ExponentialMovingAverage'`` (constant).
        interval: update every ``interval`` iterations.
        update_buffers: average the floating-point buffers (BatchNorm running statistics)
            too; by default they are copied from the model.
        begin_iter / begin_epoch: until then the average is a copy of the weights.
        priority: an int or an MMEngine name ('NORMAL' = 50, ...); it only orders this hook
            against others at the same hook point.
    """

    def __init__(self, momentum: float = 0.0002, gamma: Optional[float] = None,
                 ema_type: str = 'ExpMomentumEMA', interval: int = 1,
                 update_buffers: bool = False, begin_iter: int = 0, begin_epoch: int = 0,
                 priority: Union[int, str] = 'NORMAL') -> None:
        where = 'custom_hooks (EMAHook)'
        if ema_type not in EMA_TYPES:
            raise ValueError(f"{where}: ema_type '{ema_type}' is not one of {', '.join(EMA_TYPES)}")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) \
                or not 0 < momentum < 1:
            raise ValueError(f'{where}: momentum must be in (0, 1) (the weight of the current '
                             f'weights, e.g. 0.0002), got {momentum!r}')
        if gamma is not None and ema_type != 'ExpMomentumEMA':
            raise ValueError(f"{where}: gamma is an argument of ema_type='ExpMomentumEMA' only")
        gamma = 2000 if gamma is None else gamma
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or gamma <= 0:
            raise ValueError(f'{where}: gamma must be positive, got {gamma!r}')
        for name, value, low in (('interval', interval, 1), ('begin_iter', begin_iter, 0),
                                 ('begin_epoch', begin_epoch, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f'{where}: {name} must be an int >= {low}, got {value!r}')
        if not isinstance(update_buffers, bool):
            raise ValueError(f'{where}: update_buffers must be True or False, got '
                             f'{update_buffers!r}')
        if isinstance(priority, str):
            if priority not in PRIORITIES:
                raise ValueError(f"{where}: priority '{priority}' is not an int or one of "
                                 f"{', '.join(PRIORITIES)}")
            priority = PRIORITIES[priority]
        elif isinstance(priority, bool) or not isinstance(priority, int):
            raise ValueError(f'{where}: priority must be an int or a name, got {priority!r}')
        self.priority = priority
        self.momentum = float(momentum)
        self.gamma = float(gamma)
        self.ema_type = ema_type
        self.interval = interval
        self.update_buffers = update_buffers
        self.begin_iter = begin_iter
        self.begin_epoch = begin_epoch
        self.steps = 0
        self.ema: Optional[Dict[str, torch.Tensor]] = None
        self._averaged: List[str] = []   # floating-point entries that are averaged
        self._copied: List[str] = []     # entries copied from the model at every update

    # ------------------------------------------------------------------------ the average
    def momentum_at(self, steps: int) -> float:
        """``m_t`` of the update after ``steps`` earlier updates."""
        if self.ema_type == 'ExpMomentumEMA':
            return (1 - self.momentum) * math.exp(-(1 + steps) / self.gamma) + self.momentum
        return self.momentum

    def _split_keys(self, model: torch.nn.Module) -> None:
        state = model.state_dict(keep_vars=True)
        params = {n for n, _ in model.named_parameters()}
        self._averaged = [k for k, v in state.items() if v.is_floating_point()
                          and (k in params or self.update_buffers)]
        averaged = set(self._averaged)
        self._copied = [k for k in state if k not in averaged]

    def _pairs(self, state: Dict[str, torch.Tensor], keys: List[str]):
        """(averaged tensors, the model's tensors) of ``keys``; ``state`` is the model's."""
        return [self.ema[k] for k in keys], [state[k] for k in keys]

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """One update from ``model``'s current weights (MMEngine's ``update_parameters``)."""
        state = unwrap_model(model).state_dict()
        if self.steps == 0:
            self._copy_all(state)
        elif self.steps % self.interval == 0:
            ema, src = self._pairs(state, self._averaged)
            if ema:
                torch._foreach_lerp_(ema, src, self.momentum_at(self.steps))
        ema, src = self._pairs(state, self._copied)
        if ema:
            torch._foreach_copy_(ema, src)
        self.steps += 1

    @torch.no_grad()
    def copy_from(self, model: torch.nn.Module) -> None:
        self._copy_all(unwrap_model(model).state_dict())

    def _copy_all(self, state: Dict[str, torch.Tensor]) -> None:
        ema, src = self._pairs(state, self._averaged + self._copied)
        torch._foreach_copy_(ema, src)

    def state_dict(self, model: torch.nn.Module) -> 'OrderedDict[str, torch.Tensor]':
        """The averaged weights under the model's state-dict names (buffers that are not
        averaged: the model's current ones), CPU copies."""
        state = unwrap_model(model).state_dict()
        averaged = set(self._averaged)
        return OrderedDict((k, (self.ema[k] if k in averaged else v).detach().cpu().clone())
                           for k, v in state.items())

    @contextmanager
    def averaged_weights(self, model: torch.nn.Module) -> Iterator[None]:
        """Run the body with the averaged weights in ``model``; the raw ones are put back."""
        if self.ema is None:
            yield
            return
        ema, src = self._pairs(unwrap_model(model).state_dict(), self._averaged)
        with torch.no_grad():
            raw = [t.clone() for t in src]
            torch._foreach_copy_(src, ema)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(src, raw)

    # ---------------------------------------------------------------------- hook points
    def before_run(self, trainer) -> None:
        model = unwrap_model(trainer.model)
        self._split_keys(model)
        state = model.state_dict()
        if self.ema is None:  # not restored by resume_from: start from the current weights
            self.ema = {k: v.detach().clone() for k, v in state.items()}
        else:
            self.ema = {k: self.ema[k].to(device=state[k].device, dtype=state[k].dtype)
                        for k in state}
        kind = (f'ExpMomentumEMA, momentum {self.momentum:g} annealed over gamma={self.gamma:g}'
                if self.ema_type == 'ExpMomentumEMA' else
                f'ExponentialMovingAverage, momentum {self.momentum:g}')
        trainer.logger.info(f'EMAHook: {kind}, every {self.interval} iteration(s), '
                            f'{len(self._averaged)} tensors averaged'
                            f"{' (buffers too)' if self.update_buffers else ''}, "
                            f'{self.steps} update(s) so far')

    def after_iter(self, trainer) -> None:
        if trainer.iter + 1 >= self.begin_iter and trainer.epoch + 1 >= self.begin_epoch:
            self.update(trainer.model)
        else:
            self.copy_from(trainer.model)

    def before_save_checkpoint(self, trainer, checkpoint: Dict[str, Any]) -> None:
        if self.ema is None:
            return
        checkpoint['ema_state_dict'] = self.state_dict(trainer.model)
        checkpoint['meta']['ema'] = dict(type=self.ema_type, momentum=self.momentum,
                                         gamma=self.gamma, steps=self.steps,
                                         update_buffers=self.update_buffers)

    def after_load_checkpoint(self, trainer, checkpoint: Dict[str, Any]) -> None:
        """``resume_from``: the average and its update count; a checkpoint without them
        restarts the average from the resumed weights (with a warning)."""
        ema = checkpoint.get('ema_state_dict')
        if not isinstance(ema, dict):
            trainer.logger.warning('EMAHook: the resumed checkpoint has no ema_state_dict; the '
                                   'average restarts from the resumed weights')
            self.ema, self.steps = None, 0
            return
        own = unwrap_model(trainer.model).state_dict()
        missing = [k for k in own if k not in ema]
        if missing:
            raise KeyError(f'EMAHook: the checkpoint\'s ema_state_dict lacks {len(missing)} of '
                           f"the model's entries (e.g. {missing[:3]}); it is not this model's")
        self.ema = {k: ema[k] for k in own}
        self.steps = int((checkpoint.get('meta') or {}).get('ema', {}).get('steps', 1))


__all__ = ['EMAHook', 'EMA_TYPES']
