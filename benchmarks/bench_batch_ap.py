"""Mask AP and speed of the test loop at several batch sizes (padded batches of mixed sizes).

    python benchmarks/bench_batch_ap.py CONFIG CHECKPOINT [--batch-sizes 1 8] [--sort-by-shape]

Runs the config's ``data.test`` set through the test loop (``single_gpu_test``) once per batch
size (``data.test.samples_per_gpu``) and evaluates COCO mask AP. ``--sort-by-shape`` also runs
each batch size > 1 with the images ordered by padded input size, so that batches mix sizes as
little as possible. Prints a markdown table for BENCHMARKS.md.
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


class _Reordered(torch.utils.data.Dataset):
    """``dataset`` seen in the order ``order`` (results are put back in dataset order)."""

    def __init__(self, dataset, order):
        self.dataset, self.order = dataset, list(order)

    def __len__(self):
        return len(self.order)

    def __getitem__(self, i):
        return self.dataset[self.order[i]]


def _padded_shape_order(dataset, cfg) -> list:
    """Image indices sorted by the padded input size the test pipeline gives them."""
    shapes = []
    for i in range(len(dataset)):
        meta = dataset[i]['img_metas']
        meta = meta[0] if isinstance(meta, list) else meta
        meta = meta.data if hasattr(meta, 'data') else meta
        shapes.append(tuple(meta['pad_shape'][:2]))
    return sorted(range(len(dataset)), key=lambda i: shapes[i])


def run(cfg, model, dataset, batch: int, order=None) -> tuple:
    data = dict(cfg.data)
    data['test'] = dict(cfg.data.test, samples_per_gpu=batch)
    data['workers_per_gpu'] = 0
    view = dataset if order is None else _Reordered(dataset, order)
    loader = build_test_dataloader(view, data, 'test')
    t = time.perf_counter()
    results = single_gpu_test(model, loader, progress=False)
    seconds = time.perf_counter() - t
    if order is not None:
        back = [None] * len(results)
        for pos, idx in enumerate(order):
            back[idx] = results[pos]
        results = back
    with contextlib.redirect_stdout(io.StringIO()):
        metrics = dataset.evaluate(results, metric='segm', logger='silent')
    return metrics, seconds, results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 8])
    p.add_argument('--sort-by-shape', action='store_true')
    p.add_argument('--device', default='cpu')
    p.add_argument('--cfg-options', nargs='*', default=[])
    args = p.parse_args()
    opts = dict(kv.split('=', 1) for kv in args.cfg_options)
    cfg, model, dataset, _ = prepare_test(args.config, args.checkpoint, opts or None,
                                          device=args.device)
    rows, ref = [], None
    order = _padded_shape_order(dataset, cfg) if args.sort_by_shape else None
    for batch in args.batch_sizes:
        for sorted_run in ([False, True] if order is not None and batch > 1 else [False]):
            metrics, seconds, results = run(cfg, model, dataset, batch, order if sorted_run else None)
            if ref is None:
                ref = results
            same = sum(len(a) == len(b) and np.array_equal(a.labels, b.labels)
                       for a, b in zip(ref, results))
            rows.append((batch, 'by padded size' if sorted_run else 'dataset order',
                         metrics['segm_mAP'], metrics['segm_mAP_copypaste'],
                         len(dataset) / seconds, same))
    print(f'{len(dataset)} images, torch {torch.__version__}, {os.cpu_count()} CPUs, '
          f'{time.strftime("%Y-%m-%d")}, {args.config}')
    print('| batch | order | mask AP | AP, AP50, AP75, S, M, L | images/s | images with batch-1 labels |')
    print('|---|---|---|---|---|---|')
    for b, o, ap, cp, ips, same in rows:
        print(f'| {b} | {o} | {ap:.4f} | {cp} | {ips:.2f} | {same}/{len(dataset)} |')


if __name__ == '__main__':
    main()
