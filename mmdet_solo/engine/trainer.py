"""An epoch-based trainer with the semantics of mmcv's ``Runner`` (as used by the SOLO release).

Reading order::

    run(data_loader)
        before_run
        for each epoch:                              train_epoch()
            sampler.set_epoch(epoch); model.train()
            before_epoch
            for each batch:
                before_iter                          the lr for this iteration
                outputs = run_step(batch)            forward, losses, backward, clip, step
                log_buffer += losses, grad_norm, time, data_time
                after_iter                           log lines
            after_epoch                              checkpoint, evaluation, epoch log lines
        after_run

:meth:`EpochBasedTrainer.run_step` is the one place the optimizer steps. Everything an
iteration logs is in ``log_buffer`` before any ``after_iter`` hook runs, so the order of the
hooks does not change what is logged.

Counters (mmcv's): ``epoch`` is the number of finished epochs (so during an epoch it is the
0-based index of the running one, and in ``after_epoch`` it is already incremented),
``iter`` is the number of finished iterations (the 0-based index of the running one during
an iteration), ``inner_iter`` is the 0-based index of the running iteration in its epoch.

Hooks are called by their ``priority`` (the lr schedule first, the loggers last), so the order
in which ``apis.train_detector`` registers them does not matter.
"""
from __future__ import annotations

import logging
import math
import os
import os.path as osp
import shutil
import time
from contextlib import nullcontext
from typing import Any, Dict, Iterable, List, Mapping, Optional

import torch
import torch.nn as nn
from torch.nn.utils import clip_grad_norm_

from ..utils.checkpoint import load_checkpoint, remove_stale_temp_checkpoints, save_checkpoint
from ..utils.io import atomic_write
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
    with open(src, 'rb') as inp:
        atomic_write(dst, lambda out: shutil.copyfileobj(inp, out),
                     mode=os.stat(src).st_mode & 0o777)


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
        grad_clip: ``optimizer_config.grad_clip``: ``None`` or the arguments of
            ``clip_grad_norm_`` (``max_norm``, ``norm_type``), applied to the parameters that
            have a gradient; the norm before clipping is logged as ``grad_norm``.
        meta: copied into every checkpoint's meta (config text, CLASSES, seed, ...).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, work_dir: str,
                 max_epochs: int, logger: Optional[logging.Logger] = None,
                 log_interval: int = 50, amp: Optional[dict] = None,
                 channels_last: bool = False, grad_clip: Optional[dict] = None,
                 meta: Optional[dict] = None) -> None:
        if not isinstance(max_epochs, int) or max_epochs < 1:
            raise ValueError(f'max_epochs (total_epochs) must be a positive int, got {max_epochs!r}')
        if not isinstance(log_interval, int) or log_interval < 1:
            raise ValueError(f'log_interval must be a positive int, got {log_interval!r}')
        if grad_clip is not None and 'max_norm' not in grad_clip:
            raise ValueError(f"optimizer_config.grad_clip needs 'max_norm', got {grad_clip!r}")
        self.grad_clip = dict(grad_clip) if grad_clip is not None else None
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
        """Add ``hook``; hooks are called by their ``priority`` (default 50, lower first),
        equal priorities in registration order."""
        if not any(callable(getattr(hook, p, None)) for p in HOOK_POINTS):
            raise TypeError(f'{hook!r} has none of the hook methods {HOOK_POINTS}')
        self.hooks.append(hook)
        self.hooks.sort(key=lambda h: getattr(h, 'priority', 50))  # stable

    def call_hook(self, point: str, *args: Any) -> None:
        """``hook.<point>(self, *args)`` for every hook that has it, by priority."""
        for hook in self.hooks:
            fn = getattr(hook, point, None)
            if fn is not None:
                fn(self, *args)

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
            data_time = time.time() - tick
            self.call_hook('before_iter')
            self.outputs = self.run_step(batch)
            now = time.time()
            self.log_buffer.update(dict(self.outputs['log_vars'], data_time=data_time,
                                        time=now - tick))
            self.call_hook('after_iter')
            if self.should_log():
                self.log_buffer.clear()
            self.iter += 1
            tick = time.time()
        self.epoch += 1
        self.call_hook('after_epoch')

    def run_step(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        """One training iteration: the batch to the device, forward under autocast, the
        losses summed and checked (:class:`NonFiniteLossError` on NaN/inf), backward (scaled
        with AMP on CUDA), gradient clipping, optimizer step. Returns the loss, the logged
        values (losses averaged over the processes, ``grad_norm``) and the batch size."""
        batch = move_to_device(batch, self.device)
        img = batch.get('img')
        if isinstance(img, torch.Tensor) and img.dim() == 4:
            batch['img'] = img.contiguous(memory_format=self.memory_format)
        autocast = (torch.autocast(self.device.type, dtype=self.amp_dtype)
                    if self.amp_dtype is not None else nullcontext())
        with autocast:
            losses = self.model(**batch)
        loss, log_vars = parse_losses(losses)
        log_vars = self._checked_log_vars(log_vars)

        self.optimizer.zero_grad()
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        if self.grad_clip is not None:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            grad_norm = clip_grads(self.model.parameters(), **self.grad_clip)
            if grad_norm is not None:
                log_vars['grad_norm'] = grad_norm
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        num_samples = img.shape[0] if isinstance(img, torch.Tensor) else 0
        return dict(loss=loss.detach(), log_vars=log_vars, num_samples=num_samples)

    def _checked_log_vars(self, log_vars: Mapping[str, torch.Tensor]) -> Dict[str, float]:
        """The loss values as floats averaged over the processes; stops on NaN/inf, naming
        the iteration and the term."""
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
        return reduced

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
        # hooks may add entries (EMAHook: ema_state_dict and meta['ema'])
        extra: Dict[str, Any] = dict(meta=meta)
        self.call_hook('before_save_checkpoint', extra)
        meta = extra.pop('meta')
        path = osp.join(out_dir, filename)
        save_checkpoint(self.model, path, optimizer=self.optimizer if save_optimizer else None,
                        meta=meta, extra=extra)
        if create_latest:
            _atomic_copy(path, osp.join(out_dir, 'latest.pth'))
        return path

    def load_weights(self, filename: str, strict: bool = False) -> dict:
        """``load_from``: model weights only (training starts at epoch 1); the averaged weights
        (``ema_state_dict``) when the file has them."""
        self.logger.info(f'load_from {filename}: loading model weights')
        return load_checkpoint(unwrap_model(self.model), filename, map_location='cpu',
                               strict=strict, logger=self.logger)

    def resume(self, filename: str) -> None:
        """``resume_from``: model, optimizer (lr, momentum buffers), epoch, iter, AMP scaler and
        the RNG states of every process, so that training continues as if never stopped."""
        load_checkpoint(unwrap_model(self.model), filename, map_location='cpu', strict=True,
                        logger=self.logger, use_ema=False)
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
        self.call_hook('after_load_checkpoint', ckpt)   # hooks' own state (EMAHook: the average)
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


def clip_grads(params: Iterable[torch.Tensor], **clip_args: Any) -> Optional[float]:
    """``clip_grad_norm_`` over the parameters that require and have a gradient (frozen ones
    are neither counted nor clipped); the total norm before clipping, ``None`` if there is
    no gradient."""
    params = [p for p in params if p.requires_grad and p.grad is not None]
    if not params:
        return None
    return float(clip_grad_norm_(params, **clip_args))


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


__all__ = ['EpochBasedTrainer', 'LogBuffer', 'NonFiniteLossError', 'HOOK_POINTS', 'clip_grads',
           'move_to_device', 'parse_losses', 'unwrap_model']
