"""COCO error analysis: precision-recall breakdown by error type (C75, C50, Loc, Sim, Oth, BG,
FN), as PNG plots per category and overall, for each area range.

    python tools/analysis/coco_error_analysis.py RESULTS.segm.json ANN.json --out DIR
        [--types segm bbox] [--areas 1024 9216 10000000000] [--nproc 4] [--no-per-class]
        [--extraplots]

RESULTS is a COCO result file (``tools/test_ins.py CONFIG CKPT --format-only
--jsonfile-prefix PREFIX`` writes ``PREFIX.segm.json`` and ``PREFIX.bbox.json``); with
``--types segm bbox`` the same file is analysed both ways (a ``.segm.json`` holds masks and
boxes). Writes ``DIR/<type>/<type>-<class|allclass>-<area>.png``
and ``DIR/<type>/error_analysis.json`` (every AP). How to read the plots: tools/README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os.path as osp
import sys
from typing import Optional, Sequence


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description='COCO error analysis (PR breakdown by error type)')
    p.add_argument('result', help='COCO result file (json list of detections)')
    p.add_argument('ann', help='COCO annotation file of the same images')
    p.add_argument('--out', '--out-dir', '--out_dir', dest='out', required=True,
                   help='folder for the plots (one subfolder per type)')
    p.add_argument('--types', nargs='+', choices=('segm', 'bbox'), default=['segm'],
                   help='IoU types to analyse (default segm)')
    p.add_argument('--areas', type=float, nargs=3, metavar=('SMALL', 'MEDIUM', 'LARGE'),
                   default=[32 ** 2, 96 ** 2, 1e10],
                   help='upper bounds of the small, medium and large area ranges in pixels '
                        '(default 1024 9216 1e10: COCO)')
    p.add_argument('--nproc', type=int, default=1, help='processes for the per-category '
                   'evaluations and plots (default 1)')
    p.add_argument('--no-per-class', '--no_per_class', dest='per_class', action='store_false',
                   help='only the overall (allclass) plots')
    p.add_argument('--extraplots', action='store_true',
                   help='also a bar chart of the overall AP of each error type per area')
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from pycocotools.coco import COCO

    from mmdet_solo.evaluation.error_analysis import (AREA_NAMES, ERROR_TYPES, area_ranges,
                                                       error_breakdown, write_breakdown)
    try:
        area_ranges(args.areas)
    except ValueError as e:
        print(f'coco_error_analysis.py: --areas: {e}', file=sys.stderr)
        return 2
    for path, what in ((args.result, 'result'), (args.ann, 'annotation')):
        if not osp.isfile(path):
            print(f'coco_error_analysis.py: {what} file not found: {path!r}', file=sys.stderr)
            return 1
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(args.ann)
            dt = gt.loadRes(args.result)
    except (ValueError, KeyError, IndexError, TypeError, AssertionError) as e:
        print(f'coco_error_analysis.py: cannot load {args.result!r} as results of '
              f'{args.ann!r}: {type(e).__name__}: {e} (expected a non-empty COCO result list '
              'whose image ids are in the annotation file)', file=sys.stderr)
        return 1
    for iou_type in args.types:
        if iou_type == 'segm' and 'segmentation' not in next(iter(dt.anns.values())):
            print(f'coco_error_analysis.py: {args.result!r} has no masks; use --types bbox',
                  file=sys.stderr)
            return 1
        eb = error_breakdown(gt, dt, iou_type, args.areas, nproc=args.nproc)
        out = osp.join(args.out, iou_type)
        files = write_breakdown(eb, out, per_category=args.per_class, bars=args.extraplots,
                                nproc=args.nproc)
        print(f'{iou_type}: {len(files) - 1} plots and error_analysis.json in {out}')
        print('  ' + '  '.join(f'{t}: {eb.ap(t, AREA_NAMES[0]):.3f}' for t in ERROR_TYPES),
              flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
