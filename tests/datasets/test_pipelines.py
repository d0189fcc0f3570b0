"""Pipeline tests: bit-exact against the original release (golden files) plus unit cases."""
import hashlib
import json
import os.path as osp

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from PIL import Image

from mmdet_solo.datasets.pipelines import (Collect, Compose, DefaultFormatBundle, LoadAnnotations,
                                           LoadImageFromFile, MultiScaleFlipAug, Normalize, Pad,
                                           RandomFlip, Resize, imresize, segm_to_mask)
from mmdet_solo.registry import PIPELINES

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GOLDEN = osp.join(osp.dirname(__file__), '..', 'data', 'golden')
NORM = dict(type='Normalize', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
            to_rgb=True)
TRAIN_SCALES = {
    'solo_r50_fpn_8gpu_1x': (1333, 800),
    'decoupled_solo_r50_fpn_8gpu_1x': (1333, 800),
    'solov2_r50_fpn_8gpu_1x': (1333, 800),
    'decoupled_solo_light_r50_fpn_8gpu_3x': (852, 512),
    'solov2_light_448_r18_fpn_8gpu_3x': (768, 512),
}
TEST_SCALES = {
    'solo_r50_fpn_8gpu_1x': (1333, 800),
    'decoupled_solo_r50_fpn_8gpu_1x': (1333, 800),
    'solov2_r50_fpn_8gpu_1x': (1333, 800),
    'decoupled_solo_light_r50_fpn_8gpu_3x': (852, 512),
    'solov2_light_448_r18_fpn_8gpu_3x': (768, 448),
}


def sha256(t: torch.Tensor) -> str:
    return hashlib.sha256(np.ascontiguousarray(t.numpy(), dtype=np.float32).tobytes()).hexdigest()


def polygon_bbox(poly):
    """mmdet v1 CocoDataset: ``[x, y, x + w - 1, y + h - 1]`` with (x, y, w, h) the polygon extent."""
    xs, ys = np.asarray(poly[0::2], np.float64), np.asarray(poly[1::2], np.float64)
    x, y, w, h = xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()
    return [x, y, x + w - 1, y + h - 1]


def golden_sample(cfg):
    meta = json.load(open(osp.join(GOLDEN, cfg, 'train.json')))
    polys = [g['polygon_orig'] for g in meta['gt']]
    ann = dict(bboxes=np.array([polygon_bbox(p) for p in polys], dtype=np.float32),
               labels=np.array([g['label_0based'] for g in meta['gt']], dtype=np.int64),
               masks=[[p] for p in polys], bboxes_ignore=np.zeros((0, 4), np.float32))
    results = dict(img_info=dict(filename='public.jpg', height=400, width=600), img_prefix=GOLDEN,
                   ann_info=ann)
    return meta, results


def train_pipeline(scale, flip_ratio=0.0):
    return Compose([
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
        dict(type='Resize', img_scale=scale, keep_ratio=True),
        dict(type='RandomFlip', flip_ratio=flip_ratio),
        NORM,
        dict(type='Pad', size_divisor=32),
        dict(type='DefaultFormatBundle'),
        dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks']),
    ])


def test_transforms_are_registered():
    for name in ('LoadImageFromFile', 'LoadAnnotations', 'Resize', 'RandomFlip', 'Normalize', 'Pad',
                 'DefaultFormatBundle', 'ImageToTensor', 'Collect', 'MultiScaleFlipAug', 'Compose'):
        assert name in PIPELINES


@pytest.mark.parametrize('cfg', sorted(TRAIN_SCALES))
def test_train_pipeline_matches_original(cfg):
    meta, results = golden_sample(cfg)
    ref = np.load(osp.join(GOLDEN, cfg, 'train.npz'))
    np.testing.assert_array_equal(results['ann_info']['bboxes'], ref['gt_bboxes_orig'])
    out = train_pipeline(TRAIN_SCALES[cfg])(results)

    assert out['img'].dtype == torch.float32 and out['img'].shape == ref['img'].shape[1:]
    assert sha256(out['img']) == meta['img_sha256']
    assert np.array_equal(out['img'].numpy(), ref['img'][0])
    m, rm = out['img_metas'], meta['img_meta']
    for key in ('ori_shape', 'img_shape', 'pad_shape'):
        assert list(m[key]) == rm[key], key
    assert isinstance(m['scale_factor'], float) and m['scale_factor'] == rm['scale_factor']
    assert m['flip'] is False and osp.basename(m['filename']) == rm['filename']
    np.testing.assert_array_equal(m['img_norm_cfg']['mean'], np.float32(rm['img_norm_cfg']['mean']))
    np.testing.assert_array_equal(m['img_norm_cfg']['std'], np.float32(rm['img_norm_cfg']['std']))

    assert isinstance(out['gt_masks'], np.ndarray) and out['gt_masks'].dtype == np.uint8
    assert np.array_equal(out['gt_masks'], ref['gt_masks'])
    assert out['gt_bboxes'].dtype == torch.float32
    assert np.array_equal(out['gt_bboxes'].numpy(), ref['gt_bboxes'])
    assert np.array_equal(out['gt_labels'].numpy(), ref['gt_labels_0based'])


def test_loaded_masks_match_original():
    _, results = golden_sample('solo_r50_fpn_8gpu_1x')
    ref = np.load(osp.join(GOLDEN, 'solo_r50_fpn_8gpu_1x', 'train.npz'))
    out = LoadAnnotations(with_mask=True)(LoadImageFromFile()(results))
    assert np.array_equal(out['gt_masks'], ref['gt_masks_orig'])


@pytest.mark.parametrize('cfg', sorted(TEST_SCALES))
def test_test_pipeline_matches_original(cfg):
    pre = json.load(open(osp.join(GOLDEN, cfg, 'infer.json')))['preprocessing']
    pipeline = Compose([
        dict(type='LoadImageFromFile'),
        dict(type='MultiScaleFlipAug', img_scale=TEST_SCALES[cfg], flip=False, transforms=[
            dict(type='Resize', keep_ratio=True), dict(type='RandomFlip'), NORM,
            dict(type='Pad', size_divisor=32), dict(type='ImageToTensor', keys=['img']),
            dict(type='Collect', keys=['img'])]),
    ])
    out = pipeline(dict(img_info=dict(filename='public.jpg', height=400, width=600), img_prefix=GOLDEN))
    assert len(out['img']) == 1 and len(out['img_metas']) == 1
    x = out['img'][0][None]
    assert list(x.shape) == pre['input_tensor_shape']
    assert sha256(x) == pre['input_tensor_sha256']
    m = out['img_metas'][0]
    for key in ('ori_shape', 'img_shape', 'pad_shape'):
        assert list(m[key]) == pre[key], key
    assert m['scale_factor'] == pre['scale_factor'] and m['flip'] is False
    if cfg == 'solov2_light_448_r18_fpn_8gpu_3x':
        ref = np.load(osp.join(GOLDEN, cfg, 'infer_input.npz'))['img']
        assert np.array_equal(x.numpy(), ref)


def test_in_memory_image_gives_same_tensor():
    import cv2
    img = cv2.imread(osp.join(GOLDEN, 'public.jpg'))
    pipeline = Compose([dict(type='LoadImage'), dict(
        type='MultiScaleFlipAug', img_scale=(768, 448), transforms=[
            dict(type='Resize', keep_ratio=True), dict(type='RandomFlip'), NORM,
            dict(type='Pad', size_divisor=32), dict(type='ImageToTensor', keys=['img']),
            dict(type='Collect', keys=['img'])])])
    out = pipeline(dict(img=img))
    pre = json.load(open(osp.join(GOLDEN, 'solov2_light_448_r18_fpn_8gpu_3x', 'infer.json')))
    assert sha256(out['img'][0][None]) == pre['preprocessing']['input_tensor_sha256']
    assert out['img_metas'][0]['filename'] is None


# --------------------------------------------------------------------------- unit tests
def _sample(h=20, w=30, k=2):
    masks = np.zeros((k, h, w), np.uint8)
    boxes = np.zeros((k, 4), np.float32)
    for i in range(k):
        masks[i, 2 + i:8 + i, 3:10 + i] = 1
        boxes[i] = [3, 2 + i, 9 + i, 7 + i]
    return dict(img=np.random.RandomState(0).randint(0, 255, (h, w, 3), dtype=np.uint8),
                img_shape=(h, w, 3), ori_shape=(h, w, 3), filename=None,
                gt_bboxes=boxes, gt_labels=np.arange(k, dtype=np.int64), gt_masks=masks,
                bbox_fields=['gt_bboxes'], mask_fields=['gt_masks'], seg_fields=[])


def test_resize_keep_ratio_size_rule_and_boxes():
    r = Resize(img_scale=(1333, 800), keep_ratio=True)(_sample(h=30, w=45))
    s = min(1333 / 45, 800 / 30)
    assert r['scale_factor'] == s
    assert r['img'].shape == (int(30 * s + 0.5), int(45 * s + 0.5), 3) == r['img_shape']
    assert r['gt_masks'].shape == (2, 800, 1200) and r['gt_masks'].dtype == np.uint8
    np.testing.assert_array_equal(r['gt_bboxes'][0], np.float32([3, 2, 9, 7]) * s)
    # boxes are clipped to [0, w - 1] / [0, h - 1]
    d = _sample(h=10, w=10, k=1)
    d['gt_bboxes'] = np.float32([[-3, 2, 12, 9]])
    d['gt_masks'] = d['gt_masks'][:, :10, :10]
    out = Resize(img_scale=(20, 20))(d)
    np.testing.assert_array_equal(out['gt_bboxes'], np.float32([[0, 4, 19, 18]]))


def test_resize_value_mode_picks_one_of_the_scales():
    scales = [(852, 512), (852, 448), (852, 352)]
    t = Resize(img_scale=scales, multiscale_mode='value')
    seen = set()
    np.random.seed(0)
    for _ in range(30):
        out = t(_sample(h=40, w=60))
        assert out['scale'] in scales and scales[out['scale_idx']] == out['scale']
        assert out['img_shape'][0] == min(out['scale'])  # short side limits for a 3:2 image
        seen.add(out['scale'])
    assert seen == set(scales)


def test_resize_range_mode_samples_long_and_short_edges():
    t = Resize(img_scale=[(1333, 640), (1333, 800)], multiscale_mode='range')
    np.random.seed(1)
    shorts = set()
    for _ in range(40):
        out = t(_sample(h=40, w=60))
        long_edge, short_edge = out['scale']
        assert long_edge == 1333 and 640 <= short_edge <= 800 and out['scale_idx'] is None
        s = short_edge / 40  # the factor first, then the size rule (961.5 vs 961.4999... matters)
        assert out['scale_factor'] == s
        assert out['img_shape'][:2] == (int(40 * s + 0.5), int(60 * s + 0.5))
        shorts.add(short_edge)
    assert len(shorts) > 10


def test_resize_ratio_range_and_no_keep_ratio():
    np.random.seed(2)
    out = Resize(img_scale=(100, 50), ratio_range=(0.5, 1.5))(_sample(h=10, w=20))
    assert 50 <= out['scale'][0] <= 150 and 25 <= out['scale'][1] <= 75
    out = Resize(img_scale=(60, 10), keep_ratio=False)(_sample(h=20, w=30))
    assert out['img'].shape == (10, 60, 3) and out['gt_masks'].shape == (2, 10, 60)
    np.testing.assert_array_equal(out['scale_factor'], np.float32([2, 0.5, 2, 0.5]))
    np.testing.assert_array_equal(out['gt_bboxes'][0], np.float32([6, 1, 18, 3.5]))


def test_resize_errors():
    with pytest.raises(TypeError, match='img_scale'):
        Resize(img_scale=[(1333, 800), (1333,)])
    with pytest.raises(TypeError, match='img_scale'):
        MultiScaleFlipAug([], img_scale=1333)
    # lists (e.g. from --cfg-options or a dumped config) stand for tuples
    assert Resize(img_scale=[1333, 800]).img_scale == [(1333, 800)]
    assert Resize(img_scale=[[852, 512], [852, 480]], multiscale_mode='value').img_scale == [
        (852, 512), (852, 480)]
    with pytest.raises(ValueError, match='multiscale_mode'):
        Resize(img_scale=(1333, 800), multiscale_mode='random')
    with pytest.raises(KeyError, match='scale'):
        Resize()(_sample())


def _pil(arr, size, resample=Image.Resampling.BILINEAR):
    """PIL's own resize of one array (as detectron2's ResizeTransform for uint8)."""
    return np.asarray(Image.fromarray(arr).resize(size, resample))


@pytest.mark.parametrize('hw,scale', [((30, 45), (1333, 800)),   # up, as COCO -> 800
                                      ((97, 131), (40, 30))])     # down: PIL antialiases
def test_resize_pillow_backend_is_pil_resize(hw, scale):
    h, w = hw
    d = _sample(h=h, w=w)
    out = Resize(img_scale=scale, keep_ratio=True, backend='pillow')(dict(d))
    ref = Resize(img_scale=scale, keep_ratio=True)(_sample(h=h, w=w))
    new_h, new_w = ref['img'].shape[:2]
    assert out['img'].shape == ref['img'].shape and out['img'].dtype == np.uint8
    np.testing.assert_array_equal(out['img'], _pil(d['img'], (new_w, new_h)))
    assert not np.array_equal(out['img'], ref['img'])  # the backend is really used
    out['img'][0, 0] = 0  # writable, as cv2's output
    # size rule, scale factor, boxes and masks (cv2 nearest, as mmdet) do not depend on it
    assert out['scale_factor'] == ref['scale_factor'] and out['img_shape'] == ref['img_shape']
    np.testing.assert_array_equal(out['gt_bboxes'], ref['gt_bboxes'])
    np.testing.assert_array_equal(out['gt_masks'], ref['gt_masks'])


def test_resize_pillow_backend_float_gray_seg_and_no_keep_ratio():
    rng = np.random.RandomState(3)
    img = rng.uniform(-50, 300, (17, 23, 3)).astype(np.float32)
    out = imresize(img, (40, 29), backend='pillow')
    assert out.shape == (29, 40, 3) and out.dtype == np.float32
    for c in range(3):  # PIL mode 'F', band by band
        np.testing.assert_array_equal(out[..., c], _pil(img[..., c], (40, 29)))
    gray = rng.randint(0, 256, (17, 23), dtype=np.uint8)
    np.testing.assert_array_equal(imresize(gray, (9, 7), 'bicubic', backend='pillow'),
                                  _pil(gray, (9, 7), Image.Resampling.BICUBIC))
    two = rng.randint(0, 256, (17, 23, 2), dtype=np.uint8)
    assert imresize(two, (9, 7), backend='pillow').shape == (7, 9, 2)
    d = _sample(h=20, w=30)
    d['gt_semantic_seg'] = rng.randint(0, 5, (20, 30), dtype=np.uint8)
    d['seg_fields'] = ['gt_semantic_seg']
    out = Resize(img_scale=(45, 50), keep_ratio=False, backend='pillow')(d)
    np.testing.assert_array_equal(out['img'], _pil(_sample(h=20, w=30)['img'], (45, 50)))
    np.testing.assert_array_equal(out['gt_semantic_seg'],
                                  _pil(d['gt_semantic_seg'], (45, 50), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(out['scale_factor'], np.float32([1.5, 2.5, 1.5, 2.5]))
    assert "backend='pillow'" in repr(Resize(img_scale=(45, 50), backend='pillow'))


def test_resize_cv2_backend_is_the_default_and_unchanged():
    d = _sample(h=30, w=45)
    out = Resize(img_scale=(1333, 800))(dict(d))
    assert Resize(img_scale=(1333, 800)).backend == 'cv2'
    s = min(1333 / 45, 800 / 30)
    size = (int(45 * s + 0.5), int(30 * s + 0.5))
    np.testing.assert_array_equal(out['img'],
                                  cv2.resize(d['img'], size, interpolation=cv2.INTER_LINEAR))
    np.testing.assert_array_equal(
        Resize(img_scale=(1333, 800), backend='cv2')(_sample(h=30, w=45))['img'], out['img'])


def test_resize_backend_errors_name_the_value():
    with pytest.raises(ValueError, match="Resize: backend must be one of .*'pillow'.*got 'PIL'"):
        Resize(img_scale=(1333, 800), backend='PIL')
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="imresize: backend .*got 'skimage'"):
        imresize(img, (2, 2), backend='skimage')
    with pytest.raises(ValueError, match="'area' .*backend 'pillow'|backend 'pillow'.*'area'"):
        imresize(img, (2, 2), 'area', backend='pillow')
    with pytest.raises(TypeError, match='float64'):
        imresize(img.astype(np.float64), (2, 2), backend='pillow')


def test_adelaidet_configs_resize_with_pillow():
    from mmdet_solo.config import Config
    for name in ('solov2_r50_3x', 'solov2_r101_3x'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', 'adelaidet', f'{name}.py'))
        train = [t for t in cfg.data.train.pipeline if t['type'] == 'Resize']
        test = [t for t in cfg.data.test.pipeline[-1]['transforms'] if t['type'] == 'Resize']
        assert [t['backend'] for t in train + test] == ['pillow', 'pillow'], name


def test_random_flip_boxes_and_masks_by_hand():
    d = _sample(h=4, w=6, k=1)
    d['gt_masks'] = np.zeros((1, 4, 6), np.uint8)
    d['gt_masks'][0, 1, 0:2] = 1
    d['gt_bboxes'] = np.float32([[0, 1, 1, 1]])
    img = d['img'].copy()
    out = RandomFlip(flip_ratio=1.0)(d)
    assert out['flip'] is True and out['flip_direction'] == 'horizontal'
    np.testing.assert_array_equal(out['img'], img[:, ::-1])
    np.testing.assert_array_equal(out['gt_bboxes'], np.float32([[4, 1, 5, 1]]))  # w - x - 1
    expected = np.zeros((1, 4, 6), np.uint8)
    expected[0, 1, 4:6] = 1
    np.testing.assert_array_equal(out['gt_masks'], expected)

    v = _sample(h=4, w=6, k=1)
    v['gt_bboxes'] = np.float32([[0, 0, 2, 1]])
    out = RandomFlip(flip_ratio=1.0, direction='vertical')(v)
    np.testing.assert_array_equal(out['gt_bboxes'], np.float32([[0, 2, 2, 3]]))
    assert RandomFlip(flip_ratio=0.0)(_sample())['flip'] is False
    assert RandomFlip()(_sample())['flip'] is False  # flip_ratio None: never


def test_pad_image_and_masks():
    d = _sample(h=20, w=30)
    masks = d['gt_masks'].copy()
    out = Pad(size_divisor=32)(d)
    assert out['img'].shape == (32, 32, 3) == out['pad_shape']
    assert out['gt_masks'].shape == (2, 32, 32)
    np.testing.assert_array_equal(out['gt_masks'][:, :20, :30], masks)
    assert out['gt_masks'][:, 20:].sum() == 0 and out['gt_masks'][:, :, 30:].sum() == 0
    assert out['img'][20:].sum() == 0
    out = Pad(size=(25, 40))(_sample(h=20, w=30))
    assert out['img'].shape == (25, 40, 3) and out['gt_masks'].shape == (2, 25, 40)
    with pytest.raises(ValueError, match='exactly one'):
        Pad(size=(10, 10), size_divisor=32)


def test_empty_annotations_flow_through_every_transform():
    _, results = golden_sample('solo_r50_fpn_8gpu_1x')
    results['ann_info'] = dict(bboxes=np.zeros((0, 4), np.float32), labels=np.zeros(0, np.int64),
                               masks=[])
    out = train_pipeline((1333, 800), flip_ratio=1.0)(results)
    assert out['img_metas']['flip'] is True
    assert out['gt_masks'].shape == (0, 800, 1216) and out['gt_masks'].dtype == np.uint8
    assert out['gt_bboxes'].shape == (0, 4) and out['gt_labels'].shape == (0,)


def test_flip_in_pipeline_matches_flipped_golden_masks():
    meta, results = golden_sample('solov2_light_448_r18_fpn_8gpu_3x')
    ref = np.load(osp.join(GOLDEN, 'solov2_light_448_r18_fpn_8gpu_3x', 'train.npz'))
    out = train_pipeline((768, 512), flip_ratio=1.0)(results)
    w = meta['img_meta']['img_shape'][1]
    np.testing.assert_array_equal(out['gt_masks'], ref['gt_masks'][:, :, ::-1])  # no padding here
    exp = ref['gt_bboxes'].copy()
    exp[:, 0], exp[:, 2] = w - ref['gt_bboxes'][:, 2] - 1, w - ref['gt_bboxes'][:, 0] - 1
    np.testing.assert_array_equal(out['gt_bboxes'].numpy(), exp)


def test_segm_to_mask_formats():
    poly = [[1, 1, 8, 1, 8, 6, 1, 6]]
    m = segm_to_mask(poly, 10, 12)
    assert m.shape == (10, 12) and m.dtype == np.uint8 and m.sum() > 0
    rle = mask_utils.encode(np.asfortranarray(m))
    assert np.array_equal(segm_to_mask(rle, 10, 12), m)
    rle_str = dict(size=rle['size'], counts=rle['counts'].decode())
    assert np.array_equal(segm_to_mask(rle_str, 10, 12), m)
    flat = m.flatten(order='F')  # uncompressed RLE: run lengths, column-major, starting with 0s
    change = np.flatnonzero(np.diff(np.r_[0, flat, 1 - flat[-1]])) if flat.size else []
    counts = np.diff(np.r_[0, change]).tolist()
    assert np.array_equal(segm_to_mask(dict(size=[10, 12], counts=counts), 10, 12), m)
    assert segm_to_mask([], 10, 12).sum() == 0
    with pytest.raises(ValueError, match='RLE size'):
        segm_to_mask(rle, 11, 12)
    with pytest.raises(TypeError, match='segmentation'):
        segm_to_mask('oops', 10, 12)


def test_loading_errors_name_the_file(tmp_path):
    missing = str(tmp_path / 'nope.jpg')
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        LoadImageFromFile()(dict(img_info=dict(filename=missing), img_prefix=None))
    bad = tmp_path / 'bad.jpg'
    bad.write_bytes(b'not an image')
    with pytest.raises(OSError, match='bad.jpg'):
        LoadImageFromFile()(dict(img=str(bad)))
    with pytest.raises(KeyError, match="'masks'"):
        LoadAnnotations(with_mask=True)(dict(ann_info=dict(bboxes=np.zeros((0, 4)), labels=[]),
                                             img_shape=(4, 4, 3)))
    with pytest.raises(ValueError, match=r'\(K, 4\)'):
        LoadAnnotations()(dict(ann_info=dict(bboxes=np.zeros((2, 5)), labels=[0, 1])))


def test_load_image_to_float32():
    out = LoadImageFromFile(to_float32=True)(dict(img=np.zeros((3, 4, 3), np.uint8)))
    assert out['img'].dtype == np.float32 and out['ori_shape'] == (3, 4, 3)


def test_compose_drops_sample_and_validates():
    calls = []
    pipeline = Compose([lambda r: None, lambda r: calls.append(r) or r])
    assert pipeline({'a': 1}) is None and calls == []
    with pytest.raises(TypeError, match='#1'):
        Compose([dict(type='RandomFlip'), 3])
    with pytest.raises(KeyError, match='Resise'):
        Compose([dict(type='Resise')])


def test_format_bundle_and_collect():
    d = Normalize(mean=[0, 0, 0], std=[1, 1, 1], to_rgb=False)(_sample())
    d['flip'] = False
    d['pad_shape'] = d['img_shape']
    d['scale_factor'] = 1.0
    out = Collect(keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks'])(DefaultFormatBundle()(d))
    assert set(out) == {'img_metas', 'img', 'gt_bboxes', 'gt_labels', 'gt_masks'}
    assert out['img'].shape == (3, 20, 30) and out['img'].dtype == torch.float32
    assert out['img'].is_contiguous()
    assert out['gt_labels'].dtype == torch.int64 and isinstance(out['gt_masks'], np.ndarray)
    with pytest.raises(KeyError, match='img_norm_cfg'):
        Collect(keys=['img'], meta_keys=('img_norm_cfg',))({'img': 1})


def test_multi_scale_flip_aug_order():
    aug = MultiScaleFlipAug(transforms=[dict(type='Resize', keep_ratio=True), dict(type='RandomFlip'),
                                        dict(type='Collect', keys=['img'], meta_keys=('scale', 'flip'))],
                            img_scale=[(40, 20), (60, 30)], flip=True)
    out = aug(dict(img=np.zeros((10, 20, 3), np.uint8), img_shape=(10, 20, 3)))
    metas = out['img_metas']
    assert [(m['scale'], m['flip']) for m in metas] == [
        ((40, 20), False), ((40, 20), True), ((60, 30), False), ((60, 30), True)]
    assert [im.shape[0] for im in out['img']] == [20, 20, 30, 30]
