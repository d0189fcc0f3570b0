"""Test a SOLO/SOLOv2 checkpoint on the config's ``data.test`` set.

Examples::

    python tools/test_ins.py CONFIG CKPT --out results.pkl --eval segm bbox [--classwise]
    python tools/test_ins.py CONFIG CKPT --format-only --jsonfile_prefix test_dev_results
    python tools/test_ins.py CONFIG CKPT --show-dir vis/
    tools/dist_test.sh CONFIG CKPT 8 --out results.pkl --eval segm
    tools/slurm_test.sh PARTITION JOB CONFIG CKPT 8 --out results.pkl --eval segm

See tools/README.md for the ``--out`` pickle layout and the metrics JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import os.path as osp
import pickle
import sys
from typing import Any, Dict, List, Optional, Sequence

from mmdet_solo.config import DictAction
from mmdet_solo.utils.cli import add_model_loading_args, model_cfg_options
from mmdet_solo.evaluation import ALLOWED_METRICS
from mmdet_solo.evaluation.cityscapes_eval import CITYSCAPES_METRIC
from mmdet_solo.evaluation.backends import DEFAULT_EVAL_BACKEND, EVAL_BACKENDS
from mmdet_solo.utils.io import atomic_write

PICKLE_FORMAT = 'mmdet_solo.instance_results/1'


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description='Test (and evaluate) a SOLO/SOLOv2 checkpoint')
    p.add_argument('config', help='test config file')
    p.add_argument('checkpoint', help='checkpoint file (.pth), or with --backend onnxruntime '
                                      'an exported model (.onnx)')
    p.add_argument('--backend', choices=['pytorch', 'onnxruntime'], default='pytorch',
                   help='onnxruntime: run a model exported by tools/deployment/pytorch2onnx.py '
                        '(CPU, single process; docs/DEPLOYMENT.md)')
    p.add_argument('--out', help='write the results to this pickle (.pkl/.pickle); layout in '
                                 'tools/README.md')
    p.add_argument('--eval', nargs='+', metavar='METRIC',
                   help=f'COCO metrics to evaluate: {" ".join(ALLOWED_METRICS)}; '
                        f'{CITYSCAPES_METRIC}: the official Cityscapes AP (CityscapesDataset, '
                        'pip install cityscapesscripts)')
    p.add_argument('--classwise', action='store_true', help='also print per-class AP')
    p.add_argument('--eval-backend', '--eval_backend', dest='eval_backend',
                   choices=list(EVAL_BACKENDS), default=DEFAULT_EVAL_BACKEND,
                   help='COCO evaluation backend (faster-coco-eval: optional C++ COCOeval, '
                        'pip install faster-coco-eval)')
    p.add_argument('--format-only', '--format_only', dest='format_only', action='store_true',
               help='only write COCO-format result JSONs (RLE masks), e.g. for test-dev')
    p.add_argument('--jsonfile-prefix', '--jsonfile_prefix', dest='jsonfile_prefix',
               help='write PREFIX.segm.json and PREFIX.bbox.json')
    p.add_argument('--show', action='store_true',
                   help='show each drawn result in a window (OpenCV, else matplotlib); where '
                        'none can open, says so and only writes --show-dir')
    p.add_argument('--show-dir', '--show_dir', dest='show_dir',
               help='write one drawn result per test image to this folder')
    p.add_argument('--show-score-thr', '--show_score_thr', '--score_thr', '--score-thr',
               dest='score_thr', type=float, default=0.3,
               help='score threshold for drawing (default 0.3)')
    p.add_argument('--tmpdir', help='folder shared by the ranks to gather results through '
                                    '(default: gathered in memory)')
    p.add_argument('--device', help="device of a single-process run (default: 'cuda:0' if "
                                    "available, else 'cpu')")
    add_model_loading_args(p)
    p.add_argument('--cfg-options', '--cfg_options', '--options', dest='cfg_options',
               action=DictAction, help='override config keys, e.g. data.workers_per_gpu=0')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                   help="'pytorch' under torchrun (tools/dist_test.sh), 'slurm' under srun "
                        '(tools/slurm_test.sh)')
    p.add_argument('--local_rank', '--local-rank', dest='local_rank', type=int, default=0,
               help=argparse.SUPPRESS)
    return p


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fail fast (before loading anything) on inconsistent options."""
    if args.eval is not None:
        allowed = ALLOWED_METRICS + (CITYSCAPES_METRIC,)
        bad = [m for m in args.eval if m not in allowed]
        if bad or not args.eval:
            parser.error(f'--eval: unknown metric(s) {bad}; allowed: {", ".join(allowed)}')
        args.eval = list(dict.fromkeys(args.eval))
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'--out must end with .pkl or .pickle, got {args.out!r}')
    if args.out is not None and osp.abspath(args.out) in (osp.abspath(args.config),
                                                        osp.abspath(args.checkpoint)):
        parser.error(f'--out {args.out!r} would overwrite the config/checkpoint')
    if args.format_only and args.eval:
        parser.error('--format-only and --eval cannot be used together (format-only is for '
                     'sets without ground truth, e.g. test-dev)')
    if args.format_only and not args.jsonfile_prefix:
        parser.error('--format-only needs --jsonfile_prefix PREFIX (writes PREFIX.segm.json '
                     'and PREFIX.bbox.json)')
    if args.jsonfile_prefix and args.jsonfile_prefix.endswith('.json'):
        args.jsonfile_prefix = args.jsonfile_prefix[:-len('.json')]
    if args.classwise and not args.eval:
        parser.error('--classwise needs --eval')
    if args.launcher != 'none' and (args.show or args.show_dir):
        parser.error('--show/--show-dir are single-process options; run tools/test_ins.py '
                     'without --launcher (or use tools/test_ins_vis.py)')
    if args.backend == 'onnxruntime' and (args.launcher != 'none' or args.fp16):
        parser.error('--backend onnxruntime runs in a single process in float32 (no --launcher, '
                     'no --fp16)')
    if not (args.out or args.eval or args.format_only or args.show or args.show_dir):
        parser.error('nothing to do: give at least one of --out, --eval, --format-only, --show, '
                     '--show-dir')
    from mmdet_solo.apis.test import check_show
    try:
        args.show = check_show(args.show, f'--show-dir {args.show_dir}' if args.show_dir else None,
                               more_to_do=bool(args.out or args.eval or args.format_only))
    except ValueError as e:
        parser.error(str(e))
    from mmdet_solo.utils.misc import check_writable
    # (the metrics JSON beside the checkpoint is optional: a read-only folder only warns)
    outputs = [(args.out, '--out'), (args.show_dir, '--show-dir')]
    if args.jsonfile_prefix:
        outputs.append((f'{args.jsonfile_prefix}.segm.json', '--jsonfile_prefix'))
    for path, option in outputs:
        if not path:
            continue
        try:
            check_writable(path, option)
        except OSError as e:
            parser.error(str(e))


def metrics_json_path(out: Optional[str], checkpoint: str) -> str:
    """``results.pkl`` -> ``results.eval.json``; without ``--out``: ``<ckpt stem>.eval.json``
    in the checkpoint's folder."""
    base = out if out else checkpoint
    return osp.splitext(base)[0] + '.eval.json'


def planned_outputs(args: argparse.Namespace) -> List[str]:
    paths = []
    if args.out:
        paths.append(args.out)
    if args.eval:
        paths.append(metrics_json_path(args.out, args.checkpoint))
    if args.jsonfile_prefix and (args.eval or args.format_only):
        paths += [f'{args.jsonfile_prefix}.segm.json', f'{args.jsonfile_prefix}.bbox.json']
    return paths


def warn_existing(args: argparse.Namespace) -> None:
    """Say which existing files this run will replace (nothing is overwritten silently)."""
    for path in planned_outputs(args):
        if osp.exists(path):
            print(f'warning: {path} exists and will be overwritten', file=sys.stderr)
    if args.show_dir and osp.isdir(args.show_dir) and os.listdir(args.show_dir):
        print(f'warning: --show-dir {args.show_dir} is not empty; drawn images replace files '
              'of the same name', file=sys.stderr)


def results_payload(results: Sequence[Any], dataset: Any, classes: Optional[Sequence[str]],
                    args: argparse.Namespace) -> Dict[str, Any]:
    """The ``--out`` pickle: plain Python / numpy data only (layout in tools/README.md)."""
    from mmdet_solo.apis.test import result_to_dict
    entries = []
    for i, res in enumerate(results):
        info = dataset.img_infos[i] if hasattr(dataset, 'img_infos') else {}
        entry = dict(image_id=info.get('id'), filename=info.get('filename'))
        entry.update(result_to_dict(res))
        entries.append(entry)
    return dict(format=PICKLE_FORMAT, classes=list(classes) if classes is not None else None,
                config=osp.abspath(args.config), checkpoint=osp.abspath(args.checkpoint),
                results=entries)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(metrics: Dict[str, Any], path: str, args: argparse.Namespace,
                  num_images: int, classes: Optional[Sequence[str]]) -> None:
    from mmdet_solo.evaluation import dump_json_atomic
    payload = dict(config=osp.abspath(args.config), checkpoint=osp.abspath(args.checkpoint),
                   eval=args.eval, num_images=num_images,
                   classes=list(classes) if classes is not None else None,
                   metrics={k: _json_safe(v) for k, v in metrics.items()})
    dump_json_atomic(payload, path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)

    from mmdet_solo.apis.test import (check_draw_dir, multi_gpu_test, prepare_test,
                                      single_gpu_test)
    from mmdet_solo.datasets import build_test_dataloader
    from mmdet_solo.engine.dist import barrier, get_dist_info

    cfg, model, dataset, distributed = prepare_test(args.config, args.checkpoint,
                                                    model_cfg_options(args), args.launcher,
                                                    args.device, args.allow_partial, args.fp16,
                                                    use_ema=not args.no_ema,
                                                    backend=args.backend)
    for flag, method in (('--eval', 'evaluate'), ('--format-only', 'format_results')):
        if getattr(args, flag.strip('-').replace('-', '_')) and not hasattr(dataset, method):
            parser.error(f'{flag}: the test dataset ({type(dataset).__name__}) has no '
                         f'{method}(); use a CocoDataset')
    if args.show_dir:
        try:
            check_draw_dir(dataset, args.show_dir, '--show-dir')
        except ValueError as e:
            parser.error(str(e))
    rank, _ = get_dist_info()
    if rank == 0:
        warn_existing(args)
    loader = build_test_dataloader(dataset, cfg.data, 'test', dist=distributed)
    if distributed:
        results = multi_gpu_test(model, loader, tmpdir=args.tmpdir)
    else:
        results = single_gpu_test(model, loader, show=args.show, show_dir=args.show_dir,
                                  score_thr=args.score_thr)
    if rank == 0:
        finish(args, results, dataset, model.CLASSES)
    barrier()
    if distributed:
        import torch.distributed as dist
        dist.destroy_process_group()
    return 0


def finish(args: argparse.Namespace, results: Sequence[Any], dataset: Any,
           classes: Optional[Sequence[str]]) -> None:
    """Rank 0: write the pickle, the COCO JSONs and the metrics."""
    n = len(results)
    print(f'\n{n} images, {sum(len(r) for r in results)} instances', flush=True)
    if args.out:
        payload = results_payload(results, dataset, classes, args)
        atomic_write(args.out, lambda f: pickle.dump(payload, f, protocol=4))
        print(f'results written to {args.out}', flush=True)
    if args.format_only:
        files, _ = dataset.format_results(results, args.jsonfile_prefix)
        for kind, path in files.items():
            print(f'{kind} results (COCO format) written to {path}', flush=True)
    if args.show_dir:
        print(f'drawn results written to {args.show_dir}', flush=True)
    if args.eval:
        metrics = dataset.evaluate(results, metric=args.eval, classwise=args.classwise,
                                   jsonfile_prefix=args.jsonfile_prefix,
                                   backend=args.eval_backend)
        path = metrics_json_path(args.out, args.checkpoint)
        summary = {k: v for k, v in metrics.items() if k.endswith('_copypaste')}
        print(json.dumps(summary), flush=True)
        try:
            write_metrics(metrics, path, args, n, classes)
        except OSError as e:
            print(f'warning: cannot write the metrics to {path}: {e}; give --out to write '
                  'them elsewhere', file=sys.stderr)
        else:
            print(f'metrics written to {path}', flush=True)


if __name__ == '__main__':
    sys.exit(main())
