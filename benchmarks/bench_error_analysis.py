"""Cost of tools/analysis/coco_error_analysis.py: the breakdown and the plots.

    python benchmarks/bench_error_analysis.py [--images 200] [--classes 20] [--nproc 1 2]

A COCO-like set made here: images 480 x 640, 7 ground-truth rectangles each (RLE masks),
``--classes`` categories in 4 supercategories; 10 detections per image: each ground truth
found with a jittered box (a tenth of them with another class), plus 3 background boxes.
Times ``error_breakdown`` (segm) for each ``--nproc`` and the plots (overall + per class);
prints a markdown block for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os.path as osp
import sys
import tempfile
import time

import numpy as np
import pycocotools.mask as mask_utils

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
H, W = 480, 640


def _rle(x, y, w, h):
    m = np.zeros((H, W), np.uint8)
    m[int(y):int(y + h), int(x):int(x + w)] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    rle['counts'] = rle['counts'].decode()
    return rle, [float(v) for v in mask_utils.toBbox(rle)], float(mask_utils.area(rle))


def make_set(n_images: int, n_classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    cats = [dict(id=c + 1, name=f'c{c}', supercategory=f's{c % 4}') for c in range(n_classes)]
    images = [dict(id=i + 1, file_name=f'{i}.jpg', height=H, width=W) for i in range(n_images)]
    anns, dets = [], []
    for img in images:
        for _ in range(7):
            w, h = rng.uniform(16, 200, 2)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            cat = int(rng.integers(n_classes)) + 1
            segm, box, area = _rle(x, y, w, h)
            anns.append(dict(id=len(anns) + 1, image_id=img['id'], category_id=cat, iscrowd=0,
                             segmentation=segm, bbox=box, area=area))
            jx, jy = rng.normal(0, 0.08, 2) * (w, h)
            dcat = cat if rng.random() > 0.1 else int(rng.integers(n_classes)) + 1
            segm, box, _ = _rle(max(x + jx, 0), max(y + jy, 0), w, h)
            dets.append(dict(image_id=img['id'], category_id=dcat, segmentation=segm, bbox=box,
                             score=float(rng.uniform(0.3, 1))))
        for _ in range(3):
            w, h = rng.uniform(16, 120, 2)
            segm, box, _ = _rle(rng.uniform(0, W - w), rng.uniform(0, H - h), w, h)
            dets.append(dict(image_id=img['id'], category_id=int(rng.integers(n_classes)) + 1,
                             segmentation=segm, bbox=box, score=float(rng.uniform(0, 0.6))))
    return dict(images=images, categories=cats, annotations=anns), dets


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--images', type=int, default=200)
    p.add_argument('--classes', type=int, default=20)
    p.add_argument('--nproc', type=int, nargs='+', default=[1, 2])
    args = p.parse_args()
    from pycocotools.coco import COCO

    from mmdet_solo.evaluation.error_analysis import error_breakdown, write_breakdown
    gt_dict, dets = make_set(args.images, args.classes)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for nproc in args.nproc:
            with contextlib.redirect_stdout(io.StringIO()):
                gt = COCO()
                gt.dataset = gt_dict
                gt.createIndex()
                dt = gt.loadRes(dets)
            t0 = time.perf_counter()
            eb = error_breakdown(gt, dt, 'segm', nproc=nproc)
            rows.append((nproc, time.perf_counter() - t0))
        t_plot = []
        for nproc in args.nproc:
            t0 = time.perf_counter()
            files = write_breakdown(eb, osp.join(tmp, f'segm{nproc}'), nproc=nproc)
            t_plot.append((nproc, time.perf_counter() - t0))
    print(f'\n{args.images} images, {len(gt_dict["annotations"])} ground truths, {len(dets)} '
          f'detections, {args.classes} classes; C75 {eb.ap("C75"):.3f} Oth {eb.ap("Oth"):.3f}\n')
    print('| step | processes | seconds |\n|---|---|---|')
    for nproc, sec in rows:
        print(f'| breakdown (segm) | {nproc} | {sec:.2f} |')
    for nproc, sec in t_plot:
        print(f'| {len(files) - 1} plots + json | {nproc} | {sec:.2f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
