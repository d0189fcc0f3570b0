"""tools/analysis/coco_error_analysis.py and mmdet_solo.evaluation.error_analysis on a small
hand-made COCO set whose breakdown is worked out by hand (see ``_scene``)."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import os.path as osp

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from golden_utils import ROOT

from mmdet_solo.evaluation.error_analysis import error_breakdown

H = W = 64


def _rle(y0, y1, x0, x1):
    m = np.zeros((H, W), np.uint8)
    m[y0:y1, x0:x1] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    return dict(size=rle['size'], counts=rle['counts'].decode()), \
        [float(v) for v in mask_utils.toBbox(rle)], float(mask_utils.area(rle))


def _scene(tmp_path, perfect=False):
    """Categories a, b (supercategory X) and c (Y). Image 1: a1, b1, c1; image 2: a2 (40x40).

    Detections: b on b1 (0.8) and on a1 (0.9: b confused with the similar a); c on c1 (0.7)
    and on a1 (0.95: c confused with the other-supercategory a); a on a2 with IoU 0.7 (0.6).
    By hand (101 recall points):
      a: C75 0, C50 = Loc = Sim = Oth = BG = 51/101 (recall 0.5 at precision 1), FN 1;
      b: C75 = C50 = Loc = 0.5, Sim = Oth = BG = FN = 1;
      c: C75 = C50 = Loc = Sim = 0.5, Oth = BG = FN = 1.
    ``perfect``: every ground truth detected exactly with its own class.
    """
    gts = {('a', 1): (2, 21, 2, 21), ('b', 1): (2, 21, 30, 51), ('c', 1): (30, 51, 2, 21),
           ('a', 2): (0, 40, 0, 40)}
    cats = [dict(id=1, name='a', supercategory='X'), dict(id=2, name='b', supercategory='X'),
            dict(id=5, name='c', supercategory='Y')]
    cid = {c['name']: c['id'] for c in cats}
    anns = []
    for (name, img), box in gts.items():
        segm, bbox, area = _rle(*box)
        anns.append(dict(id=len(anns) + 1, image_id=img, category_id=cid[name], iscrowd=0,
                         segmentation=segm, bbox=bbox, area=area))
    gt = dict(images=[dict(id=i, file_name=f'{i}.jpg', height=H, width=W) for i in (1, 2)],
              categories=cats, annotations=anns)
    if perfect:
        dets = [(name, img, box, 0.9) for (name, img), box in gts.items()]
    else:
        dets = [('b', 1, gts['b', 1], 0.8), ('b', 1, gts['a', 1], 0.9),
                ('c', 1, gts['c', 1], 0.7), ('c', 1, gts['a', 1], 0.95),
                ('a', 2, (0, 28, 0, 40), 0.6)]
    res = []
    for name, img, box, score in dets:
        segm, bbox, _ = _rle(*box)
        res.append(dict(image_id=img, category_id=cid[name], segmentation=segm, bbox=bbox,
                        score=score))
    ann_file, res_file = str(tmp_path / 'gt.json'), str(tmp_path / 'res.segm.json')
    with open(ann_file, 'w') as f:
        json.dump(gt, f)
    with open(res_file, 'w') as f:
        json.dump(res, f)
    return ann_file, res_file


def _load(ann_file, res_file):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        return gt, gt.loadRes(res_file)


def test_hand_checked_breakdown(tmp_path):
    gt, dt = _load(*_scene(tmp_path))
    eb = error_breakdown(gt, dt, 'segm')
    half = 51 / 101
    expected = {'a': dict(C75=0, C50=half, Loc=half, Sim=half, Oth=half, BG=half, FN=1),
                'b': dict(C75=0.5, C50=0.5, Loc=0.5, Sim=1, Oth=1, BG=1, FN=1),
                'c': dict(C75=0.5, C50=0.5, Loc=0.5, Sim=0.5, Oth=1, BG=1, FN=1)}
    for k, name in enumerate(eb.cat_names):
        got = {t: eb.ap(t, 'allarea', k) for t in expected[name]}
        assert got == pytest.approx(expected[name], abs=1e-9), name
    # overall C75/C50 are COCOeval's AP75/AP50 (mean over the categories)
    ev = COCOeval(gt, dt, 'segm')
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert eb.ap('C75') == pytest.approx(ev.stats[2]) == pytest.approx(1 / 3)
    assert eb.ap('C50') == pytest.approx(ev.stats[1])
    # every curve lies under the next one (each stage forgives more)
    assert (np.diff(eb.precision[:, :, :, 0], axis=0) >= -1e-12).all()
    # large: no ground truth at all -> NaN, not 0
    assert np.isnan(eb.ap('C75', 'large'))


def test_perfect_results(tmp_path):
    eb = error_breakdown(*_load(*_scene(tmp_path, perfect=True)), 'bbox', nproc=2)
    for t in ('C75', 'C50', 'Loc', 'Sim', 'Oth', 'BG', 'FN'):
        assert eb.ap(t) == pytest.approx(1.0), t
        for k in range(3):
            assert eb.ap(t, 'allarea', k) == pytest.approx(1.0), (t, k)


def _tool():
    spec = importlib.util.spec_from_file_location(
        'coco_error_analysis', osp.join(ROOT, 'tools', 'analysis', 'coco_error_analysis.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tool_writes_plots_and_numbers(tmp_path, capsys):
    ann_file, res_file = _scene(tmp_path)
    out = tmp_path / 'out'
    assert _tool().main([res_file, ann_file, '--out', str(out), '--types', 'segm', 'bbox',
                         '--extraplots', '--nproc', '2']) == 0
    for t in ('segm', 'bbox'):
        files = set(os.listdir(out / t))
        # overall + per class, for the area ranges holding ground truth (small, medium)
        for name in ('allclass', 'a', 'b', 'c'):
            assert f'{t}-{name}-allarea.png' in files and f'{t}-{name}-small.png' in files
        assert f'{t}-a-medium.png' in files and f'{t}-b-medium.png' not in files
        assert f'{t}-allclass-large.png' not in files and f'{t}-allclass-ap_bar_plot.png' in files
        with open(out / t / 'error_analysis.json') as f:
            summary = json.load(f)
        assert summary['ap']['allarea']['Oth']['c'] == pytest.approx(1.0)
        assert summary['ap']['allarea']['Sim']['c'] == pytest.approx(0.5)
        assert summary['ap']['large']['C75']['all'] is None
        with open(out / t / f'{t}-allclass-allarea.png', 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert 'C75: 0.333' in capsys.readouterr().out


def test_tool_errors(tmp_path, capsys):
    ann_file, res_file = _scene(tmp_path)
    tool = _tool()
    assert tool.main([res_file, ann_file, '--out', str(tmp_path / 'o'), '--areas', '10', '5',
                      '100']) == 2
    assert 'increasing' in capsys.readouterr().err
    assert tool.main([str(tmp_path / 'none.json'), ann_file, '--out', str(tmp_path / 'o')]) == 1
    assert 'result file not found' in capsys.readouterr().err
    empty = tmp_path / 'empty.json'
    empty.write_text('[]')
    assert tool.main([str(empty), ann_file, '--out', str(tmp_path / 'o')]) == 1
    assert 'cannot load' in capsys.readouterr().err
