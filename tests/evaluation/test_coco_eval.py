"""COCO evaluation: results2json, dump_results_json, coco_evaluate, CocoDataset.evaluate."""
import contextlib
import io
import json
import logging
import os

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from coco_fixtures import tiny_coco  # noqa: F401
from mmdet_solo.datasets import CocoDataset
from mmdet_solo.datasets.pipelines import segm_to_mask
from mmdet_solo.evaluation import coco_evaluate, dump_results_json, results2json
from mmdet_solo.structures.results import InstanceResult


def _dataset(info, **kw):
    return CocoDataset(info['ann_file'], [], classes=kw.pop('classes', info['classes']),
                       img_prefix=info['img_prefix'], test_mode=True, **kw)


def _perfect(ds):
    """The ground-truth instances themselves, score 1."""
    out = []
    for i, info in enumerate(ds.img_infos):
        ann = ds.get_ann_info(i)
        h, w = info['height'], info['width']
        masks = np.stack([segm_to_mask(s, h, w) for s in ann['masks']]) if ann['masks'] \
            else np.zeros((0, h, w), np.uint8)
        out.append(InstanceResult(masks, ann['labels'], np.ones(len(masks), np.float32)))
    return out


def _noisy(ds, seed=0):
    """Perturbed GT (shifted masks, random scores, wrong labels, false positives)."""
    rng = np.random.default_rng(seed)
    out = []
    for res in _perfect(ds):
        n, (h, w) = len(res), res.image_size
        masks = [np.roll(m, int(rng.integers(-3, 4)), axis=int(rng.integers(2))) for m in res.masks]
        labels = [lb if rng.random() > 0.2 else (lb + 1) % 3 for lb in res.labels]
        for _ in range(2):  # false positives
            fp = np.zeros((h, w), bool)
            y, x = rng.integers(0, h - 20), rng.integers(0, w - 20)
            fp[y:y + int(rng.integers(5, 20)), x:x + int(rng.integers(5, 20))] = True
            masks.append(fp)
            labels.append(int(rng.integers(3)))
        scores = rng.random(len(masks)).astype(np.float32)
        out.append(InstanceResult(np.stack(masks) if masks else np.zeros((0, h, w), bool),
                                  labels, scores))
        assert n + 2 == len(out[-1])
    return out


def _direct_stats(ann_file, res_file, iou_type):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        ev = COCOeval(gt, gt.loadRes(res_file), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def test_perfect_predictions_give_ap_1(tiny_coco, capsys):
    ds = _dataset(tiny_coco)
    out = ds.evaluate(_perfect(ds), metric=['segm', 'bbox'])
    for m in ('segm', 'bbox'):
        assert out[f'{m}_mAP'] == pytest.approx(1.0, abs=1e-6)
        assert out[f'{m}_mAP_50'] == pytest.approx(1.0, abs=1e-6)
        assert out[f'{m}_mAP_75'] == pytest.approx(1.0, abs=1e-6)
        assert {f'{m}_mAP_s', f'{m}_mAP_m', f'{m}_mAP_l', f'{m}_mAP_copypaste'} <= set(out)
    assert out['segm_mAP_copypaste'].startswith('1.000 1.000 1.000')
    printed = capsys.readouterr().out
    assert printed.count('Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all') == 2


def test_perfect_predictions_class_subset(tiny_coco):
    ds = _dataset(tiny_coco, classes=('c', 'a'))
    out = ds.evaluate(_perfect(ds), metric='segm', logger='silent')
    assert out['segm_mAP'] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize('metric', ['segm', 'bbox'])
def test_equals_pycocotools_directly(tiny_coco, tmp_path, metric):
    ds = _dataset(tiny_coco)
    results = _noisy(ds)
    prefix = str(tmp_path / 'res')
    out = ds.evaluate(results, metric=metric, jsonfile_prefix=prefix, logger='silent')
    stats = _direct_stats(tiny_coco['ann_file'], f'{prefix}.{metric}.json', metric)
    ours = [out[f'{metric}_{k}'] for k in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')]
    np.testing.assert_allclose(ours, stats[:6], atol=1e-12)
    assert 0.05 < out[f'{metric}_mAP'] < 0.95  # the noise matters


def test_results2json_fields(tiny_coco):
    ds = _dataset(tiny_coco)
    results = _noisy(ds, seed=1)
    segm, bbox = results2json(ds, results)
    assert len(segm) == len(bbox) == sum(len(r) for r in results)
    k = 0
    for i, res in enumerate(results):
        for j in range(len(res)):
            s, b = segm[k], bbox[k]
            assert s['image_id'] == b['image_id'] == ds.img_ids[i]
            assert s['category_id'] == ds.cat_ids[res.labels[j]]
            assert isinstance(s['segmentation']['counts'], str)
            assert s['score'] == pytest.approx(float(res.scores[j]))
            x1, y1, x2, y2 = res.bboxes[j]
            assert b['bbox'] == pytest.approx([x1, y1, x2 - x1, y2 - y1])
            k += 1
    json.dumps(segm)  # JSON-ready


def test_dump_results_json_atomic(tiny_coco, tmp_path):
    ds = _dataset(tiny_coco)
    files = dump_results_json(ds, _perfect(ds), str(tmp_path / 'sub' / 'out'))
    assert files == {'segm': str(tmp_path / 'sub' / 'out.segm.json'),
                     'bbox': str(tmp_path / 'sub' / 'out.bbox.json')}
    assert sorted(os.listdir(tmp_path / 'sub')) == ['out.bbox.json', 'out.segm.json']
    assert len(json.load(open(files['segm']))) == tiny_coco['num_instances']


def test_empty_results(tiny_coco, tmp_path):
    ds = _dataset(tiny_coco)
    empty = [InstanceResult.empty(i['height'], i['width']) for i in ds.img_infos]
    with pytest.warns(UserWarning, match='result list is empty'):
        out = ds.evaluate(empty, metric=['segm', 'bbox'], logger='silent')
    assert out['segm_mAP'] == 0.0 and out['bbox_mAP'] == 0.0
    with pytest.warns(UserWarning, match='empty'):
        direct = coco_evaluate(ds.coco, [], 'segm', logger='silent')
    assert direct['segm_mAP'] == 0.0


def test_classwise_table(tiny_coco):
    ds = _dataset(tiny_coco)
    logger = logging.getLogger('test_coco_eval_classwise')
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        out = ds.evaluate(_perfect(ds), metric='segm', classwise=True, logger=logger)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert 'Per-class segm AP' in text
    for name in ('a', 'b', 'c'):
        assert f'| {name} ' in text
        assert out[f'segm_AP_{name}'] == pytest.approx(1.0)
    assert '100.000' in text


def test_input_errors(tiny_coco):
    ds = _dataset(tiny_coco)
    results = _perfect(ds)
    with pytest.raises(ValueError, match=r'\d+ results for \d+ images'):
        results2json(ds, results[:-1])
    bad = list(results)
    bad[0] = InstanceResult.empty(10, 10)
    with pytest.raises(ValueError, match='original size'):
        results2json(ds, bad)
    with pytest.raises(KeyError, match='allowed'):
        coco_evaluate(ds.coco, [], 'keypoints')


def test_encoded_results_evaluate_like_dense_ones_without_decoding(tiny_coco, monkeypatch):
    """RLE results (the test loop's) give the dense results' metrics; their masks are never
    decoded, and the ground truth built for evaluation is released afterwards."""
    from mmdet_solo.structures import EncodedInstanceResult
    ds = _dataset(tiny_coco)
    dense = _noisy(ds)
    expect = ds.evaluate(dense, metric=['segm', 'bbox'], logger='silent')
    encoded = [EncodedInstanceResult.from_result(r) for r in dense]

    def no_decoding(self):
        raise AssertionError('masks decoded during evaluation')

    monkeypatch.setattr(EncodedInstanceResult, 'masks', property(no_decoding))
    got = ds.evaluate(encoded, metric=['segm', 'bbox'], logger='silent')
    assert got == expect
    assert ds._coco is None


def test_evaluation_backends_agree(tiny_coco):
    pytest.importorskip('faster_coco_eval')
    ds = _dataset(tiny_coco)
    res = _noisy(ds, seed=1)
    a = ds.evaluate(res, metric='segm', logger='silent')
    b = ds.evaluate(res, metric='segm', logger='silent', backend='faster-coco-eval')
    assert a.keys() == b.keys()
    for k in a:
        if not k.endswith('copypaste'):
            assert a[k] == pytest.approx(b[k], abs=1e-4), k


@pytest.mark.parametrize('backend', ['pycocotools', 'faster-coco-eval'])
def test_labelling_tool_files_train_and_evaluate(tiny_coco, tmp_path, caplog, backend):
    """No area/iscrowd fields, category ids from 0, string image ids (common exporter output)."""
    if backend != 'pycocotools':
        pytest.importorskip('faster_coco_eval')
    data = json.load(open(tiny_coco['ann_file']))
    data['annotations'] = [a for a in data['annotations'] if not a['iscrowd']]
    areas = {a['id']: a['area'] for a in data['annotations']}
    ids = {c['id']: i for i, c in enumerate(sorted(data['categories'], key=lambda c: c['id']))}
    for c in data['categories']:
        c['id'] = ids[c['id']]
    string_ids = backend == 'pycocotools'  # faster-coco-eval needs int ids: an error says so
    for img in data['images']:
        img['id'] = f"img-{img['id']}" if string_ids else img['id']
    for a in data['annotations']:
        a['category_id'] = ids[a['category_id']]
        a['image_id'] = f"img-{a['image_id']}" if string_ids else a['image_id']
        del a['area'], a['iscrowd']
    path = tmp_path / 'exported.json'
    path.write_text(json.dumps(data))
    with caplog.at_level('WARNING', logger='mmdet_solo'):
        train = CocoDataset(str(path), [], classes=tiny_coco['classes'],
                            img_prefix=tiny_coco['img_prefix'])
    assert f"{len(areas)} annotation(s) without iscrowd (taken as 0) and {len(areas)} without " \
           'area (computed from the mask)' in caplog.text
    assert sum(len(train.get_ann_info(i)['labels']) for i in range(len(train))) == len(areas)
    gt = train.coco
    assert {a['id']: a['area'] for a in gt.dataset['annotations']} == pytest.approx(areas)
    test = _dataset(dict(tiny_coco, ann_file=str(path)))
    metrics = test.evaluate(_perfect(test), metric='segm', logger='silent', backend=backend)
    assert metrics['segm_mAP'] == pytest.approx(1.0)
    if not string_ids:
        for img in data['images']:
            img['id'] = f"img-{img['id']}"
        path.write_text(json.dumps(data))
        with pytest.raises(ValueError, match="non-integer image ids.*use the default backend"):
            test.ground_truth(backend)
