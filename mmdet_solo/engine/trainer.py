"""An epoch-based trainer with the semantics of mmcv's ``Runner`` (as used by the SOLO release).

Reading order::

    run(data_loader)
        before_run
        for each epoch:                              train_epoch()
            sampler.set_epoch(epoch); model.train()
            before_epoch
            for each batch:
                before_iter
                outputs = train_step(batch)          forward + loss check (no backward)
                after_iter                           OptimizerHook does backward/clip/step here
            after_epoch                              checkpoint, evaluation, epoch log lines
        after_run

Counters (mmcv's): ``epoch`` is the number of finished epochs (so during an epoch it is the
0-based index of the running one, and in ``after_epoch`` it is already incremented),
``iter`` is the number of finished iterations (the 0-based index of the running one during
an iteration), ``inner_iter`` is the 0-based index of the running iteration in its epoch.

Hooks are called in the order they were registered; ``apis.train_detector`` lists them.
"""
from __future__ import annotations

import logging
import math
import os
import os.path as osp
import shutil
import tempfile
import time
from contextlib import nullcontext
from typing import Any, Dict, Iterable, List, Mapping, Optional

import torch
import torch.nn as nn

from ..utils.checkpoint import load_checkpoint, remove_stale_temp_checkpoints, save_checkpoint
from ..utils.misc import get_rng_state, set_rng_state
from .dist import all_gather_object, all_reduce_mean, get_dist_info

HOOK_POINTS = ('before_run', 'before_epoch', 'before_iter', 'after_iter', 'after_epoch',
               'after_run')


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; training stops instead of going on with it."""


class LogBuffer:
    """Per-iteration scalars (losses, times) accumulated between two log lines."""

    def __init__(self) -> None:
        self._sums: Dict[str, float] = {}
        self._counts: Dict[str, int] = {}

    def update(self, values: Mapping[str, float]) -> None:
        for k, v in values.items():
            self._sums[k] = self._sums.get(k, 0.0) + float(v)
            self._counts[k] = self._counts.get(k, 0) + 1

    def average(self) -> Dict[str, float]:
        return {k: self._sums[k] / self._counts[k] for k in self._sums}

    def clear(self) -> None:
        self._sums.clear()
        self._counts.clear()

    def __len__(self) -> int:
        return max(self._counts.values(), default=0)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside ``DistributedDataParallel``/``DataParallel``, else ``model``."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel,
                                              nn.DataParallel)) else model


def move_to_device(data: Any, device: torch.device) -> Any:
    """Tensors (also inside lists, tuples and dicts) to ``device``; anything else unchanged."""
    if isinstance(data, torch.Tensor):
        return data.to(device, non_blocking=True)
    if isinstance(data, dict):
        return {k: move_to_device(v, device) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(move_to_device(v, device) for v in data)
    return data


def parse_losses(losses: Mapping[str, Any]) -> tuple:
    """``(total_loss, {name: tensor})`` from a head's loss dict (mmdet's rule: a tensor is
    averaged, a list of tensors is summed after averaging each; the total is the sum of all
    entries whose name contains ``'loss'``)."""
    log_vars: Dict[str, torch.Tensor] = {}
    for name, value in losses.items():
        if isinstance(value, torch.Tensor):
            log_vars[name] = value.mean()
        elif isinstance(value, (list, tuple)) and all(isinstance(v, torch.Tensor) for v in value):
            log_vars[name] = sum(v.mean() for v in value)
        else:
            raise TypeError(f"loss '{name}' must be a tensor or a list of tensors, "
                            f'got {type(value).__name__}')
    terms = [v for k, v in log_vars.items() if 'loss' in k]
    if not terms:
        raise ValueError(f'the model returned no loss term (keys: {list(losses)})')
    loss = sum(terms)
    log_vars['loss'] = loss
    return loss, log_vars


def _atomic_copy(src: str, dst: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(dst) + '.', suffix='.tmp',
                               dir=osp.dirname(osp.abspath(dst)))
    try:
        with os.fdopen(fd, 'wb') as out, open(src, 'rb') as inp:
            shutil.copyfileobj(inp, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, os.stat(src).st_mode & 0o777)
        os.replace(tmp, dst)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


class EpochBasedTrainer:
    """Trains ``model`` for ``max_epochs`` over a data loader, calling hooks at six points.

    Args:
        model: the detector, possibly wrapped in ``DistributedDataParallel``; ``model(**batch)``
            must return a loss dict.
        optimizer: built by :func:`~mmdet_solo.engine.optim.build_optimizer`.
        work_dir: where checkpoints and logs go.
        max_epochs: ``total_epochs`` of the config.
        log_interval: iterations per log line (``log_config.interval``).
        amp: ``None``, or ``dict(loss_scale=...)`` (``'dynamic'`` or a number, the initial scale):
            float16 autocast + ``GradScaler`` on CUDA; bfloat16 autocast (no scaler) on CPU.
        channels_last: keep the model's 4-D weights and the input images in the
            ``torch.channels_last`` memory format (same maths, faster convolutions on CPUs
            and tensor-core GPUs; the rounding of the sums can differ slightly).
        meta: copied into every checkpoint's meta (config text, CLASSES, seed, ...).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, work_dir: str,
                 max_epochs: int, logger: Optional[logging.Logger] = None,
                 log_interval: int = 50, amp: Optional[dict] = None,
                 channels_last: bool = False, meta: Optional[dict] = None) -> None:
        if not isinstance(max_epochs, int) or max_epochs < 1:
            raise ValueError(f'max_epochs (total_epochs) must be a positive int, got {max_epochs!r}')
        if not isinstance(log_interval, int) or log_interval < 1:
            raise ValueError(f'log_interval must be a positive int, got {log_interval!r}')
        self.model = model
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            model.to(memory_format=torch.channels_last)
        self.optimizer = optimizer
        self.work_dir = osp.abspath(work_dir)
        os.makedirs(self.work_dir, exist_ok=True)
        self.max_epochs = max_epochs
        self.logger = logger or logging.getLogger('mmdet_solo')
        self.log_interval = log_interval
        self.meta = dict(meta or {})
        self.rank, self.world_size = get_dist_info()
        self.device = next(unwrap_model(model).parameters()).device
        self.hooks: List[Any] = []

        self.epoch = 0
        self.iter = 0
        self.inner_iter = 0
        self.max_iters = 0
        self.data_loader: Optional[Iterable] = None
        self.outputs: Dict[str, Any] = {}
        self.log_buffer = LogBuffer()
        self.eval_results: Optional[Dict[str, Any]] = None

        self.amp_dtype: Optional[torch.dtype] = None
        self.scaler: Optional[torch.amp.GradScaler] = None
        if amp is not None:
            if self.device.type == 'cuda':
                self.amp_dtype = torch.float16
                scale = amp.get('loss_scale', 'dynamic')
                init_scale = 2.0 ** 16 if scale in (None, 'dynamic') else float(scale)
                self.scaler = torch.amp.GradScaler('cuda', init_scale=init_scale)
            else:
                self.amp_dtype = torch.bfloat16
                self.logger.info('mixed precision on CPU: bfloat16 autocast, no loss scaling')

    # ------------------------------------------------------------------------------ hooks
    def register_hook(self, hook: Any) -> None:
        if not any(callable(getattr(hook, p, None)) for p in HOOK_POINTS):
            raise TypeError(f'{hook!r} has none of the hook methods {HOOK_POINTS}')
        self.hooks.append(hook)

    def call_hook(self, point: str) -> None:
        for hook in self.hooks:
            fn = getattr(hook, point, None)
            if fn is not None:
                fn(self)

    # ------------------------------------------------------------------------------- state
    def current_lr(self) -> List[float]:
        return [group['lr'] for group in self.optimizer.param_groups]

    def should_log(self) -> bool:
        """Whether this iteration ends a log window (every ``log_interval`` iterations of an
        epoch, and at the last iteration of the epoch)."""
        n = len(self.data_loader) if self.data_loader is not None else 0
        return (self.inner_iter + 1) % self.log_interval == 0 or self.inner_iter + 1 == n

    # ------------------------------------------------------------------------------ running
    def run(self, data_loader: Iterable) -> None:
        self.data_loader = data_loader
        self.max_iters = self.max_epochs * len(data_loader)
        self.logger.info(f'Start running: work_dir {self.work_dir}, epochs {self.epoch + 1}..'
                         f'{self.max_epochs}, {len(data_loader)} iterations per epoch, '
                         f'{self.world_size} process(es)')
        if self.rank == 0:
            stale = remove_stale_temp_checkpoints(self.work_dir)
            if stale:
                self.logger.warning(f'removed {len(stale)} temporary checkpoint file(s) that an '
                                    f'interrupted save left in {self.work_dir}: {stale}')
        self.call_hook('before_run')
        while self.epoch < self.max_epochs:
            self.train_epoch(data_loader)
        self.call_hook('after_run')

    def train_epoch(self, data_loader: Iterable) -> None:
        self.model.train()
        _set_sampler_epoch(data_loader, self.epoch)
        self.eval_results = None
        self.log_buffer.clear()
        self.call_hook('before_epoch')
        tick = time.time()
        for i, batch in enumerate(data_loader):
            self.inner_iter = i
            self.log_buffer.update({'data_time': time.time() - tick})
            self.call_hook('before_iter')
            self.outputs = self.train_step(batch)
            self.log_buffer.update(self.outputs['log_vars'])
            self.call_hook('after_iter')  # OptimizerHook steps, IterTimerHook, loggers
            if self.should_log():
                self.log_buffer.clear()
            self.iter += 1
            tick = time.time()
        self.epoch += 1
        self.call_hook('after_epoch')

    def train_step(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        """Forward and loss of one batch; raises :class:`NonFiniteLossError` on NaN/inf."""
        batch = move_to_device(batch, self.device)
        img = batch.get('img')
        if isinstance(img, torch.Tensor) and img.dim() == 4:
            batch['img'] = img.contiguous(memory_format=self.memory_format)
        autocast = (torch.autocast(self.device.type, dtype=self.amp_dtype)
                    if self.amp_dtype is not None else nullcontext())
        with autocast:
            losses = self.model(**batch)
        loss, log_vars = parse_losses(losses)
        local = {k: float(v.detach()) for k, v in log_vars.items()}
        reduced = all_reduce_mean(local)  # NaN on any rank makes the mean NaN on every rank
        bad = [k for k in local if not (math.isfinite(local[k]) and math.isfinite(reduced[k]))]
        if bad:
            terms = ', '.join(f'{k}={local[k]}' + (f' (mean over ranks {reduced[k]})'
                                                   if self.world_size > 1 else '')
                              for k in bad)
            raise NonFiniteLossError(
                f'non-finite loss at epoch {self.epoch + 1}, iteration {self.inner_iter + 1} of the '
                f'epoch (global iteration {self.iter + 1}): {terms}. Training stopped; lower the '
                'lr, check the data, or enable optimizer_config.grad_clip.')
        num_samples = batch['img'].shape[0] if isinstance(batch.get('img'), torch.Tensor) else 0
        return dict(loss=loss, log_vars=reduced, num_samples=num_samples)

    # ------------------------------------------------------------------------- checkpoints
    def save_checkpoint(self, out_dir: str, filename: str, create_latest: bool = True,
                        extra_meta: Optional[dict] = None,
                        save_optimizer: bool = True) -> Optional[str]:
        """Write ``out_dir/filename`` (and a copy ``latest.pth``) atomically on rank 0;
        ``save_optimizer=False`` leaves the optimizer state out (a smaller file; resuming from
        it restarts the optimizer's momentum).

        Every rank must call it: the RNG states of all ranks are gathered into the meta.
        """
        rng_states = all_gather_object(get_rng_state())
        if self.rank != 0:
            return None
        meta = dict(self.meta)
        meta.update(extra_meta or {})
        meta.update(epoch=self.epoch, iter=self.iter, world_size=self.world_size,
                    rng_state=rng_states)
        if self.scaler is not None:
            meta['amp_scaler'] = self.scaler.state_dict()
        path = osp.join(out_dir, filename)
        save_checkpoint(self.model, path, optimizer=self.optimizer if save_optimizer else None,
                        meta=meta)
        if create_latest:
            _atomic_copy(path, osp.join(out_dir, 'latest.pth'))
        return path

    def load_weights(self, filename: str, strict: bool = False) -> dict:
        """``load_from``: model weights only (training starts at epoch 1)."""
        self.logger.info(f'load_from {filename}: loading model weights')
        return load_checkpoint(unwrap_model(self.model), filename, map_location='cpu',
                               strict=strict, logger=self.logger)

    def resume(self, filename: str) -> None:
        """``resume_from``: model, optimizer (lr, momentum buffers), epoch, iter, AMP scaler and
        the RNG states of every process, so that training continues as if never stopped."""
        load_checkpoint(unwrap_model(self.model), filename, map_location='cpu', strict=True,
                        logger=self.logger)
        try:
            ckpt = torch.load(filename, map_location='cpu', weights_only=True)
        except Exception as e:  # load_checkpoint above already vetted the file
            raise RuntimeError(f"resume_from '{filename}': cannot read it: {e}") from e
        meta = ckpt.get('meta') or {}
        if 'epoch' not in meta or 'iter' not in meta:
            raise KeyError(f"resume_from '{filename}': its meta has no epoch/iter; it is not a "
                           'training checkpoint (use load_from to start from its weights)')
        if 'optimizer' in ckpt:
            self.optimizer.load_state_dict(ckpt['optimizer'])
            _optimizer_state_to(self.optimizer, self.device)
        else:
            self.logger.warning(f"resume_from '{filename}': the checkpoint has no optimizer state "
                                '(saved with checkpoint_config.save_optimizer=False); the '
                                'optimizer starts afresh (momentum buffers at zero)')
        self.epoch, self.iter = int(meta['epoch']), int(meta['iter'])
        if self.scaler is not None and 'amp_scaler' in meta:
            self.scaler.load_state_dict(meta['amp_scaler'])
        rng_states = meta.get('rng_state')
        if isinstance(rng_states, list) and len(rng_states) == self.world_size:
            set_rng_state(rng_states[self.rank])
        else:
            self.logger.warning(
                f"resume_from '{filename}': RNG state of {len(rng_states or [])} process(es) "
                f'saved, {self.world_size} running; RNG states not restored (data augmentation '
                'will differ from an uninterrupted run)')
        self.logger.info(f'resumed from {filename}: epoch {self.epoch}, iter {self.iter}')


def _optimizer_state_to(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and k != 'step':
                state[k] = v.to(device)


def _set_sampler_epoch(data_loader: Any, epoch: int) -> None:
    """Call ``set_epoch`` on the loader's sampler(s), so the order depends on (seed, epoch)."""
    seen = set()
    batch_sampler = getattr(data_loader, 'batch_sampler', None)
    for obj in (data_loader, getattr(data_loader, 'sampler', None), batch_sampler,
                getattr(batch_sampler, 'sampler', None)):
        if obj is not None and id(obj) not in seen and callable(getattr(obj, 'set_epoch', None)):
            seen.add(id(obj))
            obj.set_epoch(epoch)


__all__ = ['EpochBasedTrainer', 'LogBuffer', 'NonFiniteLossError', 'HOOK_POINTS',
           'move_to_device', 'parse_losses', 'unwrap_model']
