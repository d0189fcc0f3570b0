"""High-level inference: build a detector from a config + checkpoint and run it on images."""
from __future__ import annotations

import copy
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

from ..config import Config
from ..datasets.collate import collate
from ..datasets.pipelines import Compose
from ..models import build_detector
from ..models.layers.deform_conv import has_deform_conv
from ..models.layers.fuse_conv_bn import fuse_conv_bn
from ..registry import DATASETS
from ..structures import InstanceResult
from ..utils.checkpoint import MIN_LOADED_FOR_INFERENCE, load_checkpoint
from ..utils.visualization import show_result_ins, show_result_pyplot
from .config_check import load_config

ImageLike = Union[str, np.ndarray]

__all__ = ['init_detector', 'inference_detector', 'show_result_ins', 'show_result_pyplot']


def _dataset_classes(cfg: Config) -> Optional[Sequence[str]]:
    """Class names the config's test dataset would use (its ``classes=`` or its type's
    ``CLASSES``: COCO's, Cityscapes', ...)."""
    test = cfg.get('data', {}).get('test', {}) if isinstance(cfg.get('data'), dict) else {}
    if test.get('classes'):
        return tuple(test['classes'])
    kind = test.get('type', 'CocoDataset')
    try:
        classes = getattr(DATASETS.resolve(kind), 'CLASSES', None) if isinstance(kind, str) \
            else None
    except KeyError:
        return None
    return tuple(classes) if classes else None


def _check_device(device: Union[str, torch.device]) -> torch.device:
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(f"init_detector: device='{device}' was asked for but CUDA is not "
                           "available on this machine; pass device='cpu'")
    return device


def init_detector(config: Union[str, Config], checkpoint: Optional[str] = None,
                  device: Union[str, torch.device] = 'cuda:0',
                  cfg_options: Optional[dict] = None, allow_partial: bool = False,
                  fp16: bool = False, use_ema: bool = True) -> nn.Module:
    """Build the detector of ``config`` (a path or a ``Config``), load ``checkpoint`` if given.

    ``model.CLASSES`` comes from the checkpoint's meta, else from the config's test dataset.
    Checkpoints of the original SOLO release (``{'meta', 'state_dict'}`` with the names
    ``backbone.*``, ``neck.*``, ``bbox_head.*``, ``mask_feat_head.*``) load as they are.
    On a CPU the 4-D weights (and so the activations) use the channels_last memory format
    unless the model has deformable convolutions: same maths, 7-12 % faster (BENCHMARKS.md,
    "channels_last"); ``channels_last = True/False`` in the config decides instead.
    ``fuse_conv_bn = True`` in the config folds the BatchNorm layers into the convolutions
    before them (MMDetection's ``--fuse-conv-bn``): the same outputs up to rounding, 2-8 %
    faster on a CPU, but BatchNorm keys leave ``model.state_dict()``.
    A checkpoint that fills less than half of the model's parameters (weights of another
    architecture) is refused unless ``allow_partial``. ``fp16`` runs the backbone, neck and
    heads under autocast (float16 on CUDA, bfloat16 on a CPU) and post-processing in float32:
    faster, but not bit-identical (see docs/GETTING_STARTED.md, "Mixed precision").
    A checkpoint trained with ``EMAHook`` loads its averaged weights (``ema_state_dict``)
    unless ``use_ema=False``.
    """
    if not isinstance(config, (str, Config)):
        raise TypeError(f'init_detector: config must be a file path or a Config, got {type(config).__name__}')
    cfg = load_config(config, cfg_options)
    device = _check_device(device)
    cfg.model.pretrained = None
    model = build_detector(cfg.model, test_cfg=cfg.get('test_cfg'))
    min_loaded = 0.0 if allow_partial else MIN_LOADED_FOR_INFERENCE
    meta = load_checkpoint(model, checkpoint, map_location='cpu', min_loaded=min_loaded,
                           use_ema=use_ema) \
        if checkpoint else {}
    classes = meta.get('CLASSES') or _dataset_classes(cfg)
    num_classes = getattr(model.bbox_head, 'num_classes', None)
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        raise ValueError(f'init_detector: {len(classes)} class names (from '
                         f"{'the checkpoint meta' if meta.get('CLASSES') else 'the config'}) but the "
                         f'head predicts num_classes={num_classes}; fix num_classes in the config')
    model.CLASSES = tuple(classes) if classes is not None else None
    model.cfg = cfg
    if cfg.get('fuse_conv_bn', False):
        model.eval()
        fuse_conv_bn(model)
    if _use_channels_last(cfg.get('channels_last'), model, device):
        model.to(memory_format=torch.channels_last)
    if fp16:
        model.inference_dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    return model.to(device).eval()


def _use_channels_last(setting: Optional[bool], model: nn.Module, device: torch.device) -> bool:
    """The config's ``channels_last`` if set; by default on a CPU for models without
    deformable convolutions (measured faster; DCN models are not)."""
    if setting is not None:
        return bool(setting)
    return device.type == 'cpu' and not has_deform_conv(model)


def _test_pipeline(cfg: Config) -> Compose:
    pipeline = cfg.get('test_pipeline') or cfg.data.test.pipeline
    return Compose(copy.deepcopy(list(pipeline)))


def _config_batch_size(cfg: Config) -> int:
    from ..datasets import batch_size_of
    data = cfg.get('data')
    test = data.get('test') if isinstance(data, dict) else None
    if not isinstance(test, dict):
        return 1
    return batch_size_of(test, 'data.test') or 1


@torch.no_grad()
def inference_detector(model: nn.Module, imgs: Union[ImageLike, Sequence[ImageLike]],
                       batch_size: Optional[int] = None
                       ) -> Union[InstanceResult, List[InstanceResult]]:
    """Run ``model`` on an image (a path or a BGR ndarray) or a list of them.

    Uses the config's ``test_pipeline``. Returns one ``InstanceResult`` per image (masks at the
    original image size), a list for a list input. A list runs as padded batches of
    ``batch_size`` images, one forward each (default: ``data.test.samples_per_gpu`` /
    ``imgs_per_gpu`` of the config, else 1). Images of the same padded size give the results
    of batch 1 (up to rounding with channels_last weights, the CPU default); a batch of mixed
    sizes is padded to the largest, which moves SOLO's grid slightly (see
    docs/GETTING_STARTED.md, "Batched inference").
    """
    single = not isinstance(imgs, (list, tuple))
    imgs = [imgs] if single else list(imgs)
    for img in imgs:
        if not isinstance(img, (str, np.ndarray)):
            raise TypeError(f'inference_detector: an image must be a file path or a BGR ndarray, '
                            f'got {type(img).__name__}')
    if batch_size is None:
        batch_size = _config_batch_size(model.cfg)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f'inference_detector: batch_size must be a positive int, got {batch_size!r}')
    pipeline = _test_pipeline(model.cfg)
    device = next(model.parameters()).device
    results: List[InstanceResult] = []
    for start in range(0, len(imgs), batch_size):
        data = collate([pipeline(dict(img=img)) for img in imgs[start:start + batch_size]])
        batch = [t.to(device) for t in data['img']] if isinstance(data['img'], list) \
            else data['img'].to(device)
        results += model(img=batch, img_metas=data['img_metas'], return_loss=False, rescale=True)
    return results[0] if single else results
