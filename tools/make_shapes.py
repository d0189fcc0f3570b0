"""Generate the synthetic "shapes" instance-segmentation dataset (COCO format).

    python tools/make_shapes.py [--out data/shapes] [--num-train 1000] [--num-val 100] [--seed 0]

Writes ``OUT/train/*.jpg``, ``OUT/val/*.jpg`` and ``OUT/annotations/instances_{train,val}.json``
(classes: circle, triangle, square, star, ring). Deterministic by ``--seed``. See
``mmdet_solo/datasets/shapes.py`` for what is drawn.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Optional, Sequence


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description='Generate the synthetic shapes dataset')
    p.add_argument('--out', default='data/shapes', help='output folder (default data/shapes)')
    p.add_argument('--num-train', '--num_train', dest='num_train', type=int, default=1000)
    p.add_argument('--num-val', '--num_val', dest='num_val', type=int, default=100)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--img-size', '--img_size', dest='img_size', type=int, nargs=2,
                   metavar=('MIN', 'MAX'), default=None,
                   help='range of image heights and widths in pixels (default 256 320)')
    p.add_argument('--num-instances', '--num_instances', dest='num_instances', type=int, nargs=2,
                   metavar=('MIN', 'MAX'), default=None, help='instances per image (default 3 8)')
    p.add_argument('--if-missing', '--if_missing', dest='if_missing', action='store_true',
                   help='do nothing when OUT already holds the dataset these options generate')
    p.add_argument('--quiet', action='store_true', help='no progress lines')
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.num_train < 0 or args.num_val < 0:
        print('make_shapes.py: --num-train/--num-val must be >= 0', file=sys.stderr)
        return 2
    from mmdet_solo.datasets.shapes import (ShapesSettings, make_shapes_dataset,
                                            shapes_dataset_status)
    kw = {}
    if args.img_size:
        kw['img_size'] = tuple(args.img_size)
    if args.num_instances:
        kw['num_instances'] = tuple(args.num_instances)
    settings = ShapesSettings(**kw)
    if args.if_missing:
        why = shapes_dataset_status(args.out, args.num_train, args.num_val, args.seed, settings)
        if why is None:
            print(f'shapes dataset already in {args.out} ({args.num_train} train + '
                  f'{args.num_val} val images, seed {args.seed})', flush=True)
            return 0
        print(f'(re)generating: {why}', flush=True)
    t0 = time.time()
    if not args.quiet:
        print(f'generating shapes dataset in {args.out}: {args.num_train} train + '
              f'{args.num_val} val images, seed {args.seed}', flush=True)
    paths = make_shapes_dataset(args.out, args.num_train, args.num_val, args.seed, settings,
                                verbose=not args.quiet)
    for split, path in paths.items():
        with open(path) as f:
            d = json.load(f)
        print(f'{split}: {len(d["images"])} images, {len(d["annotations"])} instances -> {path}',
              flush=True)
    print(f'done in {time.time() - t0:.1f} s', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
