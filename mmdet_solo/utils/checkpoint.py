"""Checkpoint files: safe loading, offline model-zoo lookup, atomic saving.

Loading always uses ``torch.load(..., weights_only=True)``: a file that needs arbitrary Python
objects to unpickle is refused. Three containers are understood:

* mmdet / mmcv: ``{'meta': {...}, 'state_dict': {...}, ['optimizer': ...]}``
* detectron2 / AdelaiDet: ``{'model': {...}, ...}``
* a bare ``{name: tensor}`` state dict.

A leading ``module.`` (from ``DataParallel``) is stripped. ``torchvision://<name>`` and
``open-mmlab://<name>`` are resolved *offline* from the torch hub cache
(``torch.hub.get_dir()/checkpoints/<name>-<hash>.pth``); nothing is ever downloaded.
"""
from __future__ import annotations

import glob
import logging
import os
import pickle
import re
import time
import zipfile
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from .io import atomic_write

__all__ = ['CheckpointError', 'hub_checkpoint_dir', 'resolve_model_zoo', 'load_state_dict_file',
           'load_checkpoint', 'save_checkpoint', 'weights_to_cpu']

ZOO_PREFIXES = ('torchvision://', 'open-mmlab://')

# torchvision's file names for the ImageNet weights (old and new URLs), tried first, in this order,
# before any other ``<name>-*.pth`` in the cache. The V1 weights are what the SOLO release used.
KNOWN_ZOO_FILES: Dict[str, Tuple[str, ...]] = {
    'resnet18': ('resnet18-f37072fd.pth', 'resnet18-5c106cde.pth'),
    'resnet34': ('resnet34-b627a593.pth', 'resnet34-333f7ec4.pth'),
    'resnet50': ('resnet50-0676ba61.pth', 'resnet50-19c8e357.pth'),
    'resnet101': ('resnet101-63fe2227.pth', 'resnet101-5d3b4d8f.pth'),
    'resnet152': ('resnet152-394f9c45.pth', 'resnet152-b121ed2d.pth'),
    'resnext50_32x4d': ('resnext50_32x4d-7cdf4587.pth',),
    'resnext101_32x8d': ('resnext101_32x8d-8ba56ff5.pth',),
    'resnext101_64x4d': ('resnext101_64x4d-173b62eb.pth',),
}

_logger = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A file exists but cannot be used as a checkpoint."""


# --------------------------------------------------------------------------- model zoo (offline)

def hub_checkpoint_dir() -> str:
    """The directory torch hub caches downloaded weights in (``$TORCH_HOME/hub/checkpoints``)."""
    return os.path.join(torch.hub.get_dir(), 'checkpoints')


def resolve_model_zoo(name: str) -> str:
    """Map ``'torchvision://resnet50'`` (or ``open-mmlab://...``) to a cached file, offline.

    Raises:
        FileNotFoundError: no matching file in the cache; the message says where it looked and
            how to provide the file.
    """
    prefix = next((p for p in ZOO_PREFIXES if name.startswith(p)), None)
    if prefix is None:
        raise ValueError(f"'{name}' is not a model-zoo name; expected one of the prefixes "
                         f'{ZOO_PREFIXES}')
    model = name[len(prefix):]
    if not re.fullmatch(r'[A-Za-z0-9_.]+', model):
        raise ValueError(f"model-zoo name '{name}': '{model}' is not a valid model name "
                         '(letters, digits, _ and . only)')
    cache = hub_checkpoint_dir()
    candidates = [os.path.join(cache, f) for f in KNOWN_ZOO_FILES.get(model, ())]
    candidates += sorted(glob.glob(os.path.join(cache, glob.escape(model) + '-*.pth')))
    candidates.append(os.path.join(cache, model + '.pth'))
    for path in candidates:
        if os.path.isfile(path):
            return path
    known = KNOWN_ZOO_FILES.get(model)
    example = known[0] if known else f'{model}-<hash>.pth'
    raise FileNotFoundError(
        f"pretrained='{name}': no cached weights found. Looked for "
        f"{os.path.join(cache, model + '-*.pth')} and {os.path.join(cache, model + '.pth')} "
        f'(torch hub dir, set by $TORCH_HOME). mmdet_solo never downloads weights (it assumes '
        f'no network). Provide the file: set pretrained to its path in the config, or copy it '
        f"into {cache} (e.g. as {example}); or set pretrained=None to start from random weights.")


# --------------------------------------------------------------------------------------- loading

def _weights_only_culprit(err: Exception) -> str:
    m = re.search(r'Unsupported global: GLOBAL ([\w.]+)', str(err))
    if m:
        return f' (it references {m.group(1)})'
    m = re.search(r'Unsupported operand \d+', str(err))
    return f' ({m.group(0)})' if m else ''


_MAGIC = ((b'\xff\xd8\xff', 'a JPEG image'), (b'\x89PNG', 'a PNG image'),
          (b'GIF8', 'a GIF image'), (b'%PDF', 'a PDF document'), (b'\x1f\x8b', 'a gzip file'))


def _check_torch_file(path: str) -> None:
    """``torch.save`` writes a zip archive (or, before torch 1.6, a pickle starting with its
    protocol byte 0x80): anything else is not a checkpoint, whatever its name says."""
    if zipfile.is_zipfile(path):
        return
    with open(path, 'rb') as f:
        head = f.read(16)
    if head[:1] == b'\x80' or head.startswith(b'PK\x03\x04'):  # (a cut zip: torch says)
        return
    kind = next((what for magic, what in _MAGIC if head.startswith(magic)), None)
    if kind is None:
        kind = 'a text file' if head and all(32 <= b < 127 or b in b'\t\r\n' for b in head) \
            else f'unknown data (starts with {head[:8].hex(" ")})' if head else 'an empty file'
    raise CheckpointError(f"'{path}' is not a checkpoint: it is {kind}, not a file written by "
                          'torch.save (a zip archive or a pickle)')


def _torch_load(path: str, map_location) -> object:
    _check_torch_file(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if 'Weights only load failed' in str(e):
            raise CheckpointError(
                f"checkpoint '{path}' contains pickled Python objects that need code to unpickle"
                f'{_weights_only_culprit(e)}; it is refused for safety (mmdet_solo loads with '
                'weights_only=True). If you trust it, re-save only its tensors: '
                "torch.save({'state_dict': sd, 'meta': {}}, new_path).") from e
        raise CheckpointError(f"'{path}' is not a PyTorch checkpoint "
                              f'(unpickling failed: {e})') from e
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as e:
        why = str(e).split('\n')[0] or type(e).__name__
        raise CheckpointError(f"'{path}' is not a valid PyTorch checkpoint, or it is truncated or "
                              f'corrupted ({type(e).__name__}: {why})') from e


def _is_state_dict(obj: object) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def load_state_dict_file(path: str, map_location: Union[str, torch.device, None] = 'cpu',
                         use_ema: bool = False
                         ) -> Tuple['OrderedDict[str, torch.Tensor]', dict]:
    """Read a checkpoint file safely. ``use_ema``: the averaged weights of ``EMAHook``
    (``ema_state_dict``, same names) instead of ``state_dict`` when the file has them (then
    ``meta['ema_weights']`` is ``True``).

    Returns:
        ``(state_dict, meta)``: ``{name: tensor}`` with any ``module.`` prefix removed, and the
        checkpoint's ``meta`` dict (``{}`` when there is none).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file '{path}' does not exist")
    ckpt = _torch_load(path, map_location)
    meta: dict = {}
    if isinstance(ckpt, Mapping) and isinstance(ckpt.get('state_dict'), Mapping):
        state_dict, meta = ckpt['state_dict'], ckpt.get('meta') or {}
        # (ours only: meta['ema'] marks it; MMEngine's ema_state_dict is an AveragedModel's,
        # and its state_dict already holds the averaged weights)
        if use_ema and isinstance(meta, Mapping) and isinstance(meta.get('ema'), Mapping) \
                and _is_state_dict(ckpt.get('ema_state_dict')):
            state_dict, meta = ckpt['ema_state_dict'], dict(meta, ema_weights=True)
    elif isinstance(ckpt, Mapping) and isinstance(ckpt.get('model'), Mapping):
        state_dict = ckpt['model']
    else:
        state_dict = ckpt
    if not _is_state_dict(state_dict):
        if isinstance(ckpt, Mapping):
            bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)][:5] \
                if isinstance(state_dict, Mapping) else []
            detail = f'top-level keys {list(ckpt)[:10]}' + (
                f'; non-tensor entries {bad}' if bad else '')
        else:
            detail = f'a {type(ckpt).__name__}'
        raise CheckpointError(
            f"checkpoint '{path}' holds no state dict: expected {{'state_dict': ...}} (mmdet), "
            f"{{'model': ...}} (detectron2) or a non-empty mapping name -> tensor, got {detail}")
    if not isinstance(meta, dict):
        meta = {'meta': meta}
    keys = list(state_dict)
    if all(k.startswith('module.') for k in keys):
        state_dict = OrderedDict((k[len('module.'):], v) for k, v in state_dict.items())
    return OrderedDict(state_dict), dict(meta)


def _format_keys(keys: Sequence[str]) -> str:
    return '\n'.join(f'    {k}' for k in keys)


# inference and test tools refuse a checkpoint that fills less of the model than this
MIN_LOADED_FOR_INFERENCE = 0.5


def load_checkpoint(model: nn.Module, filename: str,
                    map_location: Union[str, torch.device, None] = 'cpu', strict: bool = False,
                    logger: Optional[logging.Logger] = None,
                    ignore_prefixes: Sequence[str] = (), min_loaded: float = 0.0,
                    use_ema: bool = True) -> dict:
    """Load a checkpoint (file path or ``torchvision://name``) into ``model``.

    Checkpoints of MMDetection 2.x/3.x, AdelaiDet and PaddleDetection (``.pdparams``) are
    recognised by their key names and converted (``mmdet_solo.utils.convert``) first.
    Tensors whose shape differs from the model's are skipped. Missing keys, unexpected keys and
    shape mismatches are reported in one message: a warning, or a ``RuntimeError`` when
    ``strict`` (the matching tensors are loaded in both cases). Checkpoint keys starting with one
    of ``ignore_prefixes`` are dropped silently (``fc.`` is always dropped for ``torchvision://``).
    ``min_loaded``: the share of the model's parameter values (by element count) the checkpoint
    must fill, else ``CheckpointError`` (e.g. R50 weights in an R18 config; the inference and
    test tools ask for :data:`MIN_LOADED_FOR_INFERENCE` unless ``--allow-partial``).
    ``use_ema``: a checkpoint with ``ema_state_dict`` (``EMAHook``) loads those averaged
    weights (logged); ``False`` loads its raw ``state_dict``.

    Returns:
        the checkpoint's ``meta`` dict (``{}`` if it has none).
    """
    logger = logger or _logger
    ignore = tuple(ignore_prefixes)
    path = filename
    if isinstance(filename, str) and filename.startswith(ZOO_PREFIXES):
        path = resolve_model_zoo(filename)
        if filename.startswith('torchvision://'):
            ignore += ('fc.',)
    # foreign formats (mmdet, AdelaiDet, Paddle .pdparams) are detected and renamed to ours
    from .convert.io import read_checkpoint
    state_dict, meta, _ = read_checkpoint(path, map_location, logger=logger, use_ema=use_ema)
    if meta.get('ema_weights'):
        logger.info(f"load_checkpoint '{filename}': using its EMA weights (ema_state_dict; "
                    '--no-ema / use_ema=False for the raw ones)')
    if ignore:
        state_dict = OrderedDict((k, v) for k, v in state_dict.items() if not k.startswith(ignore))
    target = model.module if hasattr(model, 'module') and isinstance(model.module, nn.Module) \
        else model
    own = target.state_dict()
    mismatched: List[str] = []
    skipped = set()
    loadable = OrderedDict()
    for k, v in state_dict.items():
        if k in own and own[k].shape != v.shape:
            mismatched.append(f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}')
            skipped.add(k)
        else:
            loadable[k] = v
    # BatchNorm fills an absent num_batches_tracked itself, so old files do not report it
    result = target.load_state_dict(loadable, strict=False)
    missing = [k for k in result.missing_keys if k not in skipped]
    problems = []
    if missing:
        problems.append(f'missing keys in the checkpoint ({len(missing)}):\n'
                        + _format_keys(missing))
    if result.unexpected_keys:
        problems.append(f'unexpected keys in the checkpoint ({len(result.unexpected_keys)}):\n'
                        + _format_keys(result.unexpected_keys))
    if mismatched:
        problems.append(f'shape mismatch, not loaded ({len(mismatched)}):\n'
                        + _format_keys(mismatched))
    where = filename if path == filename else f'{filename} ({path})'
    total = sum(p.numel() for p in target.parameters())
    loaded = sum(p.numel() for n, p in target.named_parameters() if n in loadable)
    if total and loaded / total < min_loaded:
        raise CheckpointError(
            f"checkpoint '{where}' fills only {loaded / total:.0%} of {type(target).__name__}'s "
            f'parameters (at least {min_loaded:.0%} needed): it is not a checkpoint of this '
            f'model/config ({len(missing)} missing keys, {len(result.unexpected_keys)} unexpected, '
            f'{len(mismatched)} shape mismatches, e.g. {(mismatched or missing)[:3]}). Pass '
            '--allow-partial (allow_partial=True) to run with it anyway')
    if problems:
        msg = f"load_checkpoint '{where}' into {type(target).__name__}:\n" + '\n'.join(problems)
        if strict:
            raise RuntimeError(msg)
        logger.warning(msg)
    return meta


# ---------------------------------------------------------------------------------------- saving

def weights_to_cpu(state_dict: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Detached CPU copies of a state dict's tensors, same order."""
    return OrderedDict((k, v.detach().cpu()) for k, v in state_dict.items())


def save_checkpoint(model: nn.Module, filename: str, optimizer=None,
                    meta: Optional[dict] = None, extra: Optional[dict] = None) -> None:
    """Write ``{'meta', 'state_dict', ['optimizer']}`` (mmcv layout) atomically, plus the
    top-level entries of ``extra`` (e.g. ``ema_state_dict``).

    ``optimizer`` may be a ``torch.optim.Optimizer`` or a dict of them. The file is written to a
    temporary file in the same directory and moved into place with ``os.replace``
    (:func:`~mmdet_solo.utils.io.atomic_write`).
    """
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f'save_checkpoint({filename}): meta must be a dict or None, '
                        f'got {type(meta).__name__}')
    meta = dict(meta or {})
    meta.setdefault('time', time.asctime())
    target = model.module if hasattr(model, 'module') and isinstance(model.module, nn.Module) \
        else model
    ckpt = {'meta': meta, 'state_dict': weights_to_cpu(target.state_dict())}
    if isinstance(optimizer, torch.optim.Optimizer):
        ckpt['optimizer'] = optimizer.state_dict()
    elif isinstance(optimizer, dict):
        ckpt['optimizer'] = {name: opt.state_dict() for name, opt in optimizer.items()}
    elif optimizer is not None:
        raise TypeError(f'save_checkpoint({filename}): optimizer must be an Optimizer, a dict of '
                        f'them or None, got {type(optimizer).__name__}')
    clash = [k for k in (extra or {}) if k in ckpt or k == 'optimizer']
    if clash:
        raise ValueError(f'save_checkpoint({filename}): extra entries {clash} would replace the '
                         "checkpoint's own")
    ckpt.update(extra or {})
    filename = os.path.abspath(os.fspath(filename))

    def write(f) -> None:
        try:  # flushed here too, so that a full disk is reported as such
            torch.save(ckpt, f)
            f.flush()
            os.fsync(f.fileno())
        except (RuntimeError, OSError) as e:
            raise _write_error(filename, e) from e
    atomic_write(filename, write)


def _write_error(filename: str, err: Exception) -> OSError:
    """A failed checkpoint write as an ``OSError`` naming the file and the cause (torch reports a
    full disk as 'enforce fail at inline_container.cc ... file write failed')."""
    import errno
    import shutil
    folder = os.path.dirname(filename)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if getattr(err, 'errno', None) == errno.ENOSPC or free == 0 or \
            (free is not None and free < 64 * 2 ** 20 and 'write' in str(err)):
        return OSError(errno.ENOSPC, f'cannot write checkpoint {filename!r}: no space left on the '
                                     f'device of {folder!r} ({free} bytes free)')
    return OSError(getattr(err, 'errno', None) or errno.EIO,
                   f'cannot write checkpoint {filename!r}: {type(err).__name__}: '
                   f"{str(err).splitlines()[0] if str(err) else ''}")


def remove_stale_temp_checkpoints(folder: str) -> List[str]:
    """Delete the hidden ``.<name>.pth.<random>.tmp`` files that :func:`save_checkpoint` (and
    the ``latest.pth`` copy) leave when the process is killed while writing; returns their
    names. Only files of exactly that pattern are touched."""
    pattern = re.compile(r'^\.[^/]+\.pth\.[A-Za-z0-9_]+\.tmp$')
    removed = []
    for path in sorted(glob.glob(os.path.join(glob.escape(folder), '.*.pth.*.tmp'))):
        name = os.path.basename(path)
        if pattern.match(name) and os.path.isfile(path):
            os.remove(path)
            removed.append(name)
    return removed
