"""Single-stage instance detectors: backbone → neck → SOLO head (+ SOLOv2 mask-feature head)."""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence

import torch
import torch.nn as nn

from ...ops.cpu_cache import cpu_allocation_cache
from ...registry import BACKBONES, HEADS, MODELS, NECKS
from ...structures import InstanceResult
from ..heads.postprocess import check_test_cfg


@MODELS.register_module()
class SingleStageInsDetector(nn.Module):
    """The original's detector; ``SOLO`` and ``SOLOv2`` are this class under their config names.

    Child names (``backbone``, ``neck``, ``bbox_head``, ``mask_feat_head``) are the original's,
    so its checkpoints load as they are. ``inference_dtype`` (``None``: float32) runs the
    network under autocast at test time (``torch.bfloat16`` on a CPU, ``torch.float16`` on
    CUDA; ``init_detector(..., fp16=True)``); post-processing always works in float32.
    """

    inference_dtype: Optional[torch.dtype] = None

    def __init__(self, backbone: dict, neck: Optional[dict] = None, bbox_head: Optional[dict] = None,
                 mask_feat_head: Optional[dict] = None, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, pretrained: Optional[str] = None):
        super().__init__()
        if bbox_head is None:
            raise ValueError(f'{type(self).__name__}: the model config needs a bbox_head')
        self.backbone = BACKBONES.build(backbone)
        self.neck = NECKS.build(neck) if neck is not None else None
        self.mask_feat_head = HEADS.build(mask_feat_head) if mask_feat_head is not None else None
        self.bbox_head = HEADS.build(bbox_head)
        self.train_cfg = train_cfg if train_cfg is not None else {}
        check_test_cfg(test_cfg)
        self.test_cfg = test_cfg if test_cfg is not None else {}
        self.CLASSES: Optional[Sequence[str]] = None
        self.init_weights(pretrained)

    def init_weights(self, pretrained: Optional[str] = None) -> None:
        self.backbone.init_weights(pretrained=pretrained)
        for module in (self.neck, self.mask_feat_head, self.bbox_head):
            if module is not None and hasattr(module, 'init_weights'):
                module.init_weights()

    def extract_feat(self, img: torch.Tensor):
        x = self.backbone(img)
        return self.neck(x) if self.neck is not None else x

    def forward_heads(self, feats: Sequence[torch.Tensor]) -> NamedTuple:
        """The bbox head's outputs (``outputs`` of its ``loss``/``predict``) on the FPN maps;
        SOLOv2's head also gets the mask-feature head's map."""
        mask_feats = None
        if self.mask_feat_head is not None:
            start, end = self.mask_feat_head.start_level, self.mask_feat_head.end_level
            mask_feats = self.mask_feat_head(feats[start:end + 1])
        return self.bbox_head(feats, mask_feats)

    def _head_outputs(self, img: torch.Tensor) -> NamedTuple:
        return self.forward_heads(self.extract_feat(img))

    def forward_train(self, img: torch.Tensor, img_metas: List[dict], gt_bboxes: List[torch.Tensor],
                      gt_labels: List[torch.Tensor], gt_masks: list) -> dict:
        """Losses for a batch. ``gt_labels`` are 0-based; ``gt_masks`` (K, H_pad, W_pad) uint8."""
        if not (len(img_metas) == len(gt_bboxes) == len(gt_labels) == len(gt_masks) == img.shape[0]):
            raise ValueError(f'forward_train: batch of {img.shape[0]} images but {len(img_metas)} '
                             f'img_metas, {len(gt_bboxes)} gt_bboxes, {len(gt_labels)} gt_labels and '
                             f'{len(gt_masks)} gt_masks')
        outputs = self._head_outputs(img)
        return self.bbox_head.loss(outputs, gt_bboxes, gt_labels, gt_masks, img_metas,
                                   self.train_cfg)

    @torch.no_grad()
    def simple_test(self, img: torch.Tensor, img_metas: List[dict], rescale: bool = True,
                    encode_masks: bool = False) -> List[InstanceResult]:
        """One ``InstanceResult`` per image, masks at ``ori_shape`` when ``rescale``; with
        ``encode_masks`` an ``EncodedInstanceResult`` (RLE masks, encoded while pasting).
        On a CPU large blocks are reused across calls (:mod:`mmdet_solo.ops.cpu_cache`)."""
        with cpu_allocation_cache(img.device):
            return self.bbox_head.predict(self._test_outputs(img), img_metas, self.test_cfg,
                                          rescale=rescale, encode_masks=encode_masks)

    def _test_outputs(self, img: torch.Tensor) -> NamedTuple:
        """Head outputs at test time (under autocast if ``inference_dtype``, then float32)."""
        if self.inference_dtype is None:
            return self._head_outputs(img)
        with torch.autocast(img.device.type, dtype=self.inference_dtype):
            outputs = self._head_outputs(img)
        return outputs_float32(outputs)

    @torch.no_grad()
    def aug_test(self, imgs: Sequence[torch.Tensor], img_metas: Sequence[List[dict]],
                 rescale: bool = True, encode_masks: bool = False) -> List[InstanceResult]:
        """Test-time augmentation (``MultiScaleFlipAug`` with several scales and/or
        ``flip=True``): ``imgs[a]`` is the (B, 3, H_a, W_a) batch of view ``a``, ``img_metas[a]``
        its metas. Views of one input size (a scale and its flip) run as one forward of 2B
        images; the head merges the views (:meth:`BaseGridHead.predict_aug`)."""
        if len(imgs) != len(img_metas):
            raise ValueError(f'aug_test: {len(imgs)} image batches but {len(img_metas)} lists '
                             'of img_metas (one per augmentation)')
        outputs: List[Optional[NamedTuple]] = [None] * len(imgs)
        by_shape: dict = {}
        for a, img in enumerate(imgs):
            by_shape.setdefault(tuple(img.shape), []).append(a)
        with cpu_allocation_cache(imgs[0].device):
            for views in by_shape.values():
                out = self._test_outputs(torch.cat([imgs[a] for a in views]))
                for k, a in enumerate(views):
                    batch = imgs[a].shape[0]
                    outputs[a] = type(out)(*(_batch_slice(o, k * batch, (k + 1) * batch)
                                             for o in out))
            return self.bbox_head.predict_aug(outputs, img_metas, self.test_cfg,
                                              rescale=rescale, encode_masks=encode_masks)

    def forward(self, img, img_metas, return_loss: bool = True, **kwargs):
        if return_loss:
            return self.forward_train(img, img_metas, **kwargs)
        if isinstance(img, (list, tuple)):  # MultiScaleFlipAug output: one entry per augmentation
            if len(img) != 1:
                return self.aug_test(img, img_metas, **kwargs)
            img, img_metas = img[0], img_metas[0]
        return self.simple_test(img, img_metas, **kwargs)


def _batch_slice(x, start: int, end: int):
    """Images ``start:end`` of a batched output (a tensor, or a list/tuple of tensors)."""
    if isinstance(x, torch.Tensor):
        return x[start:end]
    return type(x)(_batch_slice(v, start, end) for v in x)


def outputs_float32(outputs: NamedTuple) -> NamedTuple:
    """Head outputs (a NamedTuple of tensors and lists of tensors) in float32, e.g. after
    autocast."""
    return type(outputs)(*(_float32(o) for o in outputs))


def _float32(x):
    """A tensor, or the tensors of a list or tuple, in float32."""
    if isinstance(x, torch.Tensor):
        return x.float()
    return type(x)(_float32(v) for v in x)


@MODELS.register_module()
class SOLO(SingleStageInsDetector):
    """SOLO and Decoupled SOLO (Wang et al. 2019)."""


@MODELS.register_module()
class SOLOv2(SingleStageInsDetector):
    """SOLOv2 (Wang et al. 2020): needs a ``mask_feat_head``."""

    def __init__(self, *args, **kwargs):
        if kwargs.get('mask_feat_head') is None:
            raise ValueError('SOLOv2: the model config needs a mask_feat_head (e.g. MaskFeatHead)')
        super().__init__(*args, **kwargs)
