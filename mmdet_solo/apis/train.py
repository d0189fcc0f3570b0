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
from ..engine.optim import build_optimizer
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


def train_detector(model: nn.Module, dataset, cfg: Config, distributed: bool = False,
                   validate: bool = False, timestamp: Optional[str] = None,
                   meta: Optional[Dict[str, Any]] = None) -> EpochBasedTrainer:
    """Train ``model`` on ``dataset`` as ``cfg`` says (see ``tools/train.py``).

    ``cfg`` needs ``work_dir``, ``data`` (``imgs_per_gpu``, ``workers_per_gpu``), ``optimizer``,
    ``optimizer_config``, ``lr_config``, ``checkpoint_config``, ``log_config``,
    ``total_epochs``; it may have ``evaluation``, ``fp16``, ``channels_last``, ``seed``,
    ``resume_from``, ``load_from``, ``find_unused_parameters``. The model is moved to the GPU
    of this process (CPU without CUDA) and wrapped in ``DistributedDataParallel`` when ``distributed``.
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
    model = model.to(device)
    if distributed:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == 'cuda' else None,
            find_unused_parameters=bool(cfg.get('find_unused_parameters', False)))

    optimizer = build_optimizer(model, cfg.optimizer)
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

    if cfg.get('resume_from'):
        trainer.resume(cfg.resume_from)
    elif cfg.get('load_from'):
        trainer.load_weights(cfg.load_from)
    if trainer.epoch >= trainer.max_epochs:
        logger.warning(f'nothing to do: already trained {trainer.epoch} of '
                       f'{trainer.max_epochs} epochs')
    trainer.run(data_loader)
    return trainer


def _classes(dataset) -> Optional[List[str]]:
    classes = getattr(dataset, 'CLASSES', None)
    if classes is None and hasattr(dataset, 'dataset'):  # RepeatDataset
        classes = getattr(dataset.dataset, 'CLASSES', None)
    return list(classes) if classes is not None else None


__all__ = ['train_detector']
