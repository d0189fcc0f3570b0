"""CocoDataset, dataset wrappers, build_dataset / build_dataloader on the tiny COCO set."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

from coco_fixtures import tiny_coco, write_tiny_coco  # noqa: F401
from mmdet_solo.datasets import (CocoDataset, ConcatDataset, RepeatDataset, build_dataloader,
                                 build_dataset)
from mmdet_solo.registry import DATASETS

SCALE = (128, 96)
NORM = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
TRAIN_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', img_scale=SCALE, keep_ratio=True),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(type='Normalize', **NORM),
    dict(type='Pad', size_divisor=32),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks']),
]


def _raw(info):
    with open(info['ann_file']) as f:
        return json.load(f)


def _ds(info, **kw):
    kw.setdefault('classes', info['classes'])
    kw.setdefault('pipeline', [])
    kw.setdefault('img_prefix', info['img_prefix'])
    return CocoDataset(info['ann_file'], **kw)


@pytest.fixture(scope='module')
def odd_coco(tmp_path_factory):
    """With a too-small image and a zero-area annotation."""
    return write_tiny_coco(str(tmp_path_factory.mktemp('odd_coco')), with_small_image=True,
                           with_invalid_ann=True)


def _copy(info, dst):
    root = os.path.dirname(info['ann_file'])
    shutil.copytree(root, dst)
    return dict(info, ann_file=str(dst / 'annotations.json'), img_prefix=str(dst / 'images'))


# ----------------------------------------------------------------------------- classes
def test_registered_and_default_classes_checked_by_name(tiny_coco):
    assert DATASETS.get('CocoDataset') is CocoDataset
    with pytest.raises(KeyError, match=r"classes \['person'.*are not categories of .*annotations.json"):
        CocoDataset(tiny_coco['ann_file'], [], img_prefix=tiny_coco['img_prefix'])


def test_class_mapping_by_name(tiny_coco):
    ds = _ds(tiny_coco)
    assert ds.CLASSES == ('a', 'b', 'c')
    assert ds.cat_ids == [2, 5, 8]  # the file lists them in reverse order
    assert ds.cat2label == {2: 0, 5: 1, 8: 2}
    raw = _raw(tiny_coco)
    name_of = {c['id']: c['name'] for c in raw['categories']}
    for i in range(len(ds)):
        anns = [a for a in raw['annotations']
                if a['image_id'] == ds.img_ids[i] and not a['iscrowd']]
        labels = ds.get_ann_info(i)['labels']
        assert [ds.CLASSES[lb] for lb in labels] == [name_of[a['category_id']] for a in anns]


def test_custom_class_subset_and_order(tiny_coco, tmp_path):
    ds = _ds(tiny_coco, classes=('c', 'a'), test_mode=True)
    assert ds.cat_ids == [8, 2] and ds.cat2label == {8: 0, 2: 1}
    raw = _raw(tiny_coco)
    for i in range(len(ds)):
        anns = [a for a in raw['annotations'] if a['image_id'] == ds.img_ids[i]
                and not a['iscrowd'] and a['category_id'] in (8, 2)]
        assert ds.get_ann_info(i)['labels'].tolist() == [{8: 0, 2: 1}[a['category_id']] for a in anns]
    names = tmp_path / 'classes.txt'
    names.write_text('b\n\nc\n')
    assert _ds(tiny_coco, classes=str(names)).cat_ids == [5, 8]
    with pytest.raises(KeyError, match=r"classes \['zebra'\].*annotations.json"):
        _ds(tiny_coco, classes=('a', 'zebra'))
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        _ds(tiny_coco, classes=str(tmp_path / 'nope.txt'))
    with pytest.raises(ValueError, match='duplicate'):
        _ds(tiny_coco, classes=('a', 'a'))


# ----------------------------------------------------------------------------- annotations
def test_crowd_goes_to_ignore_and_bbox_convention(tiny_coco):
    ds = _ds(tiny_coco)
    raw = _raw(tiny_coco)
    n_ignore = 0
    for i in range(len(ds)):
        ann = ds.get_ann_info(i)
        anns = [a for a in raw['annotations'] if a['image_id'] == ds.img_ids[i]]
        good = [a for a in anns if not a['iscrowd']]
        crowd = [a for a in anns if a['iscrowd']]
        expect = [[x, y, x + w - 1, y + h - 1] for x, y, w, h in (a['bbox'] for a in good)]
        np.testing.assert_allclose(ann['bboxes'], np.array(expect, np.float32).reshape(-1, 4))
        assert ann['bboxes'].dtype == np.float32 and ann['labels'].dtype == np.int64
        assert len(ann['masks']) == len(ann['labels']) == len(good)
        assert ann['bboxes_ignore'].shape == (len(crowd), 4)
        n_ignore += len(crowd)
    assert n_ignore == 1


def test_masks_stay_raw_segmentations(tiny_coco):
    ds = _ds(tiny_coco)
    kinds = set()
    for i in range(len(ds)):
        for segm in ds.get_ann_info(i)['masks']:
            assert isinstance(segm, (list, dict))
            kinds.add(type(segm).__name__)
    assert kinds == {'list', 'dict'}  # polygons and the RLE instance
    for info in ds.img_infos:  # nothing decoded is held
        assert not any(isinstance(v, np.ndarray) for v in info.values())
    assert not any(isinstance(v, np.ndarray) and v.ndim == 3 for v in vars(ds).values())


def test_invalid_annotations_skipped(odd_coco):
    ds = _ds(odd_coco, test_mode=True)
    raw = _raw(odd_coco)
    img0 = [a for a in raw['annotations'] if a['image_id'] == ds.img_ids[0]]
    assert any(a['area'] == 0 for a in img0)
    assert len(ds.get_ann_info(0)['labels']) == sum(a['area'] > 0 for a in img0)


def test_filtering_counts(odd_coco):
    n = odd_coco['num_images']
    ds = _ds(odd_coco)
    assert len(ds) == n - 2
    assert ds.filter_stats == {'without usable annotations': 1, 'smaller than min_size=32': 1}
    assert len(ds.img_ids) == len(ds.img_infos) == len(ds.flag)
    assert [i['id'] for i in ds.img_infos] == ds.img_ids
    assert len(_ds(odd_coco, test_mode=True)) == n
    assert len(_ds(odd_coco, filter_empty_gt=False)) == n - 1
    assert len(_ds(odd_coco, min_size=0)) == n - 1
    # a class with no instances in some images: those images count as empty
    sub = _ds(odd_coco, classes=('b',), min_size=0)
    assert all(len(sub.get_ann_info(i)['labels']) for i in range(len(sub)))


def test_flag_is_aspect_group(tiny_coco):
    ds = _ds(tiny_coco, test_mode=True)
    expect = [int(i['width'] / i['height'] > 1) for i in ds.img_infos]
    assert ds.flag.tolist() == expect and set(expect) == {0, 1}


# ----------------------------------------------------------------------------- errors
def test_error_missing_annotation_file(tiny_coco, tmp_path):
    with pytest.raises(FileNotFoundError, match='annotation file not found.*missing.json'):
        CocoDataset(str(tmp_path / 'missing.json'), [], classes=('a',))


def test_error_missing_image_folder(tiny_coco, tmp_path):
    with pytest.raises(FileNotFoundError, match=r'image folder.*no_such_dir'):
        _ds(tiny_coco, img_prefix=str(tmp_path / 'no_such_dir'))


def test_error_missing_image_files(tiny_coco, tmp_path):
    info = _copy(tiny_coco, tmp_path / 'copy')
    os.remove(os.path.join(info['img_prefix'], 'img_000.jpg'))
    os.remove(os.path.join(info['img_prefix'], 'img_002.jpg'))
    with pytest.raises(FileNotFoundError, match=r'2 of \d+ images .*missing.*img_000.jpg'):
        _ds(info)


def test_error_corrupt_image_at_load_time(tiny_coco, tmp_path):
    info = _copy(tiny_coco, tmp_path / 'copy')
    with open(os.path.join(info['img_prefix'], 'img_000.jpg'), 'wb') as f:
        f.write(b'not a jpeg')
    ds = _ds(info, pipeline=[dict(type='LoadImageFromFile')])  # construction is fine
    idx = ds.img_infos.index(next(i for i in ds.img_infos if i['filename'] == 'img_000.jpg'))
    with pytest.warns(UserWarning, match=r'img_000.jpg.*skipped in training \(1 skipped'):
        out = ds[idx]  # training: skipped (counted, named), another image of its group instead
    assert out['filename'] != ds.img_infos[idx]['filename'] and ds.skipped_images == 1
    test = _ds(info, pipeline=[dict(type='LoadImageFromFile')], test_mode=True)
    idx = [i['filename'] for i in test.img_infos].index('img_000.jpg')
    with pytest.raises(OSError, match='img_000.jpg'):
        test[idx]  # testing: every image must be there


def test_truncated_jpeg_is_detected(tiny_coco, tmp_path):
    from mmdet_solo.datasets.pipelines.loading import CorruptImageError, imread
    data = open(tiny_coco['image_files'][0], 'rb').read()
    assert data.startswith(b'\xff\xd8\xff') and data.rstrip(b'\0').endswith(b'\xff\xd9')
    cut = tmp_path / 'cut.jpg'
    cut.write_bytes(data[:len(data) * 2 // 3])
    with pytest.raises(CorruptImageError, match=r"cut.jpg' is a truncated JPEG"):
        imread(str(cut))
    whole = tmp_path / 'whole.jpg'
    whole.write_bytes(data + b'\0' * 10)  # trailing padding after the marker is fine
    assert imread(str(whole)).shape[:2] == imread(tiny_coco['image_files'][0]).shape[:2]


def test_error_unreadable_annotation_file(tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('{not json')
    with pytest.raises(ValueError, match='bad.json'):
        CocoDataset(str(bad), [], classes=('a',))


def test_error_empty_after_filtering(odd_coco):
    with pytest.raises(ValueError, match=r'no training images left.*after filtering 7 images '
                                         r'\(\d+ without usable annotations, \d+ smaller than'):
        _ds(odd_coco, min_size=1000)


def test_evaluate_unknown_metric(tiny_coco):
    ds = _ds(tiny_coco, test_mode=True)
    with pytest.raises(KeyError, match=r"unknown COCO metric.*'proposal'.*allowed: \['segm', 'bbox'\]"):
        ds.evaluate([], metric=['segm', 'proposal'])


# ----------------------------------------------------------------------------- pipeline
def test_train_retries_dropped_sample_in_same_group(tiny_coco):
    dropped = []

    def drop_first(results):
        if results['img_info']['filename'] == 'img_000.jpg':
            dropped.append(1)
            return None
        return results

    ds = _ds(tiny_coco, pipeline=[drop_first])
    idx = [i['filename'] for i in ds.img_infos].index('img_000.jpg')
    out = ds[idx]
    assert dropped and out['img_info']['filename'] != 'img_000.jpg'
    assert ds.flag[ds.img_infos.index(out['img_info'])] == ds.flag[idx]


def test_full_train_sample_through_collate(tiny_coco):
    ds = _ds(tiny_coco, pipeline=TRAIN_PIPELINE)
    loader = build_dataloader(ds, imgs_per_gpu=2, workers_per_gpu=0, seed=3)
    batches = list(loader)
    assert len(batches) == len(loader.sampler) // 2
    b = batches[0]
    assert b['img'].dim() == 4 and b['img'].shape[:2] == (2, 3) and b['img'].dtype == torch.float32
    assert b['img'].shape[2] % 32 == 0 and b['img'].shape[3] % 32 == 0
    for masks, labels, boxes, meta in zip(b['gt_masks'], b['gt_labels'], b['gt_bboxes'], b['img_metas']):
        assert masks.dtype == np.uint8 and masks.shape[1:] == tuple(b['img'].shape[2:])
        assert len(masks) == len(labels) == len(boxes) > 0
        assert (masks.reshape(len(masks), -1).sum(1) > 0).all()
        assert labels.dtype == torch.int64 and int(labels.max()) < 3
        assert max(meta['img_shape'][:2]) <= max(SCALE)
    flags = {tuple(m['img_shape'][1] > m['img_shape'][0] for m in bb['img_metas']) for bb in batches}
    assert all(len(set(f)) == 1 for f in flags)  # group-pure batches


def test_test_mode_sample(tiny_coco):
    pipe = [dict(type='LoadImageFromFile'),
            dict(type='MultiScaleFlipAug', img_scale=SCALE, flip=False,
                 transforms=[dict(type='Resize', keep_ratio=True), dict(type='RandomFlip'),
                             dict(type='Normalize', **NORM), dict(type='Pad', size_divisor=32),
                             dict(type='ImageToTensor', keys=['img']),
                             dict(type='Collect', keys=['img'])])]
    ds = _ds(tiny_coco, pipeline=pipe, test_mode=True)
    loader = build_dataloader(ds, 1, 0, shuffle=False)
    batches = list(loader)
    assert len(batches) == len(ds) == tiny_coco['num_images']
    assert [b['img_metas'][0][0]['ori_shape'][:2] for b in batches] == \
        [(i['height'], i['width']) for i in ds.img_infos]


def _flip_log(loader, epoch):
    loader.set_epoch(epoch)
    return [(m['filename'], m['flip']) for b in loader for m in b['img_metas']]


@pytest.mark.parametrize('workers', [0, 2])
def test_augmentation_rng_reproducible_across_resume(tiny_coco, workers):
    pipe = [dict(type='LoadImageFromFile'), dict(type='RandomFlip', flip_ratio=0.5),
            dict(type='Collect', keys=[], meta_keys=('filename', 'flip'))]
    ds = _ds(tiny_coco, pipeline=pipe)
    ds = RepeatDataset(ds, 4)  # more draws per epoch
    full = build_dataloader(ds, 2, workers, seed=7)
    e0, e1 = _flip_log(full, 0), _flip_log(full, 1)
    resumed = build_dataloader(ds, 2, workers, seed=7)
    assert _flip_log(resumed, 1) == e1  # a fresh loader started at epoch 1
    assert e0 != e1
    assert [f for _, f in e0] != [f for _, f in e1]
    np.random.seed(123)  # the global state does not matter
    assert _flip_log(build_dataloader(ds, 2, workers, seed=7), 0) == e0
    assert _flip_log(build_dataloader(ds, 2, workers, seed=8), 0) != e0


# ----------------------------------------------------------------------------- wrappers
def test_repeat_and_concat(tiny_coco):
    ds = _ds(tiny_coco, pipeline=[lambda r: r['img_info']['filename']])
    rep = RepeatDataset(ds, 3)
    assert len(rep) == 3 * len(ds) and rep.CLASSES == ds.CLASSES
    assert rep.flag.tolist() == ds.flag.tolist() * 3
    assert rep[len(ds) + 1] == ds[1]
    with pytest.raises(IndexError):
        rep[3 * len(ds)]
    sub = _ds(tiny_coco, pipeline=[lambda r: r['img_info']['filename']],
              filter_empty_gt=False)
    cat = ConcatDataset([ds, sub])
    assert len(cat) == len(ds) + len(sub) and cat.CLASSES == ds.CLASSES
    assert cat.flag.tolist() == ds.flag.tolist() + sub.flag.tolist()
    assert cat[len(ds)] == sub[0]
    other = _ds(tiny_coco, classes=('b', 'a'))
    with pytest.raises(ValueError, match='CLASSES'):
        ConcatDataset([ds, other])


def test_build_dataset_variants(tiny_coco):
    cfg = dict(type='CocoDataset', ann_file=tiny_coco['ann_file'], pipeline=[],
               img_prefix=tiny_coco['img_prefix'], classes=tiny_coco['classes'])
    single = build_dataset(cfg)
    assert isinstance(single, CocoDataset)
    assert isinstance(build_dataset([cfg, cfg]), ConcatDataset)
    assert len(build_dataset([cfg, cfg])) == 2 * len(single)
    rep = build_dataset(dict(type='RepeatDataset', times=2, dataset=cfg))
    assert isinstance(rep, RepeatDataset) and len(rep) == 2 * len(single)
    multi = build_dataset(dict(cfg, ann_file=[cfg['ann_file']] * 2))
    assert isinstance(multi, ConcatDataset) and len(multi) == 2 * len(single)
    assert len(build_dataset(cfg, default_args=dict(test_mode=True))) == tiny_coco['num_images']
    with pytest.raises(KeyError, match='CocoDatset.*did you mean'):
        build_dataset(dict(cfg, type='CocoDatset'))


def test_dropped_annotations_are_counted_with_reasons(tiny_coco, tmp_path, caplog):
    data = _raw(tiny_coco)
    anns = [a for a in data['annotations'] if not a['iscrowd']]
    anns[0]['segmentation'] = [[1, 1, 5, 5]]             # 2 points: no mask
    anns[1]['bbox'][2] = 0                               # zero width
    anns[2]['category_id'] = 999                         # not a category of the file
    anns[3]['area'] = 0
    anns[4]['area'] = -1
    path = tmp_path / 'bad.json'
    path.write_text(json.dumps(data))
    with caplog.at_level('WARNING', logger='mmdet_solo'):
        ds = CocoDataset(str(path), [], classes=tiny_coco['classes'],
                         img_prefix=tiny_coco['img_prefix'], test_mode=True)
    assert ds.dropped_annotations == {
        'no polygon with 3 points or more': [1, [anns[0]['id']]],
        'bbox width or height < 1': [1, [anns[1]['id']]],
        "category_id not among the file's categories": [1, [anns[2]['id']]],
        'area <= 0': [2, [anns[3]['id'], anns[4]['id']]]}
    assert '5 annotation(s) dropped' in caplog.text and 'bad.json' in caplog.text
    kept = sum(len(ds.get_ann_info(i)['labels']) for i in range(len(ds)))
    assert kept == len(anns) - 5


def test_image_size_different_from_the_annotation_is_an_error(tiny_coco, tmp_path):
    data = _raw(tiny_coco)
    img = next(i for i in data['images'] if i['file_name'] == 'img_000.jpg')
    img['height'] += 4
    path = tmp_path / 'wrong_size.json'
    path.write_text(json.dumps(data))
    ds = CocoDataset(str(path), TRAIN_PIPELINE, classes=tiny_coco['classes'],
                     img_prefix=tiny_coco['img_prefix'])
    idx = [i['filename'] for i in ds.img_infos].index('img_000.jpg')
    with pytest.raises(ValueError, match=r"img_000.jpg' is 96x128 .* annotation says 100x128"):
        ds.prepare_train_img(idx)
