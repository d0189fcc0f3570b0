"""Training-pipeline throughput on COCO-sized images (640x480 JPEGs with polygon masks,
resized multi-scale to 1333 x 800..640 as the 3x configs do), per worker, and peak memory.

    python benchmarks/bench_dataloader.py [--images 40] [--workers 0 1 2]
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from coco_fixtures import write_tiny_coco  # noqa: E402
from mmdet_solo.config import Config  # noqa: E402
from mmdet_solo.datasets import build_dataloader, build_dataset  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--images', type=int, default=40)
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--imgs-per-gpu', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = Config.fromfile(os.path.join(ROOT, 'configs/solov2/solov2_r50_fpn_8gpu_3x.py'))
    with tempfile.TemporaryDirectory() as tmp:
        info = write_tiny_coco(tmp, num_images=args.images, size=(480, 640), seed=0)
        train = dict(cfg.data.train, ann_file=info['ann_file'], img_prefix=info['img_prefix'],
                     classes=info['classes'])
        dataset = build_dataset(train)
        n_inst = sum(len(dataset.get_ann_info(i)['labels']) for i in range(len(dataset)))
        print(f'# torch {torch.__version__}, {platform.machine()}, {os.cpu_count()} CPUs; '
              f'{len(dataset)} images 640x480, {n_inst / len(dataset):.1f} instances/image, '
              f'multi-scale 1333 x (800..640), imgs_per_gpu={args.imgs_per_gpu}')
        print('| workers | images/s | images/s per worker | peak RSS main (MB) | peak RSS workers (MB) |')
        print('|---|---|---|---|---|')
        for workers in args.workers:
            loader = build_dataloader(dataset, args.imgs_per_gpu, workers, dist=False, shuffle=True, seed=0)
            loader.set_epoch(0)
            it = iter(loader)
            next(it)  # start-up (worker spawn, first batch) not counted
            t, n = time.perf_counter(), 0
            for batch in it:
                n += batch['img'].shape[0]
            dt = time.perf_counter() - t
            del it
            rss_main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rss_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            per = n / dt / max(workers, 1)
            print(f'| {workers} | {n / dt:.1f} | {per:.1f} | {rss_main:.0f} | {rss_child:.0f} |')


if __name__ == '__main__':
    main()
