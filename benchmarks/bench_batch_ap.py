"""Mask AP and speed of the test loop at several batch sizes (padded batches).

    python benchmarks/bench_batch_ap.py CONFIG CHECKPOINT [--batch-sizes 1 8]

Runs the config's ``data.test`` set through the test loop once per batch size
(``data.test.samples_per_gpu``, images grouped by aspect ratio as the test tools do) and,
for batches > 1, once more in plain dataset order (batches mixing image sizes), and evaluates
COCO mask AP. Prints a markdown table for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from mmdet_solo.apis.test import prepare_test, single_gpu_test  # noqa: E402
from mmdet_solo.datasets import build_test_dataloader  # noqa: E402
from mmdet_solo.datasets.builder import EpochDataLoader  # noqa: E402
from mmdet_solo.datasets.collate import collate  # noqa: E402


def run(cfg, model, dataset, batch: int, grouped: bool):
    data = dict(cfg.data, workers_per_gpu=0, test=dict(cfg.data.test, samples_per_gpu=batch))
    loader = build_test_dataloader(dataset, data, 'test') if grouped else \
        EpochDataLoader(dataset, batch_size=batch, collate_fn=collate)  # dataset order
    t = time.perf_counter()
    results = single_gpu_test(model, loader, progress=False)
    seconds = time.perf_counter() - t
    with contextlib.redirect_stdout(io.StringIO()):
        metrics = dataset.evaluate(results, metric='segm', logger='silent')
    return metrics, seconds, results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 8])
    p.add_argument('--device', default='cpu')
    args = p.parse_args()
    cfg, model, dataset, _ = prepare_test(args.config, args.checkpoint, device=args.device)
    rows, ref = [], None
    for batch in args.batch_sizes:
        for grouped in ([True, False] if batch > 1 else [True]):
            metrics, seconds, results = run(cfg, model, dataset, batch, grouped)
            ref = results if ref is None else ref
            same = sum(len(a) == len(b) and np.array_equal(a.labels, b.labels)
                       for a, b in zip(ref, results))
            rows.append((batch, 'grouped by aspect ratio' if grouped and batch > 1 else
                         'dataset order', metrics['segm_mAP'], metrics['segm_mAP_copypaste'],
                         len(dataset) / seconds, same))
    print(f'{len(dataset)} images, torch {torch.__version__}, {os.cpu_count()} CPUs, '
          f'{time.strftime("%Y-%m-%d")}, {args.config}')
    print('| batch | order | mask AP | AP, AP50, AP75, S, M, L | images/s | images with the batch-1 labels |')
    print('|---|---|---|---|---|---|')
    for b, o, ap, cp, ips, same in rows:
        print(f'| {b} | {o} | {ap:.4f} | {cp} | {ips:.2f} | {same}/{len(dataset)} |')


if __name__ == '__main__':
    main()
