"""Cost of tools/analyze_dataset.py per image, and the memory it keeps per instance.

    python benchmarks/bench_analyze_dataset.py [--images 100] [--out-dir /tmp/bench_analyze]

Writes a COCO-like shapes set (images 480-640 px a side, 6-9 instances each) once, then runs
the analysis of ``configs/solov2/solov2_r50_fpn_8gpu_3x.py``'s training pipeline (multi-scale
1333 x 640..800) on it in one process, one torch thread: with and without reading the images.
Then it feeds ``DatasetStats`` COCO train2017's number of images (118k) of these records and
measures what it holds (tracemalloc). Prints a markdown block for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time
import tracemalloc

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
CONFIG = osp.join(ROOT, 'configs', 'solov2', 'solov2_r50_fpn_8gpu_3x.py')
COCO_IMAGES = 118287


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--images', type=int, default=100)
    p.add_argument('--out-dir', default='/tmp/bench_analyze')
    args = p.parse_args()
    torch.set_num_threads(1)

    from mmdet_solo.apis.config_check import load_config
    from mmdet_solo.datasets.analysis import (DatasetStats, RecordStream, analysis_dataset,
                                              build_grid_head)
    from mmdet_solo.datasets.shapes import ShapesSettings, make_shapes_dataset

    ann = osp.join(args.out_dir, 'annotations', 'instances_train.json')
    if not osp.isfile(ann):
        make_shapes_dataset(args.out_dir, num_train=args.images, num_val=0,
                            settings=ShapesSettings(img_size=(480, 640), num_instances=(6, 9)))
    classes = ('circle', 'triangle', 'square', 'star', 'ring')
    cfg = load_config(CONFIG, {'data.train.ann_file': ann, 'data.train.classes': classes,
                               'data.train.img_prefix': osp.join(args.out_dir, 'train/'),
                               'model.bbox_head.num_classes': len(classes)})
    head = build_grid_head(cfg)
    rows, records = [], []
    for read in (False, True):
        ds = analysis_dataset(cfg, 'train', read_images=read)[0]
        stream = RecordStream(ds, head)
        start = time.perf_counter()
        records = [stream[i] for i in range(len(stream))]
        seconds = time.perf_counter() - start
        instances = sum(len(r['labels']) for r in records)
        rows.append((read, len(records), instances, seconds))
    stats = DatasetStats(head, classes)
    tracemalloc.start()
    for i in range(COCO_IMAGES):
        stats.add(records[i % len(records)])
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    total_instances = len(stats.instances()['labels'])
    start = time.perf_counter()
    stats.report()
    report_s = time.perf_counter() - start

    print('| images read | images | instances / image | ms / image | ms / instance |')
    print('|---|---|---|---|---|')
    for read, n, k, s in rows:
        print(f"| {'yes' if read else 'no (blank)'} | {n} | {k / n:.1f} | {1e3 * s / n:.1f} | "
              f'{1e3 * s / k:.2f} |')
    print(f'\nDatasetStats after {COCO_IMAGES} images / {total_instances} instances: '
          f'{held / 1e6:.1f} MB held ({held / total_instances:.1f} bytes per instance); '
          f'report() {report_s:.2f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
