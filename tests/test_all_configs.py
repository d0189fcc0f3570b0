"""Smoke tests of EVERY released config (configs/solo, configs/solov2) on synthetic data.

For each config: build with ``pretrained=None``; ``forward_train`` on a small batch whose
instances hit every FPN level of that config gives finite losses and a finite gradient for every
trainable parameter; images without GT and batches without any positive cell still give finite,
back-propagatable losses; ``simple_test`` returns well-formed ``InstanceResult``s (with and
without detections). One model per config is built and shared by its tests (module-scoped
fixture). ``inference_detector`` runs end to end on the real-size demo image for one SOLO and
one SOLOv2 config, and a CUDA test (skipped without CUDA) compares GPU and CPU results.
"""
import glob
import math
import os

import cv2
import numpy as np
import pytest
import torch

from golden_utils import ROOT, golden_state_dict

from mmdet_solo.config import Config
from mmdet_solo.models import build_detector
from mmdet_solo.structures import InstanceResult, masks_to_boxes

CONFIG_FILES = sorted(glob.glob(os.path.join(ROOT, 'configs', 'solo', '*.py'))
                      + glob.glob(os.path.join(ROOT, 'configs', 'solov2', '*.py')))
CONFIG_IDS = [os.path.basename(f)[:-3] for f in CONFIG_FILES]
NUM_CLASSES = 80
PUBLIC_JPG = os.path.join(ROOT, 'tests', 'data', 'golden', 'public.jpg')


def test_all_18_configs_are_covered():
    """The 17 COCO configs of the original release and its Cityscapes one."""
    assert len(CONFIG_FILES) == 18, CONFIG_IDS
    assert 'solov2_r50_fpn_8gpu_1x_cityscapes' in CONFIG_IDS


def _load_cfg(path):
    """The config with ``pretrained=None`` and its scale ranges shrunk so that the largest
    level's lower bound is at most 128 px: the synthetic batch then stays small (CPU time),
    while every level still receives instances. Grids, strides and widths are unchanged."""
    cfg = Config.fromfile(path)
    cfg.model.pretrained = None
    ranges = cfg.model.bbox_head.scale_ranges
    factor = max(1.0, ranges[-1][0] / 128.0)
    cfg.model.bbox_head.scale_ranges = tuple((lo / factor, hi / factor) for lo, hi in ranges)
    return cfg


def _build(cfg):
    torch.manual_seed(0)
    return build_detector(cfg.model, train_cfg=cfg.get('train_cfg'), test_cfg=cfg.get('test_cfg'))


BUILD_LOG = []


def _model_key(path):
    """The model settings but the class count (see ``test_class_count_twins``)."""
    model = Config.fromfile(path).model.to_dict()
    model['bbox_head'] = dict(model['bbox_head'], num_classes=None)
    return repr(model)


def _num_classes(path):
    return Config.fromfile(path).model.bbox_head.num_classes


# configs whose model is identical to an earlier one's (1x and 3x of the same architecture
# differ only in data and schedule; the Cityscapes config differs from the COCO 1x one only in
# its 8 classes) are covered by that one's model tests
_FIRST_WITH_MODEL = {}
for _f in CONFIG_FILES:
    _FIRST_WITH_MODEL.setdefault(_model_key(_f), _f)
UNIQUE_FILES = sorted(set(_FIRST_WITH_MODEL.values()))
UNIQUE_IDS = [os.path.basename(f)[:-3] for f in UNIQUE_FILES]


def test_configs_sharing_a_model_are_identical():
    """Every config not in UNIQUE_FILES builds exactly its twin's model (same keys and shapes)."""
    for f in CONFIG_FILES:
        twin = _FIRST_WITH_MODEL[_model_key(f)]
        if twin == f:
            continue
        a = _build(_load_cfg(f)).state_dict()
        b = _build(_load_cfg(twin)).state_dict()
        assert set(a) == set(b), (f, twin)
        # only the final category conv depends on the class count (its output channels)
        na, nb = _num_classes(f), _num_classes(twin)
        differ = {k: (tuple(a[k].shape), tuple(b[k].shape)) for k in a if a[k].shape != b[k].shape}
        if na == nb:
            assert not differ, (f, twin, differ)
        else:
            assert differ and all(
                k.startswith('bbox_head.') and k.endswith(('cate.weight', 'cate.bias'))
                and sa[0] == na and sb[0] == nb and sa[1:] == sb[1:]
                for k, (sa, sb) in differ.items()), (f, twin, differ)


@pytest.fixture(scope='module', params=UNIQUE_FILES, ids=UNIQUE_IDS)
def built(request):
    """(cfg, model) of one config; shared by all tests of that config, then freed."""
    cfg = _load_cfg(request.param)
    model = _build(cfg)
    BUILD_LOG.append(os.path.basename(request.param))
    yield cfg, model
    del model


# ----------------------------------------------------------------------------- synthetic data
def _ceil32(x):
    return int(math.ceil(x / 32.0) * 32)


def _ellipse(shape, cx, cy, w, h):
    m = np.zeros(shape, np.uint8)
    cv2.ellipse(m, (int(cx), int(cy)), (int(w // 2), int(h // 2)), 0, 0, 360, 1, -1)
    return m


def _rect(shape, x, y, w, h):
    m = np.zeros(shape, np.uint8)
    m[y:y + h, x:x + w] = 1
    return m


def _gt_from_masks(masks, labels):
    """Boxes as the original pipeline makes them: x1, y1, x2, y2 with x2 = x + w - 1."""
    masks = np.asarray(masks, np.uint8).reshape(-1, *masks[0].shape) if len(masks) else None
    boxes = []
    for m in masks if masks is not None else []:
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max(), ys.max()])
    return (torch.tensor(np.asarray(boxes, np.float32).reshape(-1, 4)),
            torch.tensor(np.asarray(labels, np.int64)), masks)


def _empty_gt(pad_hw):
    return (torch.zeros((0, 4), dtype=torch.float32), torch.zeros((0,), dtype=torch.int64),
            np.zeros((0, *pad_hw), np.uint8))


def _meta(img_hw, pad_hw):
    return dict(ori_shape=(*img_hw, 3), img_shape=(*img_hw, 3), pad_shape=(*pad_hw, 3),
                scale_factor=1.0, flip=False)


def _sqrt_areas(boxes):
    b = boxes.numpy()
    return np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))


def full_batch(scale_ranges, seed=0):
    """Two images whose instances together hit every level of ``scale_ranges``.

    Image 0 fills the padded canvas: one instance in the last (largest) range and a small one.
    Image 1 is smaller than the canvas (bottom/right padding): one instance per middle level.
    """
    rng = np.random.RandomState(seed)
    lows = [lo for lo, _ in scale_ranges]
    s_big = lows[-1] * 1.06 + 4                       # sqrt-area just inside the last range
    hb, wb = int(math.ceil(s_big / math.sqrt(1.15))), int(math.ceil(s_big * math.sqrt(1.15)))
    pad = (_ceil32(hb + 12), _ceil32(wb + 12))
    shape1 = (pad[0] - 64, pad[1] - 32)
    # image 0: a large ellipse-ish blob (rectangle with cut corners) and a small square
    big = _rect(pad, 4, 4, wb, hb)
    big[4:4 + hb // 8, 4:4 + wb // 8] = 0          # not a plain rectangle; bbox unchanged
    small = _rect(pad, pad[1] - 30, pad[0] - 28, 18, 20)
    img0 = _gt_from_masks([big, small], rng.choice(NUM_CLASSES, 2, replace=False))
    # image 1: one instance per middle level, placed apart, inside img_shape
    masks1 = []
    sizes = [lo * 1.12 + 2 for lo in lows[1:-1]]
    x_left = 4
    for k, s in enumerate(sizes):
        h, w = int(math.ceil(s / 1.05)), int(math.ceil(s * 1.05)) + 1
        if k == len(sizes) - 1:                                  # largest: right-bottom corner
            cx, cy = shape1[1] - 4 - w / 2, shape1[0] - 4 - h / 2
        else:                                                    # others stacked on the left
            cx, cy = x_left + w / 2, 4 + h / 2 + (shape1[0] - h - 8) * (k % 2)
            x_left += w + 4
        masks1.append(_ellipse(pad, cx, cy, w, h))
    img1 = _gt_from_masks(masks1, rng.choice(NUM_CLASSES, len(masks1), replace=False))
    img = torch.from_numpy(rng.randn(2, 3, *pad).astype(np.float32))
    img[1, :, shape1[0]:, :] = 0
    img[1, :, :, shape1[1]:] = 0
    metas = [_meta(pad, pad), _meta(shape1, pad)]
    return img, metas, [img0, img1]


def small_batch(gts_kind, pad=(128, 160)):
    """2 images of 128x160 without any positive cell.

    ``line``: image 0 holds one 1-pixel-high line (sqrt area of its box is 0, below every
    range), image 1 has no GT; ``empty``: no image has GT; ``one_empty``: image 0 has two
    ordinary instances, image 1 none.
    """
    rng = np.random.RandomState(1)
    img = torch.from_numpy(rng.randn(2, 3, *pad).astype(np.float32))
    if gts_kind == 'line':
        first = _gt_from_masks([_rect(pad, 20, 50, 70, 1)], [5])
    elif gts_kind == 'one_empty':
        first = _gt_from_masks([_rect(pad, 10, 10, 20, 24), _ellipse(pad, 100, 70, 60, 70)], [3, 17])
    else:
        first = _empty_gt(pad)
    metas = [_meta(pad, pad), _meta(pad, pad)]
    return img, metas, [first, _empty_gt(pad)]


def _train_kwargs(img, metas, gts):
    return dict(img=img, img_metas=metas, gt_bboxes=[g[0] for g in gts],
                gt_labels=[g[1] for g in gts], gt_masks=[g[2] for g in gts])


def test_full_batch_hits_every_level():
    """The synthetic batch itself: for each scale-range family every level gets an instance."""
    for ranges in (((1, 96), (48, 192), (96, 384), (192, 768), (384, 2048)),
                   ((1, 56), (28, 112), (56, 224), (112, 448), (224, 896)),
                   ((1, 64), (32, 128), (64, 256), (128, 512), (256, 2048))):
        img, metas, gts = full_batch(ranges)
        areas = np.concatenate([_sqrt_areas(g[0]) for g in gts])
        for lo, hi in ranges:
            assert ((areas >= lo) & (areas <= hi)).any(), (ranges, (lo, hi), areas)
        for g, meta in zip(gts, metas):
            boxes, labels, masks = g
            assert masks.dtype == np.uint8 and masks.shape[1:] == tuple(img.shape[-2:])
            assert len(boxes) == len(labels) == len(masks) >= 2
            # boxes consistent with the masks (x2/y2 inclusive), masks inside img_shape
            np.testing.assert_array_equal(boxes.numpy(), masks_to_boxes(masks) - [0, 0, 1, 1])
            h, w = meta['img_shape'][:2]
            assert not masks[:, h:, :].any() and not masks[:, :, w:].any()
            assert labels.dtype == torch.int64 and labels.min() >= 0 and labels.max() < NUM_CLASSES


# ----------------------------------------------------------------------------- helpers
def _check_losses(losses):
    assert set(losses) >= {'loss_ins', 'loss_cate'}, sorted(losses)
    for k in ('loss_ins', 'loss_cate'):
        v = losses[k]
        assert isinstance(v, torch.Tensor) and v.dim() == 0, (k, v)
        assert torch.isfinite(v), f'{k} = {v}'
        assert v.requires_grad, f'{k} is not connected to the parameters'
        assert float(v.detach()) >= 0, f'{k} = {float(v.detach())}'


def _grad_offenders(model):
    missing, bad = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            missing.append(name)
        elif not torch.isfinite(p.grad).all():
            bad.append(name)
    return missing, bad


def _train_step(model, kwargs):
    model.train()
    model.zero_grad(set_to_none=True)
    losses = model.forward_train(**kwargs)
    _check_losses(losses)
    (losses['loss_ins'] + losses['loss_cate']).backward()
    return losses


def _check_result(res, ori_hw, max_per_img=None, num_classes=NUM_CLASSES):
    assert isinstance(res, InstanceResult)
    n = len(res)
    assert res.masks.dtype == np.bool_ and res.masks.shape == (n, *ori_hw), res.masks.shape
    assert res.labels.dtype == np.int64 and res.labels.shape == (n,)
    assert res.scores.dtype == np.float32 and res.scores.shape == (n,)
    assert res.bboxes.dtype == np.float32 and res.bboxes.shape == (n, 4)
    if n:
        assert res.labels.min() >= 0 and res.labels.max() < num_classes, res.labels
        assert np.all(np.isfinite(res.scores)) and res.scores.min() >= 0 and res.scores.max() <= 1
        assert np.all(np.diff(res.scores) <= 0), 'scores not sorted in descending order'
        np.testing.assert_array_equal(res.bboxes, masks_to_boxes(res.masks))
    if max_per_img is not None:
        assert n <= max_per_img


# ----------------------------------------------------------------------------- training
def test_forward_train_all_params_get_grads(built):
    cfg, model = built
    kwargs = _train_kwargs(*full_batch(cfg.model.bbox_head.scale_ranges))
    losses = _train_step(model, kwargs)
    missing, bad = _grad_offenders(model)
    assert not missing, f'{len(missing)} trainable parameters got no gradient: {missing}'
    assert not bad, f'{len(bad)} parameters got a non-finite gradient: {bad}'
    # the dice loss of random masks is far from 0 and the focal loss positive
    assert float(losses['loss_ins']) > 0.5 and float(losses['loss_cate']) > 0
    # frozen stages stay frozen: stem and stage 1 of the backbone have no trainable parameter
    frozen = [n for n, p in model.backbone.named_parameters()
              if n.startswith(('conv1.', 'bn1.', 'layer1.'))]
    assert frozen and not any(p.requires_grad for n, p in model.backbone.named_parameters()
                              if n in frozen)


def _check_no_positive_step(model, kind):
    losses = _train_step(model, _train_kwargs(*small_batch(kind)))
    if kind != 'one_empty':          # no positive cell anywhere: nothing for the dice loss
        assert float(losses['loss_ins']) == 0.0, float(losses['loss_ins'])
    missing, bad = _grad_offenders(model)
    assert not bad, f'{len(bad)} parameters got a non-finite gradient: {bad}'
    # Levels without any positive cell drop out of the dice loss (as in the original), so the
    # per-level mask convs of SOLO/Decoupled SOLO (``*ins_list*.<level>``) may get no gradient
    # when only some levels have positives (DDP then needs find_unused_parameters=True).
    # Everything else must take part in the graph whatever the GT.
    others = [n for n in missing if 'ins_list' not in n]
    assert not others, f'{len(others)} trainable parameters got no gradient: {others}'
    if kind != 'one_empty':          # no positive anywhere: the zero loss reaches every param
        assert not missing, f'{len(missing)} trainable parameters got no gradient: {missing}'


# one config per head type: the no-positive cases only exercise head code
HEAD_REPRESENTATIVES = ['solo_r50_fpn_8gpu_1x', 'decoupled_solo_r50_fpn_8gpu_1x',
                        'decoupled_solo_light_r50_fpn_8gpu_3x', 'solov2_light_448_r18_fpn_8gpu_3x',
                        'solov2_light_512_dcn_r50_fpn_8gpu_3x']


@pytest.mark.parametrize('built', [CONFIG_FILES[CONFIG_IDS.index(n)] for n in HEAD_REPRESENTATIVES],
                         ids=HEAD_REPRESENTATIVES, indirect=True)
def test_forward_train_without_positives(built):
    """Image 0: one instance below every scale range (1-pixel line); image 1: no GT."""
    cfg, model = built
    _check_no_positive_step(model, 'line')


def test_head_representatives_cover_every_head_type():
    heads = {Config.fromfile(os.path.join(ROOT, 'configs', 'solov2' if n.startswith('solov2') else 'solo',
                                          n + '.py')).model.bbox_head.type for n in HEAD_REPRESENTATIVES}
    every = {Config.fromfile(f).model.bbox_head.type for f in CONFIG_FILES}
    assert heads == every, (heads, every)


@pytest.mark.parametrize('kind', ['one_empty', 'empty'])
@pytest.mark.parametrize('built', [CONFIG_FILES[CONFIG_IDS.index(n)] for n in HEAD_REPRESENTATIVES],
                         ids=HEAD_REPRESENTATIVES, indirect=True)
def test_forward_train_empty_images(built, kind):
    """``one_empty``: image 0 has two instances, image 1 none; ``empty``: no GT at all."""
    cfg, model = built
    _check_no_positive_step(model, kind)


# ----------------------------------------------------------------------------- inference
TEST_ORI = (360, 480)      # ori_shape of the simple_test images
TEST_SCALE = 0.8           # -> img_shape 288 x 384 (already a multiple of 32)


def _test_batch():
    rng = np.random.RandomState(2)
    h, w = int(TEST_ORI[0] * TEST_SCALE + 0.5), int(TEST_ORI[1] * TEST_SCALE + 0.5)
    pad = (_ceil32(h), _ceil32(w))
    img = torch.from_numpy(rng.randn(2, 3, *pad).astype(np.float32))
    metas = [dict(ori_shape=(*TEST_ORI, 3), img_shape=(h, w, 3), pad_shape=(*pad, 3),
                  scale_factor=TEST_SCALE, flip=False),
             dict(ori_shape=(300, 320, 3), img_shape=(240, 256, 3), pad_shape=(*pad, 3),
                  scale_factor=TEST_SCALE, flip=False)]
    img[1, :, 240:, :] = 0
    img[1, :, :, 256:] = 0
    return img, metas


def test_simple_test_detects_nothing(built):
    """Nothing above ``score_thr``: both results are empty and well-formed.

    (The default init gives category scores around 0.01, but with a random backbone a few
    cells can pass 0.1, so the threshold is raised to make "nothing detected" certain.)"""
    cfg, model = built
    model.eval()
    img, metas = _test_batch()
    saved = model.test_cfg
    model.test_cfg = dict(saved, score_thr=1.0)
    try:
        results = model.simple_test(img, metas, rescale=True)
    finally:
        model.test_cfg = saved
    assert isinstance(results, list) and len(results) == 2
    for res, meta in zip(results, metas):
        _check_result(res, meta['ori_shape'][:2])
        assert len(res) == 0
        assert res.masks.shape == (0, *meta['ori_shape'][:2])
        assert res.bboxes.shape == (0, 4) and res.labels.shape == (0,) and res.scores.shape == (0,)


class _confident_classes:
    """Context that makes a randomly initialised model detect something.

    Classes ``classes`` score ~sigmoid(3) in every cell (bias of the final category conv;
    lowering score_thr instead makes every (cell, class) pair a candidate: far too much memory),
    and the final mask-prediction convs (``*ins_list*``, ``solo_kernel``) are scaled up so that
    the masks vary over the image instead of all sitting at sigmoid(~0) = 0.5 (0.25 for the
    decoupled heads: below mask_thr).
    """

    def __init__(self, model, classes=(3, 41), value=3.0, mask_gain=30.0):
        head = model.bbox_head
        cands = [p for n, p in head.named_parameters()
                 if n.endswith('cate.bias') and tuple(p.shape) == (head.num_classes,)]
        assert len(cands) == 1, 'cannot find the final category conv bias'
        self.bias, self.classes, self.value, self.gain = cands[0], list(classes), value, mask_gain
        self.mask_weights = [p for n, p in head.named_parameters()
                             if ('ins_list' in n or 'solo_kernel' in n) and n.endswith('weight')]
        assert self.mask_weights, 'cannot find the final mask-prediction convs'

    def __enter__(self):
        self.saved = [t.detach().clone() for t in [self.bias] + self.mask_weights]
        with torch.no_grad():
            self.bias[self.classes] = self.value
            for w in self.mask_weights:
                w.mul_(self.gain)
        return self

    def __exit__(self, *exc):
        with torch.no_grad():
            for t, saved in zip([self.bias] + self.mask_weights, self.saved):
                t.copy_(saved)


def test_simple_test_with_detections(built):
    """Two confident classes give detections: check their form."""
    cfg, model = built
    model.eval()
    img, metas = _test_batch()
    with _confident_classes(model):
        results = model.simple_test(img, metas, rescale=True)
    assert len(results) == 2
    max_per_img = model.test_cfg.get('max_per_img', 100)
    for res, meta in zip(results, metas):
        _check_result(res, meta['ori_shape'][:2], max_per_img=max_per_img)
        assert len(res) > 0, 'no detection although two classes score ~0.95 in every cell'
        assert set(res.labels.tolist()) <= {3, 41}, set(res.labels.tolist())


# ----------------------------------------------------------------------------- class counts
CLASS_COUNT_TWINS = [f for f in CONFIG_FILES
                     if _num_classes(f) != _num_classes(_FIRST_WITH_MODEL[_model_key(f)])]


def test_class_count_twins():
    """Configs whose model differs from a tested one only in ``num_classes`` (the final category
    conv): the model tests above run on the twin, ``test_other_class_count_*`` on these."""
    assert [os.path.basename(f)[:-3] for f in CLASS_COUNT_TWINS] == \
        ['solov2_r50_fpn_8gpu_1x_cityscapes']


@pytest.mark.parametrize('path', CLASS_COUNT_TWINS,
                         ids=[os.path.basename(f)[:-3] for f in CLASS_COUNT_TWINS])
def test_other_class_count_trains_and_predicts(path):
    """The losses of labels up to ``num_classes - 1`` are finite and give the final category
    conv (the one layer that differs from the twin, whose model tests check every gradient) a
    finite gradient, and ``predict`` returns only labels below ``num_classes``. One forward of
    one small image serves both: the SOLOv2 towers run on the S x S grids whatever the image
    size (~60 GMAC), so that forward is the CPU time of this test."""
    cfg = _load_cfg(path)
    n = cfg.model.bbox_head.num_classes
    model = _build(cfg)
    pad = (128, 160)
    rng = np.random.RandomState(3)
    img = torch.from_numpy(rng.randn(1, 3, *pad).astype(np.float32))
    boxes, labels, masks = _gt_from_masks([_rect(pad, 10, 10, 20, 24),
                                           _ellipse(pad, 100, 70, 60, 70)], [0, n - 1])
    metas = [_meta(pad, pad)]
    model.train()
    with _confident_classes(model, classes=(0, n - 1)) as conf:
        outputs = model.forward_heads(model.extract_feat(img))
        losses = model.bbox_head.loss(outputs, [boxes], [labels], [masks], metas, model.train_cfg)
        _check_losses(losses)
        cate = [p for name, p in model.bbox_head.named_parameters()
                if name.endswith('cate.weight') and p.shape[0] == n]
        assert len(cate) == 1 and conf.bias.shape == (n,)
        grads = torch.autograd.grad(losses['loss_cate'], [cate[0], conf.bias])
        assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
        with torch.no_grad():
            res = model.bbox_head.predict(outputs, metas, model.test_cfg, rescale=True)[0]
    _check_result(res, pad, num_classes=n)
    assert len(res) > 0 and set(res.labels.tolist()) <= {0, n - 1}, res.labels


# ----------------------------------------------------------------------------- inference API
@pytest.mark.parametrize('config', ['configs/solov2/solov2_light_448_r18_fpn_8gpu_3x.py',
                                    'configs/solo/decoupled_solo_light_r50_fpn_8gpu_3x.py'])
def test_inference_detector_real_size(config):
    from mmdet_solo.apis import inference_detector, init_detector
    img = cv2.imread(PUBLIC_JPG)
    assert img is not None and img.shape == (400, 600, 3)
    model = init_detector(os.path.join(ROOT, config), None, device='cpu',
                          cfg_options={'test_cfg.max_per_img': 20})
    with _confident_classes(model):
        res = inference_detector(model, img)
    _check_result(res, (400, 600), max_per_img=20)
    assert len(res) > 0
    res = inference_detector(model, PUBLIC_JPG)     # default init: nothing above score_thr
    _check_result(res, (400, 600))
    assert len(res) == 0 and res.masks.shape == (0, 400, 600)


# ----------------------------------------------------------------------------- CUDA
def _iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu_solov2_light_r18():
    name = 'solov2_light_448_r18_fpn_8gpu_3x'
    cfg = _load_cfg(os.path.join(ROOT, 'configs', 'solov2', name + '.py'))
    cpu = _build(cfg)
    cpu.load_state_dict(golden_state_dict(name), strict=True)
    gpu = _build(cfg)
    gpu.load_state_dict(golden_state_dict(name), strict=True)
    gpu = gpu.cuda()
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        img, metas, gts = full_batch(cfg.model.bbox_head.scale_ranges)
        kw = _train_kwargs(img, metas, gts)
        kw_gpu = dict(kw, img=img.cuda(), gt_bboxes=[b.cuda() for b in kw['gt_bboxes']],
                      gt_labels=[l.cuda() for l in kw['gt_labels']])
        losses_cpu = _train_step(cpu, kw)
        losses_gpu = _train_step(gpu, kw_gpu)
        for k in ('loss_ins', 'loss_cate'):
            assert abs(float(losses_gpu[k]) - float(losses_cpu[k])) <= 1e-3 * abs(float(losses_cpu[k])), k
        missing, bad = _grad_offenders(gpu)
        assert not missing and not bad, (missing, bad)

        img = torch.from_numpy(np.load(os.path.join(ROOT, 'tests', 'data', 'golden', name,
                                                    'infer_input.npz'))['img'])
        meta = dict(ori_shape=(400, 600, 3), img_shape=(448, 672, 3), pad_shape=(448, 672, 3),
                    scale_factor=1.12, flip=False)
        cpu.eval()
        gpu.eval()
        r_cpu = cpu.simple_test(img, [meta])[0]
        r_gpu = gpu.simple_test(img.cuda(), [meta])[0]
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    _check_result(r_gpu, (400, 600))
    assert len(r_cpu) > 0 and len(r_gpu) == len(r_cpu), (len(r_gpu), len(r_cpu))
    np.testing.assert_allclose(r_gpu.scores, r_cpu.scores, atol=1e-3)
    # near-tied scores may swap: match each CPU detection to a GPU one of the same label
    used = set()
    for i in range(len(r_cpu)):
        cands = [j for j in range(len(r_gpu)) if j not in used and r_gpu.labels[j] == r_cpu.labels[i]
                 and abs(r_gpu.scores[j] - r_cpu.scores[i]) <= 1e-3]
        assert cands, f'CPU detection {i} has no GPU counterpart'
        j = max(cands, key=lambda c: _iou(r_gpu.masks[c], r_cpu.masks[i]))
        used.add(j)
        assert _iou(r_gpu.masks[j], r_cpu.masks[i]) >= 0.99, i


DCN_FILES = [f for f in UNIQUE_FILES if 'dcn' in os.path.basename(f)]


def test_every_dcn_config_is_covered_under_autocast():
    assert len([f for f in CONFIG_FILES if 'dcn' in os.path.basename(f)]) == 4
    assert {_model_key(f) for f in CONFIG_FILES if 'dcn' in os.path.basename(f)} == \
        {_model_key(f) for f in DCN_FILES}


@pytest.mark.parametrize('built', DCN_FILES, ids=[os.path.basename(f)[:-3] for f in DCN_FILES],
                         indirect=True)
def test_dcn_configs_train_under_bfloat16_autocast(built):
    """Mixed precision on a CPU (``fp16 = dict(...)`` / ``--amp``: bfloat16 autocast) trains the
    deformable-conv configs: the deformable convs run in float32 (no bfloat16 CPU kernel)."""
    cfg, model = built
    with torch.autocast('cpu', dtype=torch.bfloat16):
        _train_step(model, _train_kwargs(*small_batch('one_empty')))
    missing, bad = _grad_offenders(model)
    assert not bad, f'non-finite gradients under autocast: {bad}'
