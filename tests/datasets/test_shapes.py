"""The synthetic shapes generator (mmdet_solo/datasets/shapes.py, tools/make_shapes.py)."""
import contextlib
import io
import json
import os
import os.path as osp

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
from pycocotools.coco import COCO

from mmdet_solo.datasets import CocoDataset
from mmdet_solo.datasets.shapes import (SHAPES_CLASSES, ShapesSettings, generate_shapes_image,
                                        make_shapes_dataset, rasterize_polygon, rasterize_shape,
                                        shape_polygons, shapes_dataset_status)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _images(n, seed=0, settings=None):
    return [generate_shapes_image(np.random.default_rng([seed, 0, i]), settings) for i in range(n)]


@pytest.fixture(scope='module')
def shapes_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes'))
    make_shapes_dataset(root, num_train=6, num_val=3, seed=3)
    return root


def _read_tree(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            with open(osp.join(dirpath, f), 'rb') as fh:
                out[osp.relpath(osp.join(dirpath, f), root)] = fh.read()
    return out


# ------------------------------------------------------------------------ determinism
def test_deterministic_by_seed(tmp_path, shapes_root):
    again = str(tmp_path / 'again')
    make_shapes_dataset(again, num_train=6, num_val=3, seed=3)
    a, b = _read_tree(shapes_root), _read_tree(again)
    assert sorted(a) == sorted(b)
    assert all(a[k] == b[k] for k in a), 'same seed must give byte-identical files'
    other = str(tmp_path / 'other')
    make_shapes_dataset(other, num_train=6, num_val=3, seed=4)
    c = _read_tree(other)
    assert a['annotations/instances_train.json'] != c['annotations/instances_train.json']


def test_image_does_not_depend_on_count():
    img_a, inst_a = generate_shapes_image(np.random.default_rng([0, 0, 5]))
    img_b, inst_b = generate_shapes_image(np.random.default_rng([0, 0, 5]))
    assert np.array_equal(img_a, img_b) and len(inst_a) == len(inst_b)
    for x, y in zip(inst_a, inst_b):
        assert np.array_equal(x.mask, y.mask) and x.label == y.label


def test_train_and_val_differ(shapes_root):
    a = cv2.imread(osp.join(shapes_root, 'train', '000000.jpg'))
    b = cv2.imread(osp.join(shapes_root, 'val', '000000.jpg'))
    assert a.shape != b.shape or not np.array_equal(a, b)


# --------------------------------------------------------------------- masks/polygons
@pytest.mark.parametrize('kind', SHAPES_CLASSES)
def test_shape_mask_is_its_polygon(kind):
    polys = shape_polygons(kind, 60.3, 50.7, 30.0, angle=0.4, aspect=1.1, inner=0.5)
    mask = rasterize_shape(polys, 100, 120)
    # pycocotools' own rasterisation of the polygon (what a COCO polygon would give)
    outer = mask_utils.decode(mask_utils.frPyObjects([polys[0].reshape(-1).tolist()], 100, 120))
    expected = outer[:, :, 0].astype(bool)
    if kind == 'ring':
        assert len(polys) == 2
        hole = rasterize_polygon(polys[1], 100, 120)
        assert hole.sum() > 0 and not (mask & hole).any()
        expected &= ~hole
    else:
        assert len(polys) == 1
    assert np.array_equal(mask, expected)
    # and the polygon area agrees with the pixel count
    area = {'circle': np.pi * 900 if kind == 'circle' else None}.get(kind)
    if area:
        assert abs(mask.sum() - area) / area < 0.05


def test_annotation_masks_match_polygons_when_unoccluded():
    checked = 0
    for img, instances in _images(6):
        h, w = img.shape[:2]
        for k, inst in enumerate(instances):
            assert np.array_equal(inst.full_mask, rasterize_shape(inst.polygons, h, w))
            if k == len(instances) - 1:  # painted last: nothing hides it
                assert np.array_equal(inst.mask, inst.full_mask)
                checked += 1
    assert checked == 6


def test_occlusion_respected():
    s = ShapesSettings()
    overlaps = 0
    for img, instances in _images(10):
        h, w = img.shape[:2]
        union_full = np.zeros((h, w), bool)
        union_vis = np.zeros((h, w), bool)
        for k, inst in enumerate(instances):
            later = np.zeros((h, w), bool)
            for j in instances[k + 1:]:
                later |= j.full_mask
            # visible = the shape minus everything painted over it
            assert np.array_equal(inst.mask, inst.full_mask & ~later)
            overlaps += int((inst.full_mask & later).any())
            assert not (union_vis & inst.mask).any(), 'visible masks must be disjoint'
            union_vis |= inst.mask
            union_full |= inst.full_mask
            assert inst.mask.sum() >= max(s.min_area, s.min_visible * inst.full_mask.sum()) - 1e-6
        assert np.array_equal(union_full, union_vis)
    assert overlaps > 0, 'some shapes should overlap'


def test_pixels_show_the_visible_shape(shapes_root):
    """The written image has each instance's colour where its visible mask is."""
    coco = _coco(osp.join(shapes_root, 'annotations', 'instances_train.json'))
    img_info = coco.imgs[1]
    img = cv2.imread(osp.join(shapes_root, 'train', img_info['file_name'])).astype(np.float32)
    _, instances = generate_shapes_image(np.random.default_rng([3, 0, 0]))
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert len(anns) == len(instances)
    for ann, inst in zip(anns, instances):
        m = coco.annToMask(ann).astype(bool)
        assert np.array_equal(m, inst.mask)
        core = cv2.erode(m.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        if core.sum() < 20:
            continue
        mean = img[core].mean(0)
        assert np.abs(mean - np.array(inst.color)).max() < 45, (mean, inst.color)


def test_sizes_borders_and_classes():
    settings = ShapesSettings()
    imgs = _images(30, settings=settings)
    scales, labels, border = [], set(), 0
    for img, instances in imgs:
        h, w = img.shape[:2]
        assert settings.img_size[0] <= h <= settings.img_size[1]
        assert settings.img_size[0] <= w <= settings.img_size[1]
        # placement may give up on a shape, never draws more than asked
        assert 1 <= len(instances) <= settings.num_instances[1]
        for inst in instances:
            ys, xs = np.nonzero(inst.full_mask)
            scales.append(np.sqrt((np.ptp(xs) + 1) * (np.ptp(ys) + 1)) / min(h, w))
            labels.add(inst.label)
            border += int(ys.min() == 0 or xs.min() == 0 or ys.max() == h - 1 or xs.max() == w - 1)
    assert labels == set(range(len(SHAPES_CLASSES)))
    assert border > 0, 'some shapes should touch the border'
    # a wide range of sizes: small and large objects
    assert min(scales) < 0.15 and max(scales) > 0.45


# ------------------------------------------------------------------------------ COCO
def _coco(path):
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(path)


@pytest.mark.parametrize('split,n', [('train', 6), ('val', 3)])
def test_coco_json(shapes_root, split, n):
    path = osp.join(shapes_root, 'annotations', f'instances_{split}.json')
    coco = _coco(path)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    assert len(coco.imgs) == n
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(SHAPES_CLASSES)
    assert coco.anns
    for ann in coco.anns.values():
        img = coco.imgs[ann['image_id']]
        assert ann['iscrowd'] == 0
        assert isinstance(ann['segmentation'], dict) and isinstance(ann['segmentation']['counts'], str)
        assert ann['segmentation']['size'] == [img['height'], img['width']]
        m = coco.annToMask(ann)
        assert m.shape == (img['height'], img['width'])
        assert ann['area'] == m.sum() > 0
        ys, xs = np.nonzero(m)
        assert ann['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert osp.isfile(osp.join(shapes_root, split, img['file_name']))
    # the result-loading path of COCOeval accepts the annotations as results
    res = [dict(a, score=1.0) for a in coco.anns.values()]
    with contextlib.redirect_stdout(io.StringIO()):
        assert len(coco.loadRes(res).anns) == len(res)


def test_loaded_by_coco_dataset(shapes_root):
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]
    ds = CocoDataset(osp.join(shapes_root, 'annotations', 'instances_train.json'), pipeline,
                     classes=SHAPES_CLASSES, img_prefix=osp.join(shapes_root, 'train') + '/')
    assert len(ds) == 6 and tuple(ds.CLASSES) == SHAPES_CLASSES
    sample = ds.prepare_train_img(0) if hasattr(ds, 'prepare_train_img') else ds[0]
    k = len(sample['gt_labels'])
    assert k > 0 and sample['gt_masks'].shape[0] == k
    assert sample['gt_masks'].shape[1:] == sample['img'].shape[:2]
    assert sample['gt_labels'].min() >= 0 and sample['gt_labels'].max() < len(SHAPES_CLASSES)


# ------------------------------------------------------------------------------- CLI
def test_make_shapes_cli_if_missing(tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location('make_shapes',
                                                  osp.join(REPO, 'tools', 'make_shapes.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'd')
    args = ['--out', out, '--num-train', '2', '--num-val', '1', '--seed', '1', '--quiet']
    assert tool.main(args) == 0
    assert shapes_dataset_status(out, 2, 1, seed=1) is None
    assert shapes_dataset_status(out, 3, 1, seed=1) is not None
    assert shapes_dataset_status(out, 2, 1, seed=2) is not None
    stamp = os.path.getmtime(osp.join(out, 'annotations', 'instances_train.json'))
    capsys.readouterr()
    assert tool.main(args + ['--if-missing']) == 0
    assert 'already' in capsys.readouterr().out
    assert os.path.getmtime(osp.join(out, 'annotations', 'instances_train.json')) == stamp
    os.remove(osp.join(out, 'val', '000000.jpg'))
    assert tool.main(args + ['--if-missing']) == 0
    assert 'missing' in capsys.readouterr().out
    assert osp.isfile(osp.join(out, 'val', '000000.jpg'))
    with open(osp.join(out, 'annotations', 'instances_val.json')) as f:
        assert json.load(f)['info']['seed'] == 1
