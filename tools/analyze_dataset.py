"""A dataset doctor: what SOLO is taught from a config's dataset, and what it never learns.

    python tools/analyze_dataset.py CONFIG [--split train|val|test] [--out report.json]
                                   [--plot report.png] [--workers 4] [--num N]

Reads ``data.<split>`` (annotations; always the *training* pipeline, so sizes are those after
the training resize) and prints: images, instances per class (and classes without any),
images without instances, crowd regions, annotations dropped and why; ``sqrt(w*h)`` of the
instances against the head's ``scale_ranges`` (instances per level, in two levels, in none:
never learnt; fitting inside one grid cell); positive cells per instance and per image, and
cells claimed by two instances (the later wins the label), all from the head's own target
assignment; ``num_classes`` vs ``classes``; and a config snippet when many instances fall
outside every range. ``--out`` writes the report as JSON and, beside it, a PNG histogram.

Images are streamed (``--workers`` data-loader processes run the pipeline and the
assignment; only per-instance counters are kept), so COCO-size sets work: the cost is one
training-pipeline pass per image. The image files are not read unless ``--read-images``
(a blank image of the annotated size takes the same geometric transforms).
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
import time
from typing import Any, Optional, Sequence

from mmdet_solo.config import DictAction


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Check a dataset against a SOLO config's head: "
                                            'sizes, levels, grid cells, classes')
    p.add_argument('config', help='config file')
    p.add_argument('--split', choices=['train', 'val', 'test'], default='train',
                   help='which data.<split> annotations (default train); always seen through '
                        'the training pipeline')
    p.add_argument('--out', help='write the report as JSON here (and a PNG histogram beside '
                                 'it, unless --plot says where)')
    p.add_argument('--plot', help='write the PNG histogram here')
    p.add_argument('--workers', type=int, default=None,
                   help='data-loader worker processes (default: data.workers_per_gpu, else 2)')
    p.add_argument('--num', type=int, default=0, help='analyse only the first N images')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the random pipeline draws (per image; default 0)')
    p.add_argument('--read-images', '--read_images', dest='read_images', action='store_true',
                   help='read every image file (slower; also finds corrupt files)')
    p.add_argument('--cfg-options', '--cfg_options', dest='cfg_options', action=DictAction,
                   help='override config keys, e.g. model.bbox_head.scale_ranges="((1, 64), '
                        '(32, 128), (64, 256), (128, 512), (256, 2048))"')
    return p


def _identity(x: Any) -> Any:
    return x


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.num < 0 or (args.workers is not None and args.workers < 0):
        parser.error('--num and --workers must be >= 0')
    if args.out is not None and not args.out.endswith('.json'):
        parser.error(f'--out must end with .json, got {args.out!r}')
    plot = args.plot or (osp.splitext(args.out)[0] + '.png' if args.out else None)
    if plot is not None and not plot.endswith('.png'):
        parser.error(f'--plot must end with .png, got {plot!r}')
    if osp.abspath(args.config) in {osp.abspath(p) for p in (args.out, plot) if p}:
        parser.error('--out/--plot would overwrite the config file')

    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from mmdet_solo.apis.config_check import load_config
    from mmdet_solo.datasets.analysis import (DatasetStats, RecordStream, analysis_dataset,
                                              build_grid_head, dataset_info, format_report,
                                              plot_report, worker_init)
    from mmdet_solo.utils.io import atomic_write
    from mmdet_solo.utils.misc import check_writable

    for path, option in ((args.out, '--out'), (plot, '--plot')):
        if path:
            check_writable(path, option)
    torch.set_num_threads(1)
    cfg = load_config(args.config, args.cfg_options)
    head = build_grid_head(cfg)
    datasets = analysis_dataset(cfg, args.split, read_images=args.read_images)
    workers = args.workers if args.workers is not None else \
        int((cfg.get('data') or {}).get('workers_per_gpu', 2))
    total = sum(len(ds) for ds in datasets)
    todo = min(total, args.num) if args.num else total
    stats = DatasetStats(head, datasets[0].CLASSES)
    start = time.perf_counter()
    with tqdm(total=todo, desc='analyse', unit='img', dynamic_ncols=True) as bar:
        left = todo
        for ds in datasets:
            if left <= 0:
                break
            stream = RecordStream(ds, head, args.seed)
            indices = range(min(len(ds), left))
            loader = DataLoader(torch.utils.data.Subset(stream, indices), batch_size=None,
                                num_workers=workers, worker_init_fn=worker_init,
                                collate_fn=_identity)
            for record in loader:
                stats.add(record)
                bar.update(1)
            left -= len(indices)
    seconds = time.perf_counter() - start
    report = stats.report(dataset_info(datasets, cfg))
    print(format_report(report), flush=True)
    print(f'({todo} images in {seconds:.1f} s with {workers} workers)', flush=True)
    if args.out:
        doc = dict(config=args.config, split=args.split, seed=args.seed,
                   read_images=args.read_images, images_in_split=total, **report)
        atomic_write(args.out, json.dumps(doc, indent=1) + '\n')
        print(f'report written to {args.out}', flush=True)
    if plot:
        plot_report(report, plot)
        print(f'histogram written to {plot}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
