"""Mask test-time augmentation (``BaseGridHead.predict_aug``, ``SingleStageInsDetector.aug_test``):
one view gives ``predict``'s results exactly, the flip merge of a horizontally symmetric image is
symmetric (every head kind, the 8 head setups of test_head_protocol), and the detector runs
flip + multi-scale pipelines through ``inference_detector`` and the test loop."""
import os

import cv2
import numpy as np
import pytest
import torch

from coco_fixtures import tiny_coco  # noqa: F401
from golden_utils import ROOT

from mmdet_solo.apis import inference_detector, init_detector, single_gpu_test
from mmdet_solo.config import Config
from mmdet_solo.datasets import build_dataset, build_test_dataloader
from mmdet_solo.models.heads import tta
from test_head_protocol import UNIQUE, narrowed_head

# 64x64 inputs that fill the padded input (no padding: the mirror of a cell is a cell)
META = dict(img_shape=(64, 64, 3), ori_shape=(48, 48, 3), pad_shape=(64, 64, 3),
            scale_factor=4 / 3, flip=False)
FLIPPED = dict(META, flip=True)


def _head_and_outputs(path):
    """A narrowed head of the config (as test_head_protocol) and its outputs on random FPN maps
    of one image, biased so that many cells are candidates with masks above mask_thr."""
    cfg = Config.fromfile(path)
    head, feats, mask_feats = narrowed_head(cfg, batch=1)
    with torch.no_grad():
        for name, p in head.named_parameters():
            if name.endswith('cate.bias'):
                p[[1, 3]] = -2.5   # near score_thr: some cells pass, some not
            elif name.endswith('cate.weight'):
                p.normal_(0, 0.05)
            elif 'ins_list' in name and name.endswith('weight') or name == 'solo_kernel.weight':
                p.normal_(0, 0.5)   # masks that differ from cell to cell
        return head, head(feats, mask_feats), cfg.test_cfg


@pytest.mark.parametrize('path', UNIQUE, ids=[os.path.basename(f)[:-3] for f in UNIQUE])
def test_one_view_gives_predict_exactly_and_flip_merge_is_symmetric(path):
    head, outputs, test_cfg = _head_and_outputs(path)
    metas = [dict(META, img_shape=(60, 52, 3), ori_shape=(30, 26, 3), scale_factor=2.0)]
    plain = head.predict(outputs, metas, test_cfg)
    aug = head.predict_aug([outputs], [metas], test_cfg)
    assert sum(len(r) for r in plain) > 0
    for a, b in zip(plain, aug):
        assert np.array_equal(a.masks, b.masks) and np.array_equal(a.labels, b.labels)
        assert np.array_equal(a.scores, b.scores)

    # a symmetric image: its flipped view is the same input, so the network gives the same
    # outputs; the merged candidates must be their own mirror image (label, score, stride, mask)
    masks, labels, scores, strides, inds, ref_meta = head.merge_views(
        [outputs, outputs], [[META], [FLIPPED]], test_cfg)[0]
    assert ref_meta is META and len(labels) > 10

    # every candidate's mirror image is a candidate of the same label, score and stride (up
    # to the rounding of the heads' bilinear resizing); cells of equal scores are matched as a set
    same = ((labels[:, None] == labels[None]) & (scores[:, None] == scores[None])
            & (strides[:, None] == strides[None]))
    i, j = same.nonzero().T
    diff = (masks[inds[i]].flip(-1) - masks[inds[j]]).abs().flatten(1).amax(1)
    best = torch.full((len(labels),), float('inf')).scatter_reduce(0, i, diff, 'amin')
    assert best.max() < 1e-6
    # ... which the unmerged candidates are not (the test can fail)
    one = head.merge_views([outputs], [[META]], test_cfg)[0]
    assert not torch.equal(one[0], one[0].flip(-1)[torch.arange(len(one[0]))])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_flip_and_scale_merge_on_cuda_matches_cpu():
    head, outputs, test_cfg = _head_and_outputs(UNIQUE[-1])   # a SOLOv2 head
    small = dict(META, img_shape=(32, 32, 3), pad_shape=(32, 32, 3), scale_factor=2 / 3)
    views = [outputs, outputs, outputs]
    metas = [[META], [FLIPPED], [small]]
    cpu = head.predict_aug(views, metas, test_cfg)[0]
    cuda_views = [type(o)(*(_to(f, 'cuda') for f in o)) for o in views]
    gpu = head.cuda().predict_aug(cuda_views, metas, test_cfg)[0]
    assert len(cpu) > 0 and np.array_equal(cpu.labels, gpu.labels)
    np.testing.assert_allclose(cpu.scores, gpu.scores, atol=1e-4)
    assert (cpu.masks != gpu.masks).mean() < 1e-3


def _to(x, device):
    return x.to(device) if isinstance(x, torch.Tensor) else [v.to(device) for v in x]


def test_warp_masks_undoes_flip_and_scale():
    m = torch.rand(3, 8, 12)
    src = dict(img_shape=(32, 48, 3), scale_factor=1.0, flip=True)
    dst = dict(img_shape=(32, 48, 3), scale_factor=1.0, flip=False)
    assert torch.equal(tta.warp_masks(m, src, dst, (8, 12)), m.flip(-1))  # exact copy
    assert tta.warp_masks(m, dst, dst, (8, 12)) is m
    # a view at twice the scale: its pixel centres 4u+2 land between two of the source's
    big = tta.warp_masks(m, dst, dict(dst, img_shape=(64, 96, 3), scale_factor=2.0), (16, 24))
    assert big.shape == (3, 16, 24)
    # row 2 -> source row 0.75, column 4 -> source column 1.75
    rows = 0.25 * m[:, 0] + 0.75 * m[:, 1]
    torch.testing.assert_close(big[:, 2, 4], 0.25 * rows[:, 1] + 0.75 * rows[:, 2])
    cols = tta.mirror_columns([64, 44], 64, [4])[0]
    assert cols.tolist() == [[3, 2, 1, 0], [2, 1, 0, 0]]  # 44 px of 64: round(2.75 - 1 - j)


def test_plan_views_pairs_each_scale_with_its_flip():
    m = lambda shape, flip: [dict(img_shape=shape, flip=flip)]  # noqa: E731
    views = [m((10, 20), False), m((10, 20), True), m((20, 40), False), m((20, 40), True)]
    assert tta.plan_views(views) == [(0, 1), (2, 3)]
    assert tta.plan_views([m((10, 20), True)]) == [(0, None)]
    with pytest.raises(NotImplementedError, match='horizontal'):
        tta.plan_views([[dict(img_shape=(1, 1), flip=True, flip_direction='vertical')]])


# ------------------------------------------------------------------ detector, tools' paths
SHAPES = os.path.join(ROOT, 'configs', 'shapes', 'solov2_light_r18_shapes.py')


def _tta_cfg(scales, flip):
    cfg = Config.fromfile(SHAPES)
    for pipeline in (cfg.data.test.pipeline, cfg.test_pipeline):
        for step in pipeline:
            if step['type'] == 'MultiScaleFlipAug':
                step['img_scale'], step['flip'] = scales, flip
    cfg.channels_last = False
    return cfg


@pytest.fixture(scope='module')
def tta_model():
    """The shapes model, random weights made to give detections: category scores around
    score_thr, kernels large enough for masks that differ from cell to cell."""
    torch.manual_seed(0)
    m = init_detector(_tta_cfg([(96, 64), (64, 48)], True), None, device='cpu')
    with torch.no_grad():
        m.bbox_head.solo_cate.bias.fill_(-1.5)
        m.bbox_head.solo_cate.weight.mul_(30)
        m.bbox_head.solo_kernel.weight.mul_(100)
    return m


def _image():
    """A 96x64 BGR image with a few shapes (fills its padded input at 96x64)."""
    img = np.full((64, 96, 3), 40, np.uint8)
    cv2.circle(img, (25, 30), 14, (200, 80, 40), -1)
    cv2.rectangle(img, (55, 10), (85, 35), (40, 200, 90), -1)
    cv2.fillPoly(img, [np.array([[50, 60], [70, 40], [90, 60]])], (60, 60, 220))
    return img


def test_detector_runs_flip_and_scales_and_one_view_is_simple_test(tta_model):
    img = _image()
    # two scales and their flips; flip TTA of a mirrored image is the mirrored result (the
    # image fills its padded input's width at both scales)
    a, b = inference_detector(tta_model, [img, img[:, ::-1].copy()], batch_size=2)
    assert len(a) == len(b) > 3 and a.masks.shape[1:] == img.shape[:2]
    assert np.all(np.diff(a.scores) <= 0)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    assert (a.masks[..., ::-1] != b.masks).mean() < 1e-3
    # one view through aug_test == simple_test
    x = torch.rand(2, 3, 64, 96)
    metas = [dict(img_shape=(64, 90, 3), ori_shape=(64, 90, 3), scale_factor=1.0, flip=False)] * 2
    one = tta_model.aug_test([x], [metas])
    ref = tta_model.simple_test(x, metas)
    assert sum(len(r) for r in ref) > 0
    for p, q in zip(one, ref):
        assert np.array_equal(p.masks, q.masks) and np.array_equal(p.scores, q.scores)


def test_test_loop_batches_tta_views(tiny_coco, tta_model):  # noqa: F811
    cfg = _tta_cfg([(64, 48), (48, 36)], True)
    test = dict(cfg.data.test, ann_file=tiny_coco['ann_file'], img_prefix=tiny_coco['img_prefix'],
                classes=tiny_coco['classes'], test_mode=True, samples_per_gpu=3)
    dataset = build_dataset(test)
    loader = build_test_dataloader(dataset, dict(cfg.data, workers_per_gpu=0, test=test))
    results = single_gpu_test(tta_model, loader, progress=False)
    assert len(results) == len(dataset) and sum(len(r) for r in results) > 0
    for res, info in zip(results, dataset.img_infos):
        assert (res.height, res.width) == (info['height'], info['width'])
