"""tools/browse_dataset.py, tools/analyze_dataset.py and mmdet_solo.datasets.analysis.

A hand-made COCO set (black 128x96 PNGs, rectangle masks as RLE, input = image size) whose
grid assignment is worked out by hand below, with a SOLOv2 head of
``scale_ranges ((10, 20), (20, 40), (44, 60), (60, 80), (80, 100))``, ``num_grids
[16, 12, 8, 6, 4]``, ``sigma 0.2``. Boxes are mmdet v1 ``[x, y, x + w - 1, y + h - 1]``, so a
w x h rectangle has ``sqrt(w*h) = sqrt((w - 1) * (h - 1))``; cells: level 0 is 8 x 6 px,
level 1 10.67 x 8 px.

image 0: a 5x5 px at x 2-6            -> sqrt(wh) 4: below every range, never assigned
         b 21x21 at x 81-101, y 59-79 -> 20: levels 0 and 1, one cell each
                                         (L0 row 11 col 11 = 187, L1 row 8 col 8 = 104)
         c 31x31 at x 22-52, y 21-51  -> 30: level 1 only, cell row 4 col 3 = 51
         e the same mask as c, later   -> the same cell: shared, c loses it (never labelled)
image 1: f 43x43                      -> 42: in the gap between 40 and 44
         g 120x90                     -> sqrt(119 * 89) = 102.9: above every range
         + one crowd region and one annotation with a 0-wide box (dropped)
image 2: no annotations               -> filtered out (filter_empty_gt)
"""
from __future__ import annotations

import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest

from coco_fixtures import write_tiny_coco
from mmdet_solo.apis.config_check import load_config
from mmdet_solo.datasets.analysis import (DatasetStats, RecordStream, analysis_dataset,
                                          assign_sample, build_grid_head, dataset_info,
                                          prepare_sample)
from mmdet_solo.utils.visualization import instance_color

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE = osp.join(ROOT, 'configs', 'solov2', 'solov2_light_448_r18_fpn_8gpu_3x.py')
CLASSES = ('a', 'b', 'c', 'd')
H, W = 96, 128

CONFIG = '''_base_ = {base!r}
model = dict(pretrained=None, bbox_head=dict(
    num_classes={num_classes}, in_channels=32, seg_feat_channels=32, stacked_convs=1,
    ins_out_channels=16, num_grids=[16, 12, 8, 6, 4], sigma=0.2,
    scale_ranges=((10, 20), (20, 40), (44, 60), (60, 80), (80, 100))))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', img_scale={scale!r}, keep_ratio=True),
    dict(type='RandomFlip', flip_ratio={flip}),
    dict(type='Normalize', mean=[1.0, 2.0, 3.0], std=[2.0, 2.0, 2.0], to_rgb=True),
    dict(type='Pad', size_divisor=32),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks'])]
data = dict(imgs_per_gpu=2, workers_per_gpu=0,
            train=dict(type='CocoDataset', ann_file={ann!r}, img_prefix={prefix!r},
                       classes={classes!r}, pipeline=train_pipeline),
            val=dict(type='CocoDataset', ann_file={ann!r}, img_prefix={prefix!r},
                     classes={classes!r}, pipeline=train_pipeline))
'''


def _rect(x: int, y: int, w: int, h: int) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[y:y + h, x:x + w] = 1
    return m


def _ann(ann_id, img_id, mask, cat, iscrowd=0, bbox=None):
    rle = mask_utils.encode(np.asfortranarray(mask))
    rle['counts'] = rle['counts'].decode('ascii')
    return dict(id=ann_id, image_id=img_id, category_id=cat, iscrowd=iscrowd, segmentation=rle,
                bbox=bbox or [float(v) for v in mask_utils.toBbox(rle)],
                area=float(mask_utils.area(rle)))


@pytest.fixture(scope='module')
def hand_set(tmp_path_factory):
    root = tmp_path_factory.mktemp('hand_set')
    os.makedirs(root / 'img')
    images, anns = [], []
    for i in range(3):
        cv2.imwrite(str(root / 'img' / f'{i}.png'), np.zeros((H, W, 3), np.uint8))
        images.append(dict(id=i + 1, file_name=f'{i}.png', height=H, width=W))
    cats = [dict(id=10 + k, name=n) for k, n in enumerate(CLASSES)]
    c = _rect(22, 21, 31, 31)
    for mask, cat in ((_rect(2, 2, 5, 5), 10), (_rect(81, 59, 21, 21), 11), (c, 10), (c, 12)):
        anns.append(_ann(len(anns) + 1, 1, mask, cat))
    anns.append(_ann(len(anns) + 1, 2, _rect(10, 10, 43, 43), 11))
    anns.append(_ann(len(anns) + 1, 2, _rect(4, 3, 120, 90), 12))
    anns.append(_ann(len(anns) + 1, 2, _rect(60, 5, 30, 20), 10, iscrowd=1))
    anns.append(_ann(len(anns) + 1, 2, _rect(60, 40, 1, 20), 10, bbox=[60.0, 40.0, 0.0, 20.0]))
    ann_file = root / 'ann.json'
    ann_file.write_text(json.dumps(dict(images=images, annotations=anns, categories=cats)))
    return dict(ann=str(ann_file), prefix=str(root / 'img'), root=root)


def _config(path, hand, num_classes=4, scale=(128, 96), flip=0.0, ann=None, prefix=None,
            classes=CLASSES):
    path.write_text(CONFIG.format(base=BASE, num_classes=num_classes, scale=scale, flip=flip,
                                  ann=ann or hand['ann'], prefix=prefix or hand['prefix'],
                                  classes=classes))
    return str(path)


def _tool(name):
    spec = importlib.util.spec_from_file_location(f'tool_{name}',
                                                  osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_analyze_counts_match_hand(hand_set, tmp_path, capsys):
    cfg = _config(tmp_path / 'cfg.py', hand_set)
    out = tmp_path / 'rep' / 'report.json'
    assert _tool('analyze_dataset').main([cfg, '--out', str(out), '--workers', '0']) == 0
    printed = capsys.readouterr().out
    rep = json.loads(out.read_text())
    assert (tmp_path / 'rep' / 'report.png').stat().st_size > 1000
    assert rep['images']['analysed'] == 2
    assert rep['images']['filtered_out']['without usable annotations'] == 1
    ins = rep['instances']
    assert ins['total'] == 6 and ins['crowd_regions'] == 1
    assert ins['per_class'] == {'a': 2, 'b': 2, 'c': 2, 'd': 0}
    assert ins['classes_without_instances'] == ['d']
    assert ins['dropped_annotations']['bbox width or height < 1']['count'] == 1
    assert rep['classes']['match'] and rep['classes']['num_classes'] == 4
    a = rep['assignment']
    assert a['unassigned'] == 3 and a['unassigned_outside_ranges'] == 3
    assert (a['unassigned_below_lowest'], a['unassigned_in_gaps'],
            a['unassigned_above_highest']) == (1, 1, 1)
    assert a['levels_per_instance'] == {'0': 3, '1': 2, '2': 1, '3+': 0}
    assert a['never_labelled'] == 1  # c: its only cell goes to e
    lv = rep['levels']
    assert [x['instances'] for x in lv] == [1, 3, 0, 0, 0]
    assert [x['positive_cells'] for x in lv] == [1, 2, 0, 0, 0]
    assert [x['instance_cell_pairs'] for x in lv] == [1, 3, 0, 0, 0]
    assert [x['shared_cells'] for x in lv] == [0, 1, 0, 0, 0]
    assert [x['lost_claims'] for x in lv] == [0, 1, 0, 0, 0]
    pc = rep['positive_cells']
    assert pc['per_instance_counts']['0'] == 3 and pc['per_instance_counts']['1'] == 2
    assert pc['per_instance_counts']['2'] == 1
    assert pc['per_image']['p100'] == 3 and pc['shared_cells'] == 1
    assert pc['instances_losing_cells'] == 1
    assert rep['scale']['after_resize']['p0'] == 4.0
    assert rep['scale']['below_min_useful'] == 1
    # half the instances are outside: ranges widened to 4 and 103, the gap closed
    assert rep['suggestion']['scale_ranges'] == [[4, 20], [20, 40], [40, 60], [60, 80],
                                                 [80, 103]]
    assert 'scale_ranges=((4, 20), (20, 40), (40, 60), (60, 80), (80, 103))' in printed
    assert any('outside every scale range' in f for f in rep['findings'])
    assert 'never learnt' in printed


def test_assignment_is_the_heads(hand_set, tmp_path):
    """The cells are those of get_targets: the hand-computed cells of image 0."""
    cfg = load_config(_config(tmp_path / 'cfg.py', hand_set))
    head = build_grid_head(cfg)
    ds = analysis_dataset(cfg, 'train', read_images=True)[0]
    levels = assign_sample(head, prepare_sample(ds, 0))
    assert levels[0].inst_inds.tolist() == [1] and levels[0].cells.tolist() == [187]
    assert levels[1].inst_inds.tolist() == [1, 2, 3]
    assert levels[1].cells.tolist() == [104, 51, 51]
    assert all(len(lvl.cells) == 0 for lvl in levels[2:])


def test_num_classes_mismatch_is_reported(hand_set, tmp_path):
    cfg = load_config(_config(tmp_path / 'cfg.py', hand_set, num_classes=5))
    head = build_grid_head(cfg)
    ds = analysis_dataset(cfg, 'val', read_images=False)
    stats = DatasetStats(head, ds[0].CLASSES)
    stream = RecordStream(ds[0], head)
    for i in range(len(stream)):
        stats.add(stream[i])
    rep = stats.report(dataset_info(ds, cfg))
    assert not rep['classes']['match']
    assert rep['findings'][0].startswith('bbox_head.num_classes=5 but the dataset has 4')


def test_blank_images_give_the_same_records(tmp_path):
    """Without reading the images (blank stand-ins), every count is the same, with random
    flips and multi-scale resizing drawn from the same per-image seeds."""
    tiny = write_tiny_coco(str(tmp_path / 'tiny'), num_images=5, classes=('x', 'y', 'z'))
    cfg_path = _config(tmp_path / 'cfg.py', None, num_classes=3, scale=[(160, 120), (96, 72)],
                       flip=0.5, ann=tiny['ann_file'], prefix=tiny['img_prefix'],
                       classes=('x', 'y', 'z'))
    cfg = load_config(cfg_path)
    head = build_grid_head(cfg)
    records = []
    for read in (True, False):
        ds = analysis_dataset(cfg, 'train', read_images=read)[0]
        stream = RecordStream(ds, head, seed=3)
        records.append([stream[i] for i in range(len(stream))])
    assert len(records[0]) == 4
    for r_read, r_blank in zip(*records):
        assert r_read.keys() == r_blank.keys()
        for key in r_read:
            np.testing.assert_array_equal(np.asarray(r_read[key]), np.asarray(r_blank[key]),
                                          err_msg=key)
    assert sum(len(r['labels']) for r in records[0]) == tiny['num_instances']


def test_browse_draws_the_assignment(hand_set, tmp_path, capsys):
    cfg = _config(tmp_path / 'cfg.py', hand_set)
    out = tmp_path / 'browse'
    assert _tool('browse_dataset').main([cfg, '--assignments', '--output-dir', str(out),
                                         '--num', '1', '--max-size', '256']) == 0
    img = cv2.imread(str(out / '0.png'))
    panel_w = 256  # 128x96 input -> 256x192 panels, 6 of them with 4-px separators
    assert img.shape[1] == 6 * panel_w + 5 * 4 and img.shape[0] > 192
    factor = 2.0

    def cell_pixel(level, row, col, num_grid):  # off the centre: shared cells are crossed
        panel = 1 + level
        x = int((col + 0.5) * W / num_grid * factor) + panel * (panel_w + 4)
        y = int((row + 0.3) * H / num_grid * factor)
        return img[y, x].astype(int)

    # black image: a cell's colour is 0.6 x the colour of the instance keeping its label
    for level, row, col, s, inst in ((0, 11, 11, 16, 1), (1, 8, 8, 12, 1), (1, 4, 3, 12, 3)):
        expected = 0.6 * np.array(instance_color(inst))
        assert np.abs(cell_pixel(level, row, col, s) - expected).max() <= 2, (level, inst)
    assert cell_pixel(1, 0, 0, 12).max() <= 2  # background cell: stays black
    # without --assignments: the ground truth panel only
    assert _tool('browse_dataset').main([cfg, '--output-dir', str(tmp_path / 'gt'), '--num',
                                         '0', '--max-size', '128']) == 0
    assert sorted(os.listdir(tmp_path / 'gt')) == ['0.png', '1.png']
    assert cv2.imread(str(tmp_path / 'gt' / '0.png')).shape[1] == 128


def test_browse_refuses_nothing_to_do_and_input_folder(hand_set, tmp_path):
    cfg = _config(tmp_path / 'cfg.py', hand_set)
    tool = _tool('browse_dataset')
    with pytest.raises(SystemExit):
        tool.main([cfg])
    # the images are PNGs: drawing into their folder would overwrite them
    with pytest.raises(SystemExit):
        tool.main([cfg, '--output-dir', hand_set['prefix']])


def test_analyze_with_a_worker_and_split(hand_set, tmp_path, capsys):
    """One worker process, the val split, and the image without annotations kept."""
    cfg = _config(tmp_path / 'cfg.py', hand_set)
    assert _tool('analyze_dataset').main([cfg, '--split', 'val', '--workers', '1', '--cfg-options',
                                          'data.val.filter_empty_gt=False']) == 0
    printed = capsys.readouterr().out
    assert 'images analysed: 3   without instances: 1' in printed
    assert 'instances: 6   crowd regions (ignored): 1' in printed
    assert 'in none: 3 (50.0 %: 3 outside the ranges, 0 empty masks)' in printed


def test_fits_in_one_cell(hand_set, tmp_path, capsys):
    """Level 0 with S=4 has 32 x 24 px cells: b (a 20 x 20 box, finest level 0) fits in one."""
    cfg = _config(tmp_path / 'cfg.py', hand_set)
    out = tmp_path / 'r.json'
    assert _tool('analyze_dataset').main([cfg, '--out', str(out), '--plot', str(tmp_path / 'h.png'),
                                          '--cfg-options',
                                          'model.bbox_head.num_grids=[4,12,8,6,4]']) == 0
    rep = json.loads(out.read_text())
    assert rep['assignment']['fits_in_one_cell'] == 1
    assert rep['head']['num_grids'] == [4, 12, 8, 6, 4]
    assert (tmp_path / 'h.png').is_file() and not (tmp_path / 'r.png').exists()


def test_browse_show_without_a_window(hand_set, tmp_path, monkeypatch, capsys):
    """--show where no window can open: says so and still writes --output-dir."""
    monkeypatch.delenv('DISPLAY', raising=False)
    monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    monkeypatch.setattr('sys.platform', 'linux')
    cfg = _config(tmp_path / 'cfg.py', hand_set)
    assert _tool('browse_dataset').main([cfg, '--show', '--output-dir', str(tmp_path / 'o'),
                                         '--num', '1', '--max-size', '64']) == 0
    assert 'no window can open here' in capsys.readouterr().err
    assert os.listdir(tmp_path / 'o') == ['0.png']
    with pytest.raises(SystemExit):  # --show alone, and no window: nothing would happen
        _tool('browse_dataset').main([cfg, '--show'])
