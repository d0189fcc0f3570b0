"""Every head of every config in configs/solo and configs/solov2 through the same three calls:
``outputs = head(feats, mask_feats)``, ``head.loss(outputs, ...)``, ``head.predict(outputs, ...)``.

64x64 images on the CPU; FPN maps and towers are narrowed to 32 channels and one conv
(everything else as configured: type, grids, strides, scale ranges, DCN, losses, train/test
cfg; the mask-feature head runs without gradient), and configs with the same heads and cfgs are
covered by the first of them.
"""
import glob
import inspect
import os

import numpy as np
import pytest
import torch

from mmdet_solo.config import Config
from mmdet_solo.models.heads import (DecoupledSOLOHead, DecoupledSOLOLightHead, SOLOHead,
                                     SOLOv2Head, SOLOv2LightHead)
from mmdet_solo.registry import HEADS
from mmdet_solo.structures import EncodedInstanceResult, InstanceResult

ROOT = os.path.join(os.path.dirname(__file__), '..', '..', '..')
CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', 'solo', '*.py'))
                 + glob.glob(os.path.join(ROOT, 'configs', 'solov2', '*.py')))


def _heads_key(cfg):
    return repr((cfg.model.bbox_head, cfg.model.get('mask_feat_head'), cfg.get('test_cfg'),
                 cfg.get('train_cfg')))


_FIRST = {}
for _f in CONFIGS:
    _FIRST.setdefault(_heads_key(Config.fromfile(_f)), _f)
UNIQUE = sorted(_FIRST.values())
HEAD_TYPES = (SOLOHead, DecoupledSOLOHead, DecoupledSOLOLightHead, SOLOv2Head, SOLOv2LightHead)
METAS = [dict(img_shape=(60, 64, 3), ori_shape=(30, 32, 3)),
         dict(img_shape=(64, 64, 3), ori_shape=(64, 64, 3))]


def test_one_signature_for_every_head():
    for method in ('forward', 'loss', 'predict'):
        sigs = {str(inspect.signature(getattr(t, method)).replace(return_annotation=None))
                for t in HEAD_TYPES}
        assert len(sigs) == 1, (method, sigs)
    assert list(inspect.signature(SOLOHead.loss).parameters) == [
        'self', 'outputs', 'gt_bboxes', 'gt_labels', 'gt_masks', 'img_metas', 'cfg']


def test_configs_cover_every_head_type():
    types = {Config.fromfile(f).model.bbox_head.type for f in CONFIGS}
    assert types == {t.__name__ for t in HEAD_TYPES}


def _gt(rng, num_classes):
    """Image 0: three rectangles (8-40 px); image 1: none."""
    masks = np.zeros((3, 64, 64), np.uint8)
    boxes = []
    for i, (y, x, h, w) in enumerate([(4, 6, 40, 30), (30, 36, 16, 20), (50, 10, 8, 9)]):
        masks[i, y:y + h, x:x + w] = 1
        boxes.append([x, y, x + w - 1, y + h - 1])
    labels = torch.from_numpy(rng.randint(0, num_classes, 3))
    return ([torch.tensor(boxes, dtype=torch.float32), torch.zeros((0, 4))],
            [labels, torch.zeros(0, dtype=torch.long)], [masks, np.zeros((0, 64, 64), np.uint8)])


def narrowed_head(cfg, batch: int):
    """The config's head narrowed to 32 channels and one conv (seeded init), random 64x64 FPN
    maps of ``batch`` images and the mask-feature head's map on them (None without one)."""
    torch.manual_seed(0)
    head = HEADS.build(dict(cfg.model.bbox_head, in_channels=32, seg_feat_channels=32,
                            stacked_convs=1))
    head.init_weights()
    mask_cfg = cfg.model.get('mask_feat_head')
    mask_head = HEADS.build(dict(mask_cfg, in_channels=32)) if mask_cfg is not None else None
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(batch, 32, 64 // s, 64 // s, generator=g) for s in (4, 8, 16, 32, 64)]
    mask_feats = None
    if mask_head is not None:
        with torch.no_grad():
            mask_feats = mask_head(feats[mask_head.start_level:mask_head.end_level + 1])
    return head, feats, mask_feats


@pytest.mark.parametrize('path', UNIQUE, ids=[os.path.basename(f)[:-3] for f in UNIQUE])
def test_forward_loss_predict(path):
    cfg = Config.fromfile(path)
    head, feats, mask_feats = narrowed_head(cfg, batch=2)
    outputs = head(feats, mask_feats)
    assert isinstance(outputs, tuple) and outputs._fields[0] == 'cate_preds'
    assert [tuple(p.shape) for p in outputs.cate_preds] == [(2, head.num_classes, s, s)
                                                            for s in head.seg_num_grids]
    losses = head.loss(outputs, *_gt(np.random.RandomState(0), head.num_classes), img_metas=METAS,
                       cfg=cfg.get('train_cfg'))
    assert set(losses) == {'loss_ins', 'loss_cate'}
    assert losses['loss_ins'].item() > 0.5 and losses['loss_cate'].item() > 0
    sum(losses.values()).backward()
    grads = {n: p.grad for n, p in head.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())

    confident = [3, head.num_classes // 2 + 1]   # 3 and 41 for COCO
    with torch.no_grad():   # two confident classes and masks above mask_thr: detections
        for name, p in head.named_parameters():
            if name.endswith('cate.bias'):
                p[confident] = 3.0
            elif 'ins_list' in name and name.endswith('bias'):
                p.fill_(3.0)
            elif name == 'solo_kernel.bias':
                p.fill_(1.0)
        outputs = head(feats, mask_feats)
    for encode, kind in ((False, InstanceResult), (True, EncodedInstanceResult)):
        results = head.predict(outputs, METAS, cfg.test_cfg, rescale=True, encode_masks=encode)
        assert len(results) == 2 and all(type(r) is kind for r in results)
        assert len(results[0]) > 0 and set(results[0].labels.tolist()) <= set(confident)
        assert np.all(np.diff(results[0].scores) <= 0)
        assert len(results[0]) <= cfg.test_cfg.max_per_img
    assert results[0].image_size == (30, 32)
    plain = head.predict(outputs, METAS, cfg.test_cfg, rescale=False)
    assert plain[1].masks.shape[1:] == (64, 64)
