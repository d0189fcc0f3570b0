"""Mask AP and time of test-time augmentation (``MultiScaleFlipAug`` scales and flip).

    python benchmarks/bench_tta.py CONFIG CHECKPOINT \\
        [--variants 192x160 192x160+flip 160x133,192x160,224x187 ...] [--batch 8]

A variant is comma-separated ``WxH`` scales, ``+flip`` for the flipped views. Each runs the
config's ``data.test`` set through the test loop (``single_gpu_test``) with the test
pipeline's ``MultiScaleFlipAug`` set to those scales, and evaluates COCO mask AP. Prints a
markdown table for BENCHMARKS.md (time: the whole test loop, per image).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from mmdet_solo.apis.test import prepare_test, single_gpu_test  # noqa: E402
from mmdet_solo.datasets import build_dataset, build_test_dataloader  # noqa: E402


def parse_variant(text: str):
    flip = text.endswith('+flip')
    scales = [tuple(int(v) for v in s.split('x')) for s in text.replace('+flip', '').split(',')]
    return scales, flip


def with_tta(pipeline, scales, flip):
    pipeline = copy.deepcopy(list(pipeline))
    for step in pipeline:
        if step['type'] == 'MultiScaleFlipAug':
            step['img_scale'] = scales if len(scales) > 1 else scales[0]
            step['flip'] = flip
            return pipeline
    raise ValueError('the test pipeline has no MultiScaleFlipAug')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--variants', nargs='+', default=['192x160', '192x160+flip'])
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--device', default='cpu')
    args = p.parse_args()
    cfg, model, _, _ = prepare_test(args.config, args.checkpoint, device=args.device)
    rows = []
    for text in args.variants:
        scales, flip = parse_variant(text)
        test = dict(cfg.data.test, pipeline=with_tta(cfg.data.test.pipeline, scales, flip),
                    test_mode=True, samples_per_gpu=args.batch)
        dataset = build_dataset(test)
        loader = build_test_dataloader(dataset, dict(cfg.data, workers_per_gpu=0, test=test))
        t = time.perf_counter()
        results = single_gpu_test(model, loader, progress=False)
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t
        with contextlib.redirect_stdout(io.StringIO()):
            metrics = dataset.evaluate(results, metric='segm', logger='silent')
        rows.append((text, len(scales) * (2 if flip else 1), metrics['segm_mAP'],
                     metrics['segm_mAP_copypaste'], 1000 * seconds / len(dataset)))
        print(f'{text}: mAP {metrics["segm_mAP"]:.4f} ({metrics["segm_mAP_copypaste"]}), '
              f'{rows[-1][-1]:.1f} ms/img', flush=True)
    base_ap, base_ms = rows[0][2], rows[0][4]
    print('\n| views | forwards | mask AP | AP, AP50, AP75, APs, APm, APl | ms/img | time |')
    print('|---|---|---|---|---|---|')
    for text, n, ap, cp, ms in rows:
        print(f'| {text} | {n} | {ap:.4f} ({ap - base_ap:+.4f}) | {cp} | {ms:.1f} | '
              f'{ms / base_ms:.2f}x |')


if __name__ == '__main__':
    main()
