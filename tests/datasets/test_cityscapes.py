"""Cityscapes: gtFine polygons -> COCO files (tools/convert_datasets/cityscapes.py),
``CityscapesDataset`` and its ``'cityscapes'`` metric, on small synthetic gtFine files."""
from __future__ import annotations

import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest

from golden_utils import ROOT

from mmdet_solo.datasets import CITYSCAPES_CLASSES, CityscapesDataset, build_dataset
from mmdet_solo.datasets.cityscapes import instance_id_image, read_polygons
from mmdet_solo.structures import InstanceResult, masks_to_boxes

H, W = 64, 96


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'cs_convert', osp.join(ROOT, 'tools', 'convert_datasets', 'cityscapes.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rect(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


# frame -> objects in drawing order; PIL fills a rectangle polygon's corners inclusively
FRAMES = {
    'aachen_000000_000019': [
        dict(label='road', polygon=_rect(0, 0, W - 1, H - 1)),
        dict(label='car', polygon=_rect(4, 4, 33, 23)),             # 30 x 20, partly occluded
        dict(label='person', polygon=_rect(24, 10, 39, 39)),        # 16 x 30, on top of the car
        dict(label='cargroup', polygon=_rect(50, 40, 89, 59)),      # crowd
        dict(label='caravan', polygon=_rect(60, 2, 79, 11)),        # ignoreInEval: not a class
        dict(label='license plate', polygon=_rect(5, 5, 8, 7)),     # id -1: not drawn
        dict(label='bicycle', polygon=_rect(70, 20, 89, 35), deleted=1),
        dict(label='rider', polygon=[[45, 15], [60, 15], [52, 30]]),
    ],
    'aachen_000001_000019': [   # only a crowd region: dropped from training
        dict(label='persongroup', polygon=_rect(10, 10, 40, 40)),
    ],
    'bochum_000000_000313': [
        dict(label='bicycle', polygon=_rect(10, 20, 29, 49)),
        dict(label='bicycle', polygon=_rect(50, 20, 69, 49)),
        dict(label='sky', polygon=_rect(0, 0, W - 1, 29)),          # stuff over rows 0..29
    ],
}


def write_gtfine(root, split='val', frames=FRAMES):
    for frame, objects in frames.items():
        city = frame.split('_')[0]
        d = osp.join(root, 'gtFine', split, city)
        os.makedirs(d, exist_ok=True)
        with open(osp.join(d, f'{frame}_gtFine_polygons.json'), 'w') as f:
            json.dump(dict(imgHeight=H, imgWidth=W, objects=objects), f)
        img_dir = osp.join(root, split, city)
        os.makedirs(img_dir, exist_ok=True)
        img = np.full((H, W, 3), 90, np.uint8)
        cv2.imwrite(osp.join(img_dir, f'{frame}_leftImg8bit.png'), img)


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('cityscapes'))
    write_gtfine(root)
    tool = _load_tool()
    assert tool.main([root, '--splits', 'val']) == 0
    ann = osp.join(root, 'annotations', 'instancesonly_filtered_gtFine_val.json')
    with open(ann) as f:
        return root, ann, json.load(f)


def _anns(coco, frame):
    img = next(i for i in coco['images'] if frame in i['file_name'])
    return img, [a for a in coco['annotations'] if a['image_id'] == img['id']]


def test_converter_output(converted):
    root, ann, coco = converted
    assert [c['name'] for c in coco['categories']] == list(CITYSCAPES_CLASSES)
    assert [c['id'] for c in coco['categories']] == [24, 25, 26, 27, 28, 31, 32, 33]
    assert [i['file_name'] for i in coco['images']] == [
        'aachen/aachen_000000_000019_leftImg8bit.png',
        'aachen/aachen_000001_000019_leftImg8bit.png',
        'bochum/bochum_000000_000313_leftImg8bit.png']
    assert all((i['height'], i['width']) == (H, W) for i in coco['images'])
    assert len({a['id'] for a in coco['annotations']}) == len(coco['annotations'])
    assert min(a['id'] for a in coco['annotations']) == 1

    img, anns = _anns(coco, 'aachen_000000_000019')
    by_cat = {(a['category_id'], a['iscrowd']): a for a in anns}
    # car (26), person (24), rider (25), crowd car group; no caravan, no deleted bicycle
    assert sorted(by_cat) == [(24, 0), (25, 0), (26, 0), (26, 1)]
    car, person, crowd = by_cat[(26, 0)], by_cat[(24, 0)], by_cat[(26, 1)]
    # the person (drawn later) occludes the car over x 24..33, y 10..23
    assert car['area'] == 30 * 20 - 10 * 14
    assert car['bbox'] == [4.0, 4.0, 30.0, 20.0]
    assert person['area'] == 16 * 30 and person['bbox'] == [24.0, 10.0, 16.0, 30.0]
    assert crowd['area'] == 40 * 20
    car_mask = mask_utils.decode(car['segmentation']).astype(bool)
    assert car_mask.shape == (H, W) and car_mask.sum() == car['area']
    assert car_mask[6, 6] and not car_mask[15, 30]          # the license plate is not drawn

    _, anns = _anns(coco, 'aachen_000001_000019')
    assert [(a['category_id'], a['iscrowd']) for a in anns] == [(24, 1)]
    _, anns = _anns(coco, 'bochum_000000_000313')
    # two bicycles, their top rows covered by the sky drawn after them
    assert [(a['category_id'], a['area']) for a in anns] == [(33, 20 * 20), (33, 20 * 20)]


def test_instance_image_matches_cityscapesscripts(converted, tmp_path):
    """Our drawing equals cityscapesScripts' json2instanceImg (when it is installed)."""
    pytest.importorskip('cityscapesscripts', reason='cityscapesscripts is not installed '
                        '(pip install -r requirements/optional.txt)')
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
    root = converted[0]
    for frame in FRAMES:
        path = osp.join(root, 'gtFine', 'val', frame.split('_')[0], f'{frame}_gtFine_polygons.json')
        ann = Annotation()
        ann.fromJsonFile(path)
        theirs = np.asarray(createInstanceImage(ann, 'ids'), dtype=np.int32)
        np.testing.assert_array_equal(instance_id_image(read_polygons(path), path), theirs)


def test_converter_keeps_existing_and_names_bad_input(converted, tmp_path, capsys):
    root, ann, _ = converted
    tool = _load_tool()
    before = os.stat(ann).st_mtime_ns
    assert tool.main([root, '--splits', 'val']) == 1
    assert '--force' in capsys.readouterr().err and os.stat(ann).st_mtime_ns == before
    # --force overwrites; 2 processes give the same file
    assert tool.main([root, '--splits', 'val', '--force', '--nproc', '2']) == 0
    with open(ann) as f:
        assert json.load(f) == converted[2]
    bad = str(tmp_path / 'bad')
    write_gtfine(bad, 'train', {'aachen_000002_000019': [dict(label='spaceship',
                                                              polygon=_rect(1, 1, 5, 5))]})
    assert tool.main([bad, '--splits', 'train']) == 1
    err = capsys.readouterr().err
    assert 'spaceship' in err and 'aachen_000002_000019_gtFine_polygons.json' in err
    assert tool.main([str(tmp_path / 'nothing'), '--splits', 'val']) == 1
    assert 'gtFine_polygons.json' in capsys.readouterr().err


def test_dataset_loads_converted_files(converted):
    root, ann, _ = converted
    train = CityscapesDataset(ann, [], img_prefix=osp.join(root, 'val'))
    assert train.CLASSES == CITYSCAPES_CLASSES
    # the image whose only annotation is a crowd region is not a training image
    assert [i['filename'] for i in train.img_infos] == [
        'aachen/aachen_000000_000019_leftImg8bit.png',
        'bochum/bochum_000000_000313_leftImg8bit.png']
    info = train.get_ann_info(0)
    assert sorted(info['labels'].tolist()) == [0, 1, 2]          # person, rider, car
    np.testing.assert_array_equal(info['bboxes_ignore'], [[50, 40, 89, 59]])
    test = build_dataset(dict(type='CityscapesDataset', ann_file=ann, pipeline=[],
                              img_prefix=osp.join(root, 'val'), test_mode=True))
    assert len(test) == 3 and test.default_gt_dir() == osp.join(root, 'gtFine', 'val')


def _perfect_results(dataset, coco, swap=None):
    """The ground-truth instances (not crowd) as results with score 1 (labels swapped by
    ``swap``: {label: other label})."""
    results = []
    for i in range(len(dataset)):
        img_id = dataset.img_ids[i]
        anns = [a for a in coco['annotations'] if a['image_id'] == img_id and not a['iscrowd']]
        masks = np.stack([mask_utils.decode(a['segmentation']).astype(bool) for a in anns]) \
            if anns else np.zeros((0, H, W), bool)
        labels = np.array([dataset.cat2label[a['category_id']] for a in anns], np.int64)
        if swap:
            labels = np.array([swap.get(int(lb), int(lb)) for lb in labels], np.int64)
        results.append(InstanceResult(masks=masks, labels=labels,
                                      scores=np.ones(len(anns), np.float32),
                                      bboxes=masks_to_boxes(masks)))
    return results


def test_coco_metrics_by_default(converted):
    root, ann, coco = converted
    ds = CityscapesDataset(ann, [], img_prefix=osp.join(root, 'val'), test_mode=True)
    out = ds.evaluate(_perfect_results(ds, coco), metric=['segm', 'bbox'], logger='silent')
    assert out['segm_mAP'] == pytest.approx(1.0) and out['bbox_mAP'] == pytest.approx(1.0)
    with pytest.raises(KeyError, match='unknown COCO metric'):
        ds.evaluate(_perfect_results(ds, coco), metric='proposal')


def test_cityscapes_metric(converted, tmp_path):
    if importlib.util.find_spec('cityscapesscripts') is None:
        pytest.skip("cityscapesscripts is not installed, so the optional 'cityscapes' metric "
                    'is not tested (pip install -r requirements/optional.txt)')
    root, ann, coco = converted
    ds = CityscapesDataset(ann, [], img_prefix=osp.join(root, 'val'), test_mode=True)
    cwd = os.listdir('.')
    perfect = ds.evaluate(_perfect_results(ds, coco), metric='cityscapes', logger='silent')
    assert perfect == {'cityscapes_mAP': pytest.approx(1.0), 'cityscapes_AP50': pytest.approx(1.0)}
    assert os.listdir('.') == cwd                       # nothing written to the working directory
    # the rider called a car: the rider class gets AP 0 and the car class a false positive
    out_dir = str(tmp_path / 'cs_out')
    both = ds.evaluate(_perfect_results(ds, coco, swap={1: 2}), metric=['segm', 'cityscapes'],
                       logger='silent', outfile_prefix=out_dir)
    assert both['segm_mAP'] < 1.0 and both['cityscapes_mAP'] < 0.9
    assert osp.isfile(osp.join(out_dir, 'pred', 'aachen_000000_000019_leftImg8bit_pred.txt'))
    with pytest.raises(FileExistsError, match='not empty'):
        ds.evaluate(_perfect_results(ds, coco), metric='cityscapes', outfile_prefix=out_dir)


def test_config_check_accepts_cityscapes_evaluation_keys():
    from mmdet_solo.apis.config_check import load_config
    from mmdet_solo.config import ConfigError
    path = osp.join(ROOT, 'configs', 'solov2', 'solov2_r50_fpn_8gpu_1x_cityscapes.py')
    cfg = load_config(path, {'evaluation': dict(metric=['segm', 'cityscapes'],
                                                gt_dir='data/cityscapes/gtFine/val')})
    assert cfg.data.val.type == 'CityscapesDataset'
    with pytest.raises(ConfigError, match='gt_dri'):
        load_config(path, {'evaluation': dict(metric='cityscapes', gt_dri='x')})
