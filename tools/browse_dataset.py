"""Draw training samples as the network gets them, optionally with their grid assignment.

    python tools/browse_dataset.py CONFIG --output-dir browse/ [--assignments] [--num 20]
    python tools/browse_dataset.py CONFIG --show --assignments

Each of the first ``--num`` images of ``data.train`` (``--split``) goes through the training
pipeline (resize, flip, pad; its random draws seeded per image, as tools/analyze_dataset.py
does) and is drawn with its GT masks, boxes and class names. ``--assignments`` adds one panel
per FPN level: the S x S grid with the positive cells in the colour of the instance whose
label they learn, computed by the head's own target assignment (``BaseGridHead.get_targets``),
and a legend (level, S, scale range, instances). One PNG per image, ``<image name>.png``.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import Optional, Sequence

from mmdet_solo.config import DictAction


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description='Draw training samples (and their SOLO grid '
                                            'assignment) as the training pipeline delivers them')
    p.add_argument('config', help='config file')
    p.add_argument('--assignments', action='store_true',
                   help='add one panel per FPN level with the grid cells each instance learns')
    p.add_argument('--output-dir', '--output_dir', dest='output_dir',
                   help='write one PNG per image here')
    p.add_argument('--show', action='store_true',
                   help='show each picture in a window (OpenCV, else matplotlib); where none '
                        'can open, says so and only writes --output-dir')
    p.add_argument('--num', type=int, default=10, help='how many images (default 10; 0: all)')
    p.add_argument('--start', type=int, default=0, help='index of the first image (default 0)')
    p.add_argument('--split', choices=['train', 'val', 'test'], default='train',
                   help="which data.<split> annotations (always the training pipeline)")
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the random pipeline draws (per image; default 0)')
    p.add_argument('--max-size', '--max_size', dest='max_size', type=int, default=480,
                   help='long side of each panel in px (default 480)')
    p.add_argument('--cfg-options', '--cfg_options', dest='cfg_options', action=DictAction,
                   help='override config keys, e.g. data.train.pipeline.2.img_scale="(640, 480)"')
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.num < 0 or args.start < 0 or args.max_size < 32:
        parser.error('--num and --start must be >= 0 and --max-size >= 32')
    if args.output_dir and osp.isfile(args.output_dir):
        parser.error(f'--output-dir {args.output_dir!r} is a file, not a folder')
    if not args.output_dir and not args.show:
        parser.error('nothing to do: give --output-dir DIR and/or --show')

    import cv2
    import torch
    from tqdm import tqdm

    from mmdet_solo.apis.config_check import load_config
    from mmdet_solo.apis.test import check_show
    from mmdet_solo.datasets.analysis import (analysis_dataset, assign_targets, build_grid_head,
                                              prepare_sample, sample_targets)
    from mmdet_solo.utils.assignment_vis import denormalize, draw_training_sample
    from mmdet_solo.utils.display import open_window
    from mmdet_solo.utils.io import atomic_write
    from mmdet_solo.utils.misc import refuse_overwriting_inputs

    try:
        show = check_show(args.show, drawn_to=f'--output-dir {args.output_dir}'
                          if args.output_dir else None)
    except ValueError as e:
        parser.error(str(e))
    torch.set_num_threads(1)
    cfg = load_config(args.config, args.cfg_options)
    head = build_grid_head(cfg) if args.assignments else None
    datasets = analysis_dataset(cfg, args.split, read_images=True)
    items = [(ds, i) for ds in datasets for i in range(len(ds))][args.start:]
    if args.num:
        items = items[:args.num]
    names = [osp.splitext(ds.img_infos[i]['filename'])[0] + '.png' for ds, i in items]
    if args.output_dir:
        try:
            refuse_overwriting_inputs(
                (osp.join(args.output_dir, n) for n in names),
                (osp.join(ds.img_prefix or '', ds.img_infos[i]['filename']) for ds, i in items),
                '--output-dir')
        except ValueError as e:
            parser.error(str(e))
        os.makedirs(args.output_dir, exist_ok=True)
    window = open_window()[0] if show else None
    for (ds, idx), name in zip(tqdm(items, desc='browse', unit='img'), names):
        sample = prepare_sample(ds, idx, args.seed)
        if sample is None:
            print(f'{name}: the pipeline dropped this image', file=sys.stderr)
            continue
        bboxes, labels, masks, input_hw = sample_targets(sample)
        meta = sample['img_metas']
        img = denormalize(sample['img'].numpy() if hasattr(sample['img'], 'numpy')
                          else sample['img'], meta.get('img_norm_cfg'))
        levels = (assign_targets(head, bboxes, labels, masks, input_hw) if head is not None
                  else None)
        flip = ' flipped' if meta.get('flip') else ''
        drawn = draw_training_sample(
            img, masks, bboxes.numpy(), labels.numpy(), ds.CLASSES, input_hw,
            tuple(meta['img_shape'][:2]), levels,
            head.scale_ranges if head is not None else None,
            title=f'{ds.img_infos[idx]["filename"]}{flip}', max_size=args.max_size)
        if args.output_dir:
            ok, png = cv2.imencode('.png', drawn)
            if not ok:
                raise OSError(f'cannot encode the picture of {name}')
            atomic_write(osp.join(args.output_dir, name), png.tobytes())
        if window is not None:
            window.show(drawn, name)
    if args.output_dir:
        print(f'{len(items)} pictures written to {args.output_dir}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
