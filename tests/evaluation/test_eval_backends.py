"""COCO evaluation backends: faster-coco-eval gives pycocotools' numbers; error messages."""
import contextlib
import copy
import io
import json
import os.path as osp
import sys

import numpy as np
import pycocotools.mask as mask_utils
import pytest

from mmdet_solo.evaluation.backends import (DEFAULT_EVAL_BACKEND, EVAL_BACKENDS, CocoApi,
                                            coco_api)

CAT_IDS = (1, 3, 7)  # non-contiguous


def _encode(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def _uncompressed_rle(mask):
    flat = mask.astype(np.uint8).flatten(order='F')
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0] + counts
    return {'counts': [int(c) for c in counts], 'size': [int(mask.shape[0]), int(mask.shape[1])]}


def _random_shape(rng, h, w, large=False):
    """A rectangle or an ellipse polygon inside (h, w), from a few pixels to most of the image
    (``large``: a rectangle of at least 85 % of the image's sides)."""
    lo_h, lo_w = (int(0.85 * h), int(0.85 * w)) if large else (4, 4)
    bh, bw = int(rng.integers(lo_h, h - 2)), int(rng.integers(lo_w, w - 2))
    y0, x0 = float(rng.integers(0, h - bh)), float(rng.integers(0, w - bw))
    if large or rng.random() < 0.5:
        return [x0, y0, x0 + bw, y0, x0 + bw, y0 + bh, x0, y0 + bh]
    t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    xs, ys = x0 + bw / 2 * (1 + np.cos(t)), y0 + bh / 2 * (1 + np.sin(t))
    return [round(float(v), 2) for xy in zip(xs, ys) for v in xy]


def _poly_mask(poly, h, w):
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([poly], h, w))).astype(bool)


def _shift(mask, dy, dx):
    """``mask`` moved by (dy, dx) pixels, without wrapping around."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        mask[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _perturb(rng, mask):
    """Shift by up to 2 pixels, then grow or shrink by one pixel half of the time."""
    out = _shift(mask, *(int(v) for v in rng.integers(-2, 3, size=2)))
    if rng.random() < 0.5:
        neighbours = [_shift(out, dy, dx) for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1))]
        if rng.random() < 0.5:
            out = np.logical_or.reduce([out] + neighbours)
        else:
            out = np.logical_and.reduce([out] + neighbours)
    return out


def make_synthetic_coco(seed=0, num_images=12):
    """Ground truth (polygon, compressed RLE, crowd uncompressed RLE; small, medium and large
    areas) and 10-30 scored RLE detections per image (perturbed ground truth, some with the
    wrong class, and random false positives)."""
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for i in range(num_images):
        big = i % 6 == 5
        h, w = (128, 112) if big else (60, 80)
        img_id = 10 + 3 * i
        images.append(dict(id=img_id, file_name=f'{i:03d}.jpg', height=h, width=w))
        gts = []
        for k in range(int(rng.integers(2, 7))):
            poly = _random_shape(rng, h, w, large=big and k == 0)
            mask = _poly_mask(poly, h, w)
            cat = int(rng.choice(CAT_IDS))
            crowd = int(k == 2 and rng.random() < 0.5)
            if crowd:
                segm = _uncompressed_rle(mask)
            elif k % 2:
                segm = _encode(mask)
            else:
                segm = [poly]
            rle = _encode(mask)
            anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=cat, segmentation=segm,
                             area=float(mask_utils.area(rle)),
                             bbox=[float(v) for v in mask_utils.toBbox(rle)], iscrowd=crowd))
            gts.append((mask, cat))
        for _ in range(int(rng.integers(10, 31))):
            if rng.random() < 0.75:
                mask, cat = gts[int(rng.integers(len(gts)))]
                mask = _perturb(rng, mask)
                if rng.random() < 0.15:
                    cat = int(rng.choice(CAT_IDS))
            else:
                mask, cat = _poly_mask(_random_shape(rng, h, w), h, w), int(rng.choice(CAT_IDS))
            if not mask.any():
                continue
            rle = _encode(mask)
            dets.append(dict(image_id=img_id, category_id=cat, segmentation=rle,
                             bbox=[float(v) for v in mask_utils.toBbox(rle)],
                             score=float(rng.random())))
    cats = [dict(id=c, name=f'class_{c}') for c in CAT_IDS]
    return dict(images=images, annotations=anns, categories=cats), dets


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    gt, dets = make_synthetic_coco()
    path = osp.join(str(tmp_path_factory.mktemp('coco_backends')), 'gt.json')
    with open(path, 'w') as f:
        json.dump(gt, f)
    return path, gt, dets


def _evaluate(backend, ann_file, dets, metric, img_ids=None, cat_ids=None):
    api = coco_api(backend)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        coco_gt = api.COCO(ann_file)
        coco_dt = coco_gt.loadRes([dict(d) for d in dets])
        coco_eval = api.COCOeval(coco_gt, coco_dt, metric)
        coco_eval.params.imgIds = list(img_ids) if img_ids is not None else coco_gt.getImgIds()
        if cat_ids is not None:
            coco_eval.params.catIds = list(cat_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    summary = [ln for ln in out.getvalue().splitlines() if ln.lstrip().startswith('Average')]
    return coco_eval, summary


def test_synthetic_set_is_not_trivial(synthetic):
    _, gt, dets = synthetic
    areas = np.array([a['area'] for a in gt['annotations']])
    assert (areas < 32 ** 2).any() and ((areas >= 32 ** 2) & (areas < 96 ** 2)).any()
    assert (areas >= 96 ** 2).any()
    assert any(a['iscrowd'] for a in gt['annotations'])
    assert any(isinstance(a['segmentation'], list) for a in gt['annotations'])
    assert 120 <= len(dets) <= 12 * 30


@pytest.mark.parametrize('metric,img_ids,cat_ids', [
    ('segm', None, None),
    ('bbox', None, None),
    ('segm', (10, 16, 22, 25, 40), (7, 1)),  # a subset of images and classes
])
def test_faster_coco_eval_matches_pycocotools(synthetic, capsys, metric, img_ids, cat_ids):
    pytest.importorskip('faster_coco_eval')
    ann_file, _, dets = synthetic
    dets_before = copy.deepcopy(dets)
    ref, ref_summary = _evaluate('pycocotools', ann_file, dets, metric, img_ids, cat_ids)
    fast, fast_summary = _evaluate('faster-coco-eval', ann_file, dets, metric, img_ids, cat_ids)
    assert capsys.readouterr().out == ''  # everything went to the redirected stdout
    assert dets == dets_before            # the caller's result dicts are untouched

    assert ref.stats.shape == fast.stats.shape == (12,)
    assert 0.2 < ref.stats[0] < 0.9 and 0.3 < ref.stats[1] <= 1  # a meaningful AP
    np.testing.assert_allclose(fast.stats, ref.stats, rtol=0, atol=1e-4)
    assert fast_summary == ref_summary and len(ref_summary) == 12

    assert [int(c) for c in fast.params.catIds] == [int(c) for c in ref.params.catIds]
    p_ref, p_fast = ref.eval['precision'], fast.eval['precision']
    assert p_ref.shape == p_fast.shape == (10, 101, len(ref.params.catIds), 4, 3)
    for k in range(p_ref.shape[2]):  # per class: (T, R, A, M)
        np.testing.assert_array_equal(p_fast[:, :, k] == -1, p_ref[:, :, k] == -1)
        np.testing.assert_allclose(p_fast[:, :, k], p_ref[:, :, k], rtol=0, atol=1e-4)
    np.testing.assert_allclose(fast.eval['recall'], ref.eval['recall'], rtol=0, atol=1e-4)


def test_faster_coco_eval_accepts_bytes_counts(synthetic):
    pytest.importorskip('faster_coco_eval')
    ann_file, _, dets = synthetic
    as_bytes = [dict(d, segmentation=dict(d['segmentation'],
                                          counts=d['segmentation']['counts'].encode('ascii')))
                for d in dets]
    ref, _ = _evaluate('faster-coco-eval', ann_file, dets, 'segm')
    fast, _ = _evaluate('faster-coco-eval', ann_file, as_bytes, 'segm')
    np.testing.assert_array_equal(fast.stats, ref.stats)


def test_coco_api_classes():
    assert EVAL_BACKENDS == ('pycocotools', 'faster-coco-eval')
    assert DEFAULT_EVAL_BACKEND == 'pycocotools'
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    api = coco_api('pycocotools')
    assert isinstance(api, CocoApi) and api == ('pycocotools', COCO, COCOeval)
    assert coco_api() == api


def test_faster_coco_eval_api_is_stable():
    fce = pytest.importorskip('faster_coco_eval')
    api = coco_api('faster-coco-eval')
    assert api.name == 'faster-coco-eval' and api.COCO is fce.COCO
    assert issubclass(api.COCOeval, fce.COCOeval_faster)
    assert coco_api('faster-coco-eval').COCOeval is api.COCOeval  # one class, not one per call


@pytest.mark.parametrize('name,suggestion', [
    ('faster_coco_eval', 'faster-coco-eval'),
    ('Faster-COCO-eval', 'faster-coco-eval'),
    ('pycocotool', 'pycocotools'),
])
def test_unknown_backend_suggests_close_match(name, suggestion):
    with pytest.raises(ValueError) as info:
        coco_api(name)
    msg = str(info.value)
    assert repr(name) in msg
    assert "'pycocotools'" in msg and "'faster-coco-eval'" in msg
    assert f"did you mean '{suggestion}'?" in msg


def test_unknown_backend_without_close_match():
    with pytest.raises(ValueError, match=r"unknown COCO evaluation backend 'lvis'; allowed: "
                                         r"'pycocotools', 'faster-coco-eval'$"):
        coco_api('lvis')
    with pytest.raises(TypeError, match='must be a string'):
        coco_api(None)


def test_missing_faster_coco_eval_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'faster_coco_eval', None)  # makes the import fail
    with pytest.raises(ImportError, match=r'optional.*pip install faster-coco-eval'):
        coco_api('faster-coco-eval')
    assert coco_api('pycocotools').name == 'pycocotools'
