"""``train_detector``: data loaders, optimizer, trainer and hooks from a config, then train."""
from __future__ import annotations

import os.path as osp
import time
from typing import Any, Dict, List, Optional

import torch
import torch.nn as nn

import mmdet_solo
from ..config import Config
from ..engine.dist import get_dist_info
from ..engine.hooks import (LOGGER_HOOK_TYPES, CheckpointHook, EvalHook, LrUpdaterHook,
                            TensorboardLoggerHook, TextLoggerHook)
from ..engine.optim import build_optimizer, check_auto_scale_lr, scaled_lr
from ..engine.trainer import EpochBasedTrainer
from ..utils.logger import get_root_logger

def _logger_hooks(cfg: Config, work_dir: str, timestamp: str) -> List[Any]:
    hooks = []
    for hook_cfg in cfg.log_config.get('hooks', [dict(type='TextLoggerHook')]):
        hook_cfg = dict(hook_cfg)
        kind = hook_cfg.pop('type')
        if kind == 'TextLoggerHook':
            hooks.append(TextLoggerHook(
                json_file=osp.join(work_dir, f'{timestamp}.log.json'), **hook_cfg))
        elif kind == 'TensorboardLoggerHook':
            hooks.append(TensorboardLoggerHook(**hook_cfg))
        else:
            raise ValueError(f"log_config.hooks: unknown logger '{kind}' "
                             f'(available: {", ".join(LOGGER_HOOK_TYPES)})')
    return hooks


def _eval_hook(cfg: Config, distributed: bool) -> EvalHook:
    from ..datasets import build_dataset, build_test_dataloader
    val_dataset = build_dataset(cfg.data.val, dict(test_mode=True))
    loader = build_test_dataloader(val_dataset, cfg.data, 'val', dist=distributed)
    eval_cfg = dict(cfg.get('evaluation') or dict(interval=1, metric='segm'))
    return EvalHook(loader, **eval_cfg)


def build_custom_hooks(cfg: Config) -> List[Any]:
    """``custom_hooks = [dict(type='EMAHook', momentum=0.0002), ...]``, built from the
    ``HOOKS`` registry (or a dotted path), each with its own ``priority``."""
    from ..engine import ema  # noqa: F401  (registers EMAHook)
    from ..registry import HOOKS
    hooks = cfg.get('custom_hooks') or []
    if not isinstance(hooks, (list, tuple)):
        raise ValueError(f'custom_hooks must be a list of dict(type=...), got {hooks!r}')
    return [HOOKS.build(h) for h in hooks]


def convert_sync_bn(model: nn.Module, logger) -> int:
    """``--sync-bn``: every BatchNorm layer to ``torch.nn.SyncBatchNorm`` (same parameters and
    buffers, so the same state-dict keys); returns how many were converted."""
    before = sum(isinstance(m, nn.modules.batchnorm._BatchNorm)
                 and not isinstance(m, nn.SyncBatchNorm) for m in model.modules())
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if converted is not model:  # the model itself was a BatchNorm layer
        raise TypeError('--sync-bn: the model must contain its BatchNorm layers, not be one')
    logger.info(f'--sync-bn: {before} BatchNorm layer(s) converted to SyncBatchNorm')
    return before


class SyncBNError(RuntimeError):
    """SyncBatchNorm layers that would train in a distributed run without CUDA."""


def check_sync_bn(model: nn.Module, distributed: bool, device: torch.device) -> None:
    """PyTorch's SyncBatchNorm synchronises on GPUs only: refuse a distributed CPU run whose
    SyncBatchNorm layers train (frozen ones, ``norm_eval``, never synchronise)."""
    if not distributed or device.type == 'cuda':
        return
    was_training = model.training
    model.train()  # (the backbone's train() puts norm_eval layers in eval mode)
    training = [n for n, m in model.named_modules()
                if isinstance(m, nn.SyncBatchNorm) and m.training]
    model.train(was_training)
    if training:
        raise SyncBNError(
            f'SyncBatchNorm needs CUDA: PyTorch synchronises batch statistics on GPUs only, and '
            f'this distributed run is on the CPU ({len(training)} SyncBatchNorm layer(s) train, '
            f"e.g. {training[0]}). Use norm_cfg=dict(type='BN') and no --sync-bn on CPUs")


def train_detector(model: nn.Module, dataset, cfg: Config, distributed: bool = False,
                   validate: bool = False, timestamp: Optional[str] = None,
                   meta: Optional[Dict[str, Any]] = None,
                   sync_bn: bool = False) -> EpochBasedTrainer:
    """Train ``model`` on ``dataset`` as ``cfg`` says (see ``tools/train.py``).

    ``cfg`` needs ``work_dir``, ``data`` (``imgs_per_gpu``, ``workers_per_gpu``), ``optimizer``,
    ``optimizer_config``, ``lr_config``, ``checkpoint_config``, ``log_config``,
    ``total_epochs``; it may have ``evaluation``, ``fp16``, ``channels_last``, ``seed``,
    ``resume_from``, ``load_from``, ``find_unused_parameters``, ``auto_scale_lr`` (when
    enabled, ``optimizer.lr`` is scaled by ``world_size * imgs_per_gpu / base_batch_size``).
    The model is moved to the GPU of this process (CPU without CUDA) and wrapped in
    ``DistributedDataParallel`` when ``distributed``; ``sync_bn`` converts its BatchNorm
    layers to ``SyncBatchNorm`` first (distributed GPU runs; a single process keeps them, with
    a warning). ``custom_hooks`` (e.g. ``EMAHook``) are registered with the built-in hooks.
    """
    from ..datasets import build_dataloader
    timestamp = timestamp or time.strftime('%Y%m%d_%H%M%S')
    work_dir = osp.abspath(cfg.work_dir)
    logger = get_root_logger(osp.join(work_dir, f'{timestamp}.log'), cfg.get('log_level', 'INFO'))
    rank, world_size = get_dist_info()
    dataset = dataset[0] if isinstance(dataset, (list, tuple)) else dataset

    num_gpus = int(cfg.get('gpus', 1) or 1)
    if not distributed and num_gpus > 1:
        raise ValueError(f'gpus={num_gpus} without a launcher: multi-GPU training needs '
                         'distributed mode (tools/dist_train.sh CONFIG GPUS)')
    from ..datasets import batch_size_of
    imgs_per_gpu = batch_size_of(cfg.data, 'data')
    if imgs_per_gpu is None:
        raise KeyError('data: set imgs_per_gpu (or samples_per_gpu), the training batch per GPU')
    data_loader = build_dataloader(dataset, imgs_per_gpu, cfg.data.workers_per_gpu,
                                   num_gpus=1, dist=distributed, shuffle=True,
                                   seed=cfg.get('seed'))

    if torch.cuda.is_available():
        device = torch.device('cuda', torch.cuda.current_device())
    else:
        device = torch.device('cpu')
    if sync_bn:
        if distributed:
            convert_sync_bn(model, logger)
        else:
            logger.warning('--sync-bn has no effect in a single process (SyncBatchNorm would '
                           'compute plain BatchNorm): BatchNorm layers kept')
    check_sync_bn(model, distributed, device)
    model = model.to(device)
    if distributed:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == 'cuda' else None,
            find_unused_parameters=bool(cfg.get('find_unused_parameters', False)))

    optimizer = build_optimizer(model, _optimizer_cfg(cfg, world_size, imgs_per_gpu, logger))
    trainer = EpochBasedTrainer(
        model, optimizer, work_dir, max_epochs=cfg.total_epochs, logger=logger,
        log_interval=cfg.log_config.get('interval', 50), amp=cfg.get('fp16'),
        channels_last=bool(cfg.get('channels_last', False)),
        grad_clip=(cfg.get('optimizer_config') or {}).get('grad_clip'),
        meta=dict(meta or {}, mmdet_solo_version=mmdet_solo.__version__,
                  config=cfg.pretty_text, CLASSES=_classes(dataset), seed=cfg.get('seed')))

    # the hooks (called by priority: the lr first, the loggers last)
    trainer.register_hook(LrUpdaterHook(**cfg.lr_config))
    trainer.register_hook(CheckpointHook(**(cfg.get('checkpoint_config') or {})))
    if validate:
        trainer.register_hook(_eval_hook(cfg, distributed))
    for hook in _logger_hooks(cfg, work_dir, timestamp):
        trainer.register_hook(hook)
    for hook in build_custom_hooks(cfg):
        trainer.register_hook(hook)

    if cfg.get('resume_from'):
        trainer.resume(cfg.resume_from)
    elif cfg.get('load_from'):
        trainer.load_weights(cfg.load_from)
    if trainer.epoch >= trainer.max_epochs:
        logger.warning(f'nothing to do: already trained {trainer.epoch} of '
                       f'{trainer.max_epochs} epochs')
    trainer.run(data_loader)
    return trainer


def _optimizer_cfg(cfg: Config, world_size: int, imgs_per_gpu: int, logger) -> dict:
    """``cfg.optimizer``, its ``lr`` scaled by the total batch size when ``auto_scale_lr.enable``
    (``tools/train.py --auto-scale-lr``); ``cfg`` itself is left as written."""
    opt = dict(cfg.optimizer)
    auto = cfg.get('auto_scale_lr')
    if auto is None:
        return opt
    check_auto_scale_lr(auto)
    total = world_size * imgs_per_gpu
    base = auto['base_batch_size']
    if auto.get('enable', False):
        lr = scaled_lr(opt['lr'], auto, world_size, imgs_per_gpu)
        logger.info(f"auto_scale_lr: total batch size {total} ({world_size} process(es) x "
                    f"{imgs_per_gpu} images) vs base_batch_size {base}: optimizer.lr "
                    f"{opt['lr']:g} -> {lr:g} (linear scaling)")
        opt['lr'] = lr
    elif total != base:
        lr = scaled_lr(opt['lr'], auto, world_size, imgs_per_gpu)
        logger.info(f"auto_scale_lr is off: total batch size {total} ({world_size} process(es) "
                    f"x {imgs_per_gpu} images), optimizer.lr {opt['lr']:g} was set for "
                    f'{base}; --auto-scale-lr would use {lr:g}')
    return opt


def _classes(dataset) -> Optional[List[str]]:
    classes = getattr(dataset, 'CLASSES', None)
    if classes is None and hasattr(dataset, 'dataset'):  # RepeatDataset
        classes = getattr(dataset.dataset, 'CLASSES', None)
    return list(classes) if classes is not None else None


__all__ = ['train_detector', 'build_custom_hooks', 'convert_sync_bn', 'check_sync_bn',
           'SyncBNError']
