"""A typo in a config is an error, never a silent no-op: :func:`check_config`.

Every key a config sets must be one that something reads:

* **Top-level names.** mmdet_solo reads :data:`TOP_LEVEL_KEYS`. Any other top-level name is
  a *composition variable* (``img_norm_cfg``, ``classes``, ``data_root``, ``train_pipeline``,
  ...) and is allowed only in a Python config file that reads it itself (``**img_norm_cfg``,
  ``data_root + 'train2017/'``). A name that no code and not its own file reads is refused:
  ``optimzer = dict(...)`` is a typo, and ``img_norm_cfg = ...`` in a file whose pipelines live
  in its ``_base_`` changes nothing (a base never sees the variables of a file that inherits it).
* **Dicts with a ``type``** (model parts, losses, datasets, pipeline steps, the optimizer,
  logger hooks): each key must be an argument of what is built.
* **Fixed dicts**: ``train_cfg``, ``test_cfg``, ``data``, ``optimizer_config``, ``lr_config``,
  ``checkpoint_config``, ``log_config``, ``evaluation``, ``fp16``, ``dist_params``,
  ``auto_scale_lr`` take the keys of the code that reads them.
* **custom_hooks**: a list of ``dict(type=...)`` built from the ``HOOKS`` registry (``EMAHook``).

``--cfg-options`` overrides are checked before they are merged (:func:`check_cfg_options`).
"""
from __future__ import annotations

import copy
from typing import Any, Iterable, Mapping, Optional, Union

import torch

from ..config import Config, ConfigError
from ..registry import (BACKBONES, DATASETS, HEADS, LOSSES, MODELS, NECKS, PIPELINES,
                        Registry, accepted_args, check_keys, did_you_mean)

# what the tools and the trainer read at the top level of a config
TOP_LEVEL_KEYS = (
    'model', 'train_cfg', 'test_cfg', 'data', 'test_pipeline', 'optimizer', 'optimizer_config',
    'lr_config', 'checkpoint_config', 'log_config', 'total_epochs', 'evaluation', 'fp16',
    'channels_last', 'fuse_conv_bn', 'seed', 'gpus', 'work_dir', 'resume_from', 'load_from',
    'auto_resume', 'find_unused_parameters', 'deterministic', 'cudnn_benchmark', 'log_level',
    'dist_params', 'workflow', 'auto_scale_lr', 'custom_hooks')
# settings of the original / MMDetection 2.x configs that mmdet_solo does not read, and why
NOT_READ = {
    'device_ids': 'the launcher chooses the GPUs (tools/dist_train.sh CONFIG GPUS)',
    'custom_imports': "give a dotted path as the type instead (type='my_pkg.heads.MyHead')",
}
# top-level settings that are True or False (None: the default)
SWITCHES = ('channels_last', 'fuse_conv_bn')
TRAIN_CFG_KEYS = ('sync_normalizer',)
DATA_KEYS = ('imgs_per_gpu', 'samples_per_gpu', 'workers_per_gpu', 'train', 'val', 'test')
FP16_KEYS = ('loss_scale',)
DIST_PARAMS_KEYS = ('backend',)
LOG_CONFIG_KEYS = ('interval', 'hooks')
OPTIMIZER_CONFIG_KEYS = ('grad_clip',)

# the registry of a ``type``-dict by the key that holds it
CHILD_REGISTRIES = {'backbone': BACKBONES, 'neck': NECKS, 'bbox_head': HEADS,
                    'mask_feat_head': HEADS, 'dataset': DATASETS, 'datasets': DATASETS,
                    'pipeline': PIPELINES, 'transforms': PIPELINES}

CFG_OPTIONS_RULE = (
    'Each KEY is a dotted path into the config (list items by index, e.g. '
    'data.train.pipeline.2.img_scale). Every component but the last must already exist; the '
    'last may be new only inside an existing dict (e.g. optimizer.nesterov=True). A '
    'top-level key the config lacks is accepted only if mmdet_solo reads it '
    f"({', '.join(TOP_LEVEL_KEYS[:6])}, ...; e.g. evaluation.interval=1); anything "
    'else is refused as a probable typo.')


def check_top_level(cfg: Config) -> None:
    """Refuse a top-level name that neither mmdet_solo nor its own config file reads."""
    unread = cfg.unread_names
    for key in cfg:
        if key in TOP_LEVEL_KEYS:
            continue
        files = ([f for k, f in unread if k == key] if unread is not None
                 else ['the given dict'])
        if files and key in NOT_READ:
            raise ConfigError(f"{files[-1]}: top-level '{key}' is not read by mmdet_solo: "
                              f'{NOT_READ[key]}; delete it')
        if files:
            raise ConfigError(
                f"{files[-1]}: top-level '{key}' is read by nothing"
                f'{did_you_mean(key, TOP_LEVEL_KEYS)}. mmdet_solo reads '
                f"{', '.join(TOP_LEVEL_KEYS)}; any other top-level name must be a variable "
                "its own file uses, e.g. dict(type='Normalize', **img_norm_cfg). A _base_ file "
                'never sees the variables of a file that inherits it: override the setting '
                'that uses the variable (e.g. data.train.pipeline) instead. (A config dumped by '
                'MMDetection keeps such variables: delete them.)')


def framework_keys(cfg: Config) -> Config:
    """``cfg`` without its composition variables (their values are already in the settings
    that use them): what a work dir's copy of the config keeps."""
    return Config({k: v for k, v in cfg.items() if k in TOP_LEVEL_KEYS}, cfg.filename)


def check_built(cfg: Any, registry: Registry, where: str) -> None:
    """Check a ``dict(type=...)`` (or a list of them) against what it builds, recursively."""
    if isinstance(cfg, (list, tuple)):
        for i, item in enumerate(cfg):
            check_built(item, registry, f'{where}.{i}')
        return
    if not isinstance(cfg, Mapping) or not isinstance(cfg.get('type'), str):
        return  # the builder itself names a missing or malformed type
    try:
        obj = registry.resolve(cfg['type'])
    except KeyError as e:
        raise ConfigError(f'{where}.type: {e.args[0]}') from None
    allowed = accepted_args(obj)
    if registry is DATASETS and allowed is not None:
        from ..datasets.builder import LOADER_KEYS
        allowed = allowed | set(LOADER_KEYS)
    check_keys({k: v for k, v in cfg.items() if k != 'type'}, allowed, f"{where} ({cfg['type']})")
    for key, value in cfg.items():
        child = CHILD_REGISTRIES.get(key) or (LOSSES if key.startswith('loss_') else None)
        if child is not None:
            check_built(value, child, f'{where}.{key}')
        elif key in ('train_cfg', 'test_cfg') and value is not None:
            check_head_cfgs({key: value}, f'{where}.')


def check_head_cfgs(cfg: Mapping[str, Any], prefix: str = '') -> None:
    """``train_cfg`` and ``test_cfg``: the keys the SOLO heads read, in range."""
    from ..models.heads.postprocess import check_test_cfg
    if cfg.get('train_cfg') is not None:
        _check_fixed(cfg['train_cfg'], TRAIN_CFG_KEYS, f'{prefix}train_cfg')
    if cfg.get('test_cfg') is not None:
        try:
            check_test_cfg(cfg['test_cfg'])
        except ConfigError as e:
            raise ConfigError(f'{prefix}{e}') from None


def _check_fixed(value: Any, keys: Optional[Iterable[str]], where: str) -> None:
    if not isinstance(value, Mapping):
        raise ConfigError(f'{where} must be a dict, got {type(value).__name__}: {value!r}')
    check_keys(value, keys, where)


def _hook_args(cls: Any, exclude: Iterable[str] = ()) -> frozenset:
    return frozenset(accepted_args(cls) or ()) - set(exclude)


def check_runtime(cfg: Config) -> None:
    """The optimizer, schedule, checkpoint, logging, evaluation and precision dicts."""
    from ..engine import hooks
    from ..engine.optim import optimizer_class
    if cfg.get('optimizer') is not None:
        opt = cfg.optimizer
        _check_fixed(opt, None, 'optimizer')
        if isinstance(opt.get('type'), str):
            cls = optimizer_class(opt['type'])
            check_keys({k: v for k, v in opt.items() if k != 'type'},
                       _hook_args(cls, ['params']), f"optimizer ({opt['type']})")
    fixed = {'optimizer_config': OPTIMIZER_CONFIG_KEYS,
             'lr_config': _hook_args(hooks.LrUpdaterHook),
             'checkpoint_config': _hook_args(hooks.CheckpointHook),
             'log_config': LOG_CONFIG_KEYS, 'fp16': FP16_KEYS, 'dist_params': DIST_PARAMS_KEYS}
    for key, allowed in fixed.items():
        if cfg.get(key) is not None:
            _check_fixed(cfg[key], allowed, key)
    grad_clip = (cfg.get('optimizer_config') or {}).get('grad_clip')
    if grad_clip is not None:
        _check_fixed(grad_clip, _hook_args(torch.nn.utils.clip_grad_norm_, ['parameters']),
                     'optimizer_config.grad_clip')
    for i, hook in enumerate((cfg.get('log_config') or {}).get('hooks') or []):
        kind = hook.get('type') if isinstance(hook, Mapping) else None
        if kind in hooks.LOGGER_HOOK_TYPES:
            check_keys({k: v for k, v in hook.items() if k != 'type'},
                       _hook_args(getattr(hooks, kind), ['json_file']),
                       f'log_config.hooks.{i} ({kind})')
    if cfg.get('evaluation') is not None:
        _check_fixed(cfg.evaluation, _evaluation_keys(cfg), 'evaluation')
    for switch in SWITCHES:
        if cfg.get(switch) is not None and not isinstance(cfg[switch], bool):
            raise ConfigError(f'{switch}={cfg[switch]!r}: expected True or False')
    check_auto_scale_lr_and_hooks(cfg)


def check_auto_scale_lr_and_hooks(cfg: Config) -> None:
    """``auto_scale_lr = dict(enable=bool, base_batch_size=positive int)`` and
    ``custom_hooks = [dict(type=<a HOOKS type>, **its arguments), ...]`` (arguments checked
    against the hook's signature; values by building it)."""
    from ..engine import ema  # noqa: F401  (registers EMAHook)
    from ..engine.optim import check_auto_scale_lr
    from ..registry import HOOKS
    if cfg.get('auto_scale_lr') is not None:
        try:
            check_auto_scale_lr(cfg.auto_scale_lr)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    hooks = cfg.get('custom_hooks')
    if hooks is None:
        return
    if not isinstance(hooks, (list, tuple)):
        raise ConfigError(f'custom_hooks must be a list of dict(type=...), got '
                          f'{type(hooks).__name__}: {hooks!r}')
    for i, hook in enumerate(hooks):
        where = f'custom_hooks.{i}'
        if not isinstance(hook, Mapping) or not isinstance(hook.get('type'), str):
            raise ConfigError(f"{where} must be a dict with a 'type' (one of "
                              f"{', '.join(sorted(HOOKS.module_dict))}), got {hook!r}")
        check_built(hook, HOOKS, where)
        try:
            HOOKS.build(dict(hook))
        except (ValueError, TypeError) as e:
            raise ConfigError(f'{where}: {e}') from None


def _evaluation_keys(cfg: Config) -> Optional[frozenset]:
    """EvalHook's own arguments and those of the validation set's ``evaluate``."""
    from ..engine.hooks import EvalHook
    val = (cfg.get('data') or {}).get('val')
    if not isinstance(val, Mapping) or not isinstance(val.get('type'), str):
        return None
    evaluate = getattr(DATASETS.resolve(val['type']), 'evaluate', None)
    if evaluate is None:
        return None
    own = accepted_args(evaluate)
    return None if own is None else (_hook_args(EvalHook, ['data_loader'])
                                     | (own - {'results', 'logger'}))


def check_config(cfg: Config) -> None:
    """Refuse any key of ``cfg`` that nothing reads (see the module docstring), naming its
    path and the close matches; raises :class:`~mmdet_solo.config.ConfigError`."""
    check_top_level(cfg)
    if cfg.get('model') is not None:
        check_built(cfg.model, MODELS, 'model')
    check_head_cfgs(cfg)
    data = cfg.get('data')
    if data is not None:
        _check_fixed(data, DATA_KEYS, 'data')
        for split in ('train', 'val', 'test'):
            if data.get(split) is not None:
                check_built(data[split], DATASETS, f'data.{split}')
    if cfg.get('test_pipeline') is not None:
        check_built(cfg.test_pipeline, PIPELINES, 'test_pipeline')
    check_runtime(cfg)


def load_config(config: Union[str, Config], cfg_options: Optional[Mapping[str, Any]] = None
                ) -> Config:
    """The config at path ``config`` (or a copy of a ``Config``) with ``cfg_options`` merged
    (checked first), every key checked by :func:`check_config`."""
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    elif isinstance(config, str):
        cfg = Config.fromfile(config)
    else:
        raise TypeError(f'config must be a file path or a Config, got {type(config).__name__}')
    if cfg_options:
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    check_config(cfg)
    return cfg


def check_cfg_options(cfg: Config, options: Mapping[str, Any]) -> None:
    """Refuse ``--cfg-options`` keys that do not name something in ``cfg`` (see
    :data:`CFG_OPTIONS_RULE`); raises :class:`~mmdet_solo.config.ConfigError`."""
    for dotted in options:
        parts = str(dotted).split('.')
        if parts[0] in cfg and parts[0] not in TOP_LEVEL_KEYS:
            raise ConfigError(f"--cfg-options '{dotted}': '{parts[0]}' is a variable the config "
                              'file uses to compose its settings; it is read by nothing after '
                              'loading, so override the setting that uses it (e.g. '
                              'data.train.pipeline.2.mean) instead')
        node: Any = cfg.to_dict()
        for depth, part in enumerate(parts):
            parent = '.'.join(parts[:depth])
            if isinstance(node, list):
                try:
                    idx = int(part)
                except ValueError:
                    raise ConfigError(f"--cfg-options '{dotted}': '{parent}' is a list, so "
                                      f"'{part}' must be an integer index") from None
                if not -len(node) <= idx < len(node):
                    raise ConfigError(f"--cfg-options '{dotted}': index {idx} out of range for "
                                      f"'{parent}' (length {len(node)})")
                node = node[idx]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f"--cfg-options '{dotted}': '{parent}' holds a "
                                  f'{type(node).__name__}, not a dict or list')
            if part in node:
                node = node[part]
                continue
            if depth == 0 and part in TOP_LEVEL_KEYS:
                break  # a setting mmdet_solo reads, created by the override
            if depth == len(parts) - 1 and depth > 0:
                break  # a new key inside an existing dict (check_config judges it)
            where = f"'{parent}'" if depth else 'the config'
            raise ConfigError(f"--cfg-options '{dotted}': {where} has no key "
                              f"'{part}'{did_you_mean(part, map(str, node))}. "
                              f'Rule: {CFG_OPTIONS_RULE}')


__all__ = ['load_config', 'framework_keys', 'check_config', 'check_cfg_options', 'TOP_LEVEL_KEYS',
           'CFG_OPTIONS_RULE']
