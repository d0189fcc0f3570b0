"""Training hooks (mmcv 0.2.16 semantics): the lr schedule, checkpoints, evaluation and logging.
Each overrides some of the six hook points of :class:`~mmdet_solo.engine.trainer.EpochBasedTrainer`
(the optimizer step is the trainer's own ``run_step``); no hook depends on another's position."""
from __future__ import annotations

import datetime
import json
import math
import os
import os.path as osp
import resource
import time
from contextlib import nullcontext
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

from ..utils.misc import preserved_rng_state
from .dist import barrier
from .testing import run_test


class Hook:
    """Base class: every hook point does nothing. The trainer calls hooks by ``priority``
    (lower first; equal priorities in registration order): the lr is set before anything else
    runs, the loggers run after everything else, whatever order they were registered in."""

    priority = 50

    def before_run(self, trainer) -> None: ...
    def before_epoch(self, trainer) -> None: ...
    def before_iter(self, trainer) -> None: ...
    def after_iter(self, trainer) -> None: ...
    def after_epoch(self, trainer) -> None: ...
    def after_run(self, trainer) -> None: ...


# ------------------------------------------------------------------------------------ lr
class LrUpdaterHook(Hook):
    """``lr_config = dict(policy='step', step=[9, 11], gamma=0.1, warmup='linear',
    warmup_iters=500, warmup_ratio=1/3)`` or ``dict(policy='CosineAnnealing', min_lr_ratio=0.01,
    by_epoch=False, warmup=...)`` (mmcv's names and formulas).

    * ``step``: the lr is ``base_lr * gamma**k`` with ``k`` the number of entries of ``step``
      that are ``<= t`` (an int ``step`` means every ``step`` units); ``t`` is the 0-based epoch
      (``by_epoch=True``, set at the start of each epoch) or the global iteration.
    * ``CosineAnnealing``: ``lr = end + (base_lr - end) * (1 + cos(pi * t / T)) / 2`` with
      ``end = min_lr`` or ``base_lr * min_lr_ratio`` and ``t / T`` = epoch / epochs
      (``by_epoch=True``) or iteration / iterations.
    * Linear warm-up, by global iteration ``i`` (0-based) while ``i < warmup_iters``:
      ``lr = regular_lr * (1 - (1 - i / warmup_iters) * (1 - warmup_ratio))``; from
      ``i == warmup_iters`` on the regular lr is used. ``'constant'`` warm-up uses
      ``regular_lr * warmup_ratio``; ``'exp'`` uses ``regular_lr * warmup_ratio**(1 - i/warmup_iters)``.
    """

    priority = 10
    POLICIES = ('step', 'CosineAnnealing')

    def __init__(self, policy: str = 'step', step: Union[int, Sequence[int], None] = None,
                 gamma: float = 0.1, min_lr: Optional[float] = None,
                 min_lr_ratio: Optional[float] = None, warmup: Optional[str] = None,
                 warmup_iters: int = 0, warmup_ratio: float = 0.1, by_epoch: bool = True) -> None:
        if policy not in self.POLICIES:
            raise NotImplementedError(f"lr_config.policy '{policy}' is not supported "
                                      f"(supported: {', '.join(self.POLICIES)})")
        if policy == 'step':
            if step is None:
                raise ValueError("lr_config: the step policy needs 'step' (epochs or iterations "
                                 'at which the lr is multiplied by gamma)')
            if isinstance(step, int):
                if step <= 0:
                    raise ValueError(f'lr_config.step must be positive, got {step}')
            elif not all(isinstance(s, int) and s > 0 for s in step):
                raise ValueError(f'lr_config.step must be a positive int or a list of them, '
                                 f'got {step}')
        elif (min_lr is None) == (min_lr_ratio is None):
            raise ValueError('lr_config: the CosineAnnealing policy needs exactly one of min_lr '
                             f'and min_lr_ratio, got min_lr={min_lr}, min_lr_ratio={min_lr_ratio}')
        if warmup not in (None, 'linear', 'constant', 'exp'):
            raise ValueError(f"lr_config.warmup must be None, 'linear', 'constant' or 'exp', "
                             f'got {warmup!r}')
        if warmup is not None:
            if warmup_iters <= 0:
                raise ValueError(f'lr_config.warmup_iters must be positive, got {warmup_iters}')
            if not 0 < warmup_ratio <= 1.0:
                raise ValueError(f'lr_config.warmup_ratio must be in (0, 1], got {warmup_ratio}')
        self.policy = policy
        self.step = step if isinstance(step, int) or step is None else list(step)
        self.gamma = gamma
        self.min_lr = min_lr
        self.min_lr_ratio = min_lr_ratio
        self.by_epoch = by_epoch
        self.warmup = warmup
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio
        self.base_lr: List[float] = []
        self.regular_lr: List[float] = []

    def get_lr(self, progress: int, max_progress: int, base_lr: float) -> float:
        """The lr without warm-up after ``progress`` of ``max_progress`` epochs or iterations."""
        if self.policy == 'step':
            if isinstance(self.step, int):
                return base_lr * self.gamma ** (progress // self.step)
            return base_lr * self.gamma ** sum(1 for s in self.step if progress >= s)
        end = self.min_lr if self.min_lr is not None else base_lr * self.min_lr_ratio
        return end + (base_lr - end) * 0.5 * (1 + math.cos(math.pi * progress / max(max_progress, 1)))

    def get_warmup_lr(self, cur_iter: int) -> List[float]:
        if self.warmup == 'constant':
            return [lr * self.warmup_ratio for lr in self.regular_lr]
        if self.warmup == 'linear':
            k = (1 - cur_iter / self.warmup_iters) * (1 - self.warmup_ratio)
            return [lr * (1 - k) for lr in self.regular_lr]
        k = self.warmup_ratio ** (1 - cur_iter / self.warmup_iters)
        return [lr * k for lr in self.regular_lr]

    @staticmethod
    def _set_lr(trainer, lrs: Sequence[float]) -> None:
        for group, lr in zip(trainer.optimizer.param_groups, lrs):
            group['lr'] = lr

    def before_run(self, trainer) -> None:
        for group in trainer.optimizer.param_groups:
            group.setdefault('initial_lr', group['lr'])
        self.base_lr = [group['initial_lr'] for group in trainer.optimizer.param_groups]

    def before_epoch(self, trainer) -> None:
        if self.by_epoch:
            self.regular_lr = [self.get_lr(trainer.epoch, trainer.max_epochs, lr)
                               for lr in self.base_lr]
            self._set_lr(trainer, self.regular_lr)

    def before_iter(self, trainer) -> None:
        cur_iter = trainer.iter
        if not self.by_epoch:
            self.regular_lr = [self.get_lr(cur_iter, trainer.max_iters, lr) for lr in self.base_lr]
        if self.warmup is not None and cur_iter < self.warmup_iters:
            self._set_lr(trainer, self.get_warmup_lr(cur_iter))
        elif not self.by_epoch or cur_iter == self.warmup_iters:
            self._set_lr(trainer, self.regular_lr)


class EpochIntervalHook(Hook):
    """A hook acting after every ``interval``-th epoch and after the last one."""

    def __init__(self, interval: int, config_key: str) -> None:
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            raise ValueError(f'{config_key}.interval must be a positive int, got {interval!r}')
        self.interval = interval

    def due(self, trainer) -> bool:
        return trainer.epoch % self.interval == 0 or trainer.epoch == trainer.max_epochs


# ---------------------------------------------------------------------------- checkpoint
class CheckpointHook(EpochIntervalHook):
    """Every ``interval`` epochs (and after the last one) writes ``epoch_N.pth`` and
    ``latest.pth`` to ``out_dir`` (default: the work dir), atomically. ``max_keep_ckpts > 0``
    deletes older ``epoch_*.pth`` files; ``save_optimizer=False`` leaves the optimizer state
    out (resuming then restarts the optimizer, with a warning)."""

    def __init__(self, interval: int = 1, out_dir: Optional[str] = None,
                 max_keep_ckpts: int = -1, save_optimizer: bool = True) -> None:
        super().__init__(interval, 'checkpoint_config')
        self.save_optimizer = bool(save_optimizer)
        self.out_dir = out_dir
        self.max_keep_ckpts = max_keep_ckpts

    def after_epoch(self, trainer) -> None:
        if not self.due(trainer):
            return
        out_dir = self.out_dir or trainer.work_dir
        path = trainer.save_checkpoint(out_dir, f'epoch_{trainer.epoch}.pth',
                                       save_optimizer=self.save_optimizer)
        if path is None:  # not rank 0
            return
        trainer.logger.info(f'Saved checkpoint {path}')
        if self.max_keep_ckpts > 0:
            for old in range(trainer.epoch - self.max_keep_ckpts * self.interval, 0,
                             -self.interval):
                stale = osp.join(out_dir, f'epoch_{old}.pth')
                if osp.exists(stale):
                    os.remove(stale)


# ------------------------------------------------------------------------------ evaluation
class EvalHook(EpochIntervalHook):
    """Every ``interval`` epochs: the test loop (:func:`~mmdet_solo.engine.testing.run_test`,
    results RLE-encoded as they leave the model) over the val loader, each rank its share,
    with the averaged weights when an ``EMAHook`` is registered (:func:`eval_weights`);
    rank 0 gathers the results and calls ``dataset.evaluate(results, metric=...)``; the metrics
    go to ``trainer.eval_results`` for the logger hooks. RNG states are left untouched, so a run
    with validation trains exactly like one without."""

    def __init__(self, data_loader, interval: int = 1, metric: Union[str, Sequence[str]] = 'segm',
                 **eval_kwargs: Any) -> None:
        super().__init__(interval, 'evaluation')
        self.data_loader = data_loader
        self.metric = metric
        self.eval_kwargs = eval_kwargs

    def after_epoch(self, trainer) -> None:
        if not self.due(trainer):
            return
        dataset = self.data_loader.dataset
        with preserved_rng_state(), eval_weights(trainer):
            results = run_test(trainer.model, self.data_loader, progress=False)
        if trainer.rank == 0:
            trainer.logger.info(f'Evaluating {len(results)} images (metric {self.metric})')
            metrics = dataset.evaluate(results, metric=self.metric, logger=trainer.logger,
                                       **self.eval_kwargs)
            trainer.eval_results = dict(metrics)
        barrier()


def eval_weights(trainer):
    """The weights validation runs with: a hook's ``averaged_weights`` (``EMAHook``) when one
    is registered, else the model's own."""
    for hook in trainer.hooks:
        swap = getattr(hook, 'averaged_weights', None)
        if swap is not None:
            return swap(trainer.model)
    return nullcontext()


# -------------------------------------------------------------------------------- loggers
def _memory_mb(device: torch.device) -> int:
    """Peak memory in MB: CUDA allocator peak on GPU, peak resident set size on CPU."""
    if device.type == 'cuda':
        return int(torch.cuda.max_memory_allocated(device) / 1024 ** 2)
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _scalar(v: Any) -> Any:
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        v = v.item()
    if hasattr(v, 'item') and not isinstance(v, (list, dict)):
        try:
            v = v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, float):
        return round(v, 5) if abs(v) >= 1e-3 or v == 0 else float(f'{v:.5g}')
    return v


class LoggerHook(Hook):
    """Base of the logger hooks: on rank 0, at every log window of the trainer and after each
    evaluation, builds a record and passes it to :meth:`log`."""

    priority = 90

    def __init__(self, interval: Optional[int] = None) -> None:
        self.interval = interval  # informational; the trainer's log_interval decides
        self._run_start = 0.0
        self._iters_run = 0

    def log(self, trainer, record: Dict[str, Any]) -> None:
        raise NotImplementedError

    def before_run(self, trainer) -> None:
        self._run_start = time.time()
        self._iters_run = 0

    def after_iter(self, trainer) -> None:
        self._iters_run += 1
        if trainer.rank != 0 or not trainer.should_log():
            return
        avg = trainer.log_buffer.average()
        record: Dict[str, Any] = dict(mode='train', epoch=trainer.epoch + 1,
                                      iter=trainer.inner_iter + 1,
                                      lr=trainer.current_lr()[0])
        for key in ('time', 'data_time'):
            if key in avg:
                record[key] = avg.pop(key)
        record['memory'] = _memory_mb(trainer.device)
        seconds_per_iter = (time.time() - self._run_start) / max(self._iters_run, 1)
        record['eta_seconds'] = seconds_per_iter * (trainer.max_iters - trainer.iter - 1)
        loss = avg.pop('loss', None)
        record.update(avg)
        if loss is not None:
            record['loss'] = loss
        self.log(trainer, record)

    def after_epoch(self, trainer) -> None:
        if trainer.rank == 0 and trainer.eval_results:
            record = dict(mode='val', epoch=trainer.epoch, iter=trainer.iter)
            record.update(trainer.eval_results)
            self.log(trainer, record)


class TextLoggerHook(LoggerHook):
    """Log lines to the logger (console and ``<timestamp>.log``) and one JSON object per line
    to ``json_file`` (``work_dir/<timestamp>.log.json``), mmcv style."""

    def __init__(self, interval: Optional[int] = None, json_file: Optional[str] = None) -> None:
        super().__init__(interval)
        self.json_file = json_file

    def before_run(self, trainer) -> None:
        super().before_run(trainer)
        if self.json_file is None:
            self.json_file = osp.join(trainer.work_dir,
                                      f"{time.strftime('%Y%m%d_%H%M%S')}.log.json")
        if trainer.rank == 0:
            head = {k: trainer.meta[k] for k in ('mmdet_solo_version', 'seed', 'exp_name',
                                                 'config_file') if k in trainer.meta}
            if head:
                self._dump(head)

    def _dump(self, record: Dict[str, Any]) -> None:
        with open(self.json_file, 'a') as f:
            f.write(json.dumps({k: _scalar(v) for k, v in record.items()}) + '\n')

    def log(self, trainer, record: Dict[str, Any]) -> None:
        if record['mode'] == 'train':
            n = len(trainer.data_loader)
            eta = str(datetime.timedelta(seconds=int(record.pop('eta_seconds'))))
            parts = [f"lr: {record['lr']:.5e}", f'eta: {eta}']
            parts += [f"{k}: {v:.3f}" for k, v in record.items()
                      if k in ('time', 'data_time')]
            parts.append(f"memory: {record['memory']}")
            parts += [f'{k}: {v:.4f}' for k, v in record.items()
                      if k not in ('mode', 'epoch', 'iter', 'lr', 'time', 'data_time', 'memory')]
            trainer.logger.info(f"Epoch [{record['epoch']}][{record['iter']}/{n}]\t"
                                + ', '.join(parts))
        else:
            metrics = ', '.join(f'{k}: {_scalar(v)}' for k, v in record.items()
                                if k not in ('mode', 'epoch', 'iter'))
            trainer.logger.info(f"Epoch({record['mode']}) [{record['epoch']}]\t{metrics}")
        self._dump({k: v for k, v in record.items() if k != 'eta_seconds'})


class TensorboardLoggerHook(LoggerHook):
    """Scalars to TensorBoard (``log_dir``, default ``work_dir/tf_logs``); skipped with a
    warning when tensorboard is not installed."""

    def __init__(self, interval: Optional[int] = None, log_dir: Optional[str] = None) -> None:
        super().__init__(interval)
        self.log_dir = log_dir
        self.writer = None

    def before_run(self, trainer) -> None:
        super().before_run(trainer)
        if trainer.rank != 0:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            trainer.logger.warning('TensorboardLoggerHook: tensorboard is not installed '
                                   '(pip install tensorboard); TensorBoard logging skipped')
            return
        self.writer = SummaryWriter(self.log_dir or osp.join(trainer.work_dir, 'tf_logs'))

    def log(self, trainer, record: Dict[str, Any]) -> None:
        if self.writer is None:
            return
        mode = record['mode']
        step = trainer.iter + 1 if mode == 'train' else trainer.iter
        for k, v in record.items():
            if k in ('mode', 'epoch', 'iter', 'eta_seconds', 'memory'):
                continue
            v = _scalar(v)
            if isinstance(v, (int, float)):
                self.writer.add_scalar(f'{mode}/{k}', v, step)

    def after_run(self, trainer) -> None:
        if self.writer is not None:
            self.writer.close()


LOGGER_HOOK_TYPES = ('TextLoggerHook', 'TensorboardLoggerHook')

__all__ = ['Hook', 'LrUpdaterHook', 'CheckpointHook',
           'EvalHook', 'LoggerHook', 'TextLoggerHook', 'TensorboardLoggerHook',
           'LOGGER_HOOK_TYPES']
