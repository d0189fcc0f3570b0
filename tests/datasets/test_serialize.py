"""Per-image records in flat buffers (SerializedList) and CocoDataset's use of them."""
import contextlib
import gc
import io
import json
import multiprocessing as mp

import numpy as np
import pytest
from pycocotools.coco import COCO

from coco_fixtures import tiny_coco, write_tiny_coco  # noqa: F401
from mmdet_solo.datasets import CocoDataset, SerializedList, build_dataset


@pytest.mark.parametrize('compress', [False, True])
def test_round_trip_and_indexing(compress):
    records = [dict(a=1, b=[0.1, 1e-30, 2.5], c='é', d=None), [1, 2], 'x', 3.0000000000000004]
    lst = SerializedList(records, compress=compress)
    assert len(lst) == 4
    assert list(lst) == records
    assert lst[-1] == records[-1] and lst[1:3] == records[1:3]
    assert lst.index('x') == 2 and [1, 2] in lst
    with pytest.raises(IndexError, match='index 4 out of range for 4'):
        lst[4]
    assert lst._buffer.dtype == np.uint8 and lst._ends.dtype == np.int64
    assert lst.nbytes == lst._buffer.nbytes + lst._ends.nbytes
    assert list(SerializedList([])) == []


def test_floats_round_trip_exactly():
    rng = np.random.default_rng(0)
    values = rng.normal(size=1000) * 10.0 ** rng.integers(-20, 20, 1000)
    assert np.array_equal(np.array(SerializedList([values.tolist()])[0]), values)


def test_non_json_record_is_refused_with_its_index():
    with pytest.raises(TypeError, match='record 1 is not JSON data'):
        SerializedList([{}, {'x': np.zeros(2)}])


def _mmdet_v1_ann_info(coco, img_id, cat2label):
    """The former parse (pycocotools' index, one image): the reference for equality."""
    bboxes, labels, masks, ignore = [], [], [], []
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img_id])):
        if ann.get('ignore', False) or ann.get('category_id') not in cat2label:
            continue
        x, y, w, h = ann['bbox']
        if ann.get('area', 0) <= 0 or w < 1 or h < 1:
            continue
        box = [x, y, x + w - 1, y + h - 1]
        if ann.get('iscrowd', False):
            ignore.append(box)
        else:
            bboxes.append(box)
            labels.append(cat2label[ann['category_id']])
            masks.append(ann['segmentation'])
    return (np.array(bboxes, np.float32).reshape(-1, 4), np.array(labels, np.int64),
            np.array(ignore, np.float32).reshape(-1, 4), masks)


@pytest.mark.parametrize('test_mode', [False, True])
def test_dataset_records_equal_pycocotools_parse(tmp_path, test_mode):
    info = write_tiny_coco(str(tmp_path), num_images=7, with_small_image=True,
                           with_invalid_ann=True)
    ds = CocoDataset(info['ann_file'], [], classes=info['classes'], img_prefix=info['img_prefix'],
                     test_mode=test_mode)
    assert isinstance(ds.img_infos, SerializedList)
    assert isinstance(ds._ann_records, SerializedList)
    assert ds._raw_anns is None and getattr(ds, '_coco', None) is None  # nothing else held
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(info['ann_file'])
    assert len(ds) == (len(coco.imgs) if test_mode else len(coco.imgs) - 2)
    for i in range(len(ds)):
        img_id = ds.img_ids[i]
        expect_info = dict(coco.imgs[img_id], filename=coco.imgs[img_id]['file_name'])
        assert ds.img_infos[i] == expect_info
        ann = ds.get_ann_info(i)
        bboxes, labels, ignore, masks = _mmdet_v1_ann_info(coco, img_id, ds.cat2label)
        assert ann['bboxes'].dtype == np.float32 and np.array_equal(ann['bboxes'], bboxes)
        assert ann['labels'].dtype == np.int64 and np.array_equal(ann['labels'], labels)
        assert np.array_equal(ann['bboxes_ignore'], ignore)
        assert ann['masks'] == masks


def test_training_sample_equals_one_built_from_pycocotools(tiny_coco):
    """A whole training sample (image, boxes, decoded masks) is the one the former dataset gave."""
    from mmdet_solo.datasets.pipelines import Compose
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                dict(type='Resize', img_scale=(128, 96), keep_ratio=True),
                dict(type='RandomFlip', flip_ratio=0.0),
                dict(type='Normalize', mean=[0, 0, 0], std=[1, 1, 1], to_rgb=True),
                dict(type='Pad', size_divisor=32), dict(type='DefaultFormatBundle'),
                dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks'])]
    ds = build_dataset(dict(type='CocoDataset', ann_file=tiny_coco['ann_file'], pipeline=pipeline,
                            classes=tiny_coco['classes'], img_prefix=tiny_coco['img_prefix']))
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(tiny_coco['ann_file'])
    compose = Compose(pipeline)
    for i in range(len(ds)):
        img_id = ds.img_ids[i]
        img_info = dict(coco.imgs[img_id], filename=coco.imgs[img_id]['file_name'])
        bboxes, labels, ignore, masks = _mmdet_v1_ann_info(coco, img_id, ds.cat2label)
        results = dict(img_info=img_info, ann_info=dict(
            bboxes=bboxes, labels=labels, bboxes_ignore=ignore, masks=masks,
            seg_map=img_info['filename'].rsplit('.', 1)[0] + '.png'))
        ds.pre_pipeline(results)
        expect, got = compose(results), ds[i]
        assert got['img'].data.equal(expect['img'].data)
        assert np.array_equal(got['gt_masks'].data, expect['gt_masks'].data)
        assert got['gt_bboxes'].data.equal(expect['gt_bboxes'].data)
        assert got['gt_labels'].data.equal(expect['gt_labels'].data)


def test_coco_ground_truth_is_built_for_evaluation_only(tiny_coco):
    ds = CocoDataset(tiny_coco['ann_file'], [], classes=tiny_coco['classes'],
                     img_prefix=tiny_coco['img_prefix'], test_mode=True)
    assert getattr(ds, '_coco', None) is None
    assert len(ds.coco.getImgIds()) == len(ds)  # built on first use
    ds.release_coco()
    assert ds._coco is None
    results = [_empty_result(ds.img_infos[i]) for i in range(len(ds))]
    with pytest.warns(UserWarning, match='empty'):
        ds.evaluate(results, metric='segm', logger='silent')
    assert ds._coco is None  # evaluation does not leave it behind for forked workers


def _empty_result(info):
    from mmdet_solo.structures import InstanceResult
    return InstanceResult.empty(info['height'], info['width'])


def _read_in_child(ds, q):
    gc.collect()  # the collector walks containers: serialized records must survive it intact
    q.put([ds.get_ann_info(i)['labels'].tolist() for i in range(len(ds))])


def test_forked_worker_reads_the_same_records(tiny_coco):
    ds = CocoDataset(tiny_coco['ann_file'], [], classes=tiny_coco['classes'],
                     img_prefix=tiny_coco['img_prefix'])
    ctx = mp.get_context('fork')
    q = ctx.Queue()
    p = ctx.Process(target=_read_in_child, args=(ds, q))
    p.start()
    got = q.get(timeout=60)
    p.join(60)
    assert got == [ds.get_ann_info(i)['labels'].tolist() for i in range(len(ds))]


def test_pickle_proposal_file_is_refused(tiny_coco, tmp_path):
    evil = tmp_path / 'evil.pkl'
    evil.write_bytes(b'\x80\x04K\x01.')
    with pytest.raises(ValueError, match=r'evil.pkl.*expected a \.json file.*arbitrary code'):
        CocoDataset(tiny_coco['ann_file'], [], classes=tiny_coco['classes'],
                    img_prefix=tiny_coco['img_prefix'], proposal_file=str(evil))


def test_json_proposals_are_serialized(tiny_coco, tmp_path):
    n = len(json.load(open(tiny_coco['ann_file']))['images'])
    path = tmp_path / 'props.json'
    path.write_text(json.dumps([[[0, 0, 10, 10, 0.5]]] * n))
    ds = CocoDataset(tiny_coco['ann_file'], [], classes=tiny_coco['classes'],
                     img_prefix=tiny_coco['img_prefix'], proposal_file=str(path), test_mode=True)
    assert isinstance(ds.proposals, SerializedList)
    out = ds.prepare_test_img(0)
    assert out['proposals'].dtype == np.float32 and out['proposals'].shape == (1, 5)
