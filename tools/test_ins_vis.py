"""Draw a checkpoint's detections on every image of the config's ``data.test`` set.

    python tools/test_ins_vis.py CONFIG CKPT --save_dir vis/ [--score_thr 0.3] [--show]

One image per test image is written to ``--save_dir`` (same relative file name), labelled
with the class names stored in the checkpoint (else the test dataset's).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import Optional, Sequence

from mmdet_solo.config import DictAction
from mmdet_solo.utils.cli import add_model_loading_args, model_cfg_options


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description='Visualise SOLO/SOLOv2 results on the test set')
    p.add_argument('config', help='test config file')
    p.add_argument('checkpoint', help='checkpoint file (.pth)')
    p.add_argument('--save_dir', '--save-dir', dest='save_dir', required=True,
                   help='folder for the drawn images (one per test image)')
    p.add_argument('--score_thr', '--score-thr', dest='score_thr', type=float, default=0.3,
                   help='draw instances scoring above this (default 0.3)')
    p.add_argument('--show', action='store_true',
                   help='also show each image in a window (OpenCV, else matplotlib); where '
                        'none can open, says so and only writes --save_dir')
    p.add_argument('--device', help="default: 'cuda:0' if available, else 'cpu'")
    add_model_loading_args(p)
    p.add_argument('--cfg-options', '--cfg_options', dest='cfg_options', action=DictAction,
                   help='override config keys, e.g. data.workers_per_gpu=0')
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0.0 <= args.score_thr <= 1.0:
        parser.error(f'--score_thr must be in [0, 1], got {args.score_thr}')
    if osp.isfile(args.save_dir):
        parser.error(f'--save_dir {args.save_dir!r} is a file, not a folder')

    from mmdet_solo.apis.test import check_draw_dir, check_show, prepare_test, single_gpu_test
    from mmdet_solo.datasets import build_test_dataloader

    show = check_show(args.show, drawn_to=f'--save_dir {args.save_dir}')

    cfg, model, dataset, _ = prepare_test(args.config, args.checkpoint, model_cfg_options(args),
                                          'none', args.device, args.allow_partial,
                                          args.fp16, use_ema=not args.no_ema)
    try:
        check_draw_dir(dataset, args.save_dir, '--save_dir')
    except ValueError as e:
        parser.error(str(e))
    if osp.isdir(args.save_dir) and os.listdir(args.save_dir):
        print(f'warning: --save_dir {args.save_dir} is not empty; drawn images replace files of '
              'the same name', file=sys.stderr)
    os.makedirs(args.save_dir, exist_ok=True)
    loader = build_test_dataloader(dataset, cfg.data, 'test')
    print(f'classes: {list(model.CLASSES) if model.CLASSES is not None else None}', flush=True)
    single_gpu_test(model, loader, show=show, show_dir=args.save_dir,
                    score_thr=args.score_thr)
    print(f'{len(dataset)} drawn images written to {args.save_dir}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
