"""Export a SOLO/SOLOv2 checkpoint to ONNX, post-processing included (docs/DEPLOYMENT.md).

Examples::

    python tools/deployment/pytorch2onnx.py CONFIG CKPT --output-file model.onnx \\
        --dynamic-export --verify
    python tools/deployment/pytorch2onnx.py CONFIG CKPT --output-file model.onnx \\
        --shape 800 1216 --batch-size 1           # static 1x3x800x1216

The graph takes the normalised, padded (multiples of 32) batch and returns ``scores`` (B, N),
``labels`` (B, N), ``masks`` (B, N, H/4, W/4) soft masks and ``counts`` (B,);
``mmdet_solo.deploy.init_onnx_detector`` runs it with the config's preprocessing and pastes the
masks at the image size as the PyTorch path does.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time
from typing import Optional, Sequence

from mmdet_solo.config import DictAction


def build_parser() -> argparse.ArgumentParser:
    from mmdet_solo.deploy.graph import DEFAULT_MAX_CANDIDATES
    p = argparse.ArgumentParser(description='Export a SOLO/SOLOv2 checkpoint to ONNX')
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help="checkpoint file (.pth); 'none' exports the config's "
                                      'randomly initialised weights (seeded, for testing)')
    p.add_argument('--output-file', '--output_file', dest='output_file', required=True,
                   help='the ONNX file to write')
    p.add_argument('--shape', nargs=2, type=int, default=[800, 1216], metavar=('H', 'W'),
                   help='padded input size of the example (multiples of 32; default 800 1216); '
                        'the input size of a static export')
    p.add_argument('--dynamic-export', '--dynamic_export', dest='dynamic_export',
                   action='store_true', help='dynamic batch and height/width (multiples of 32)')
    p.add_argument('--batch-size', '--batch_size', dest='batch_size', type=int, default=1,
                   help='batch of a static export (default 1)')
    p.add_argument('--opset', type=int, default=None,
                   help='ONNX opset (default 18; 19 for models with deformable convolutions)')
    p.add_argument('--max-candidates', '--max_candidates', dest='max_candidates', type=int,
                   default=DEFAULT_MAX_CANDIDATES,
                   help='(cell, class) candidates kept per image before mask building '
                        f'(default {DEFAULT_MAX_CANDIDATES}; docs/DEPLOYMENT.md, "The '
                        'candidate cap")')
    p.add_argument('--verify', action='store_true',
                   help='run ONNX Runtime on the example (and, dynamic, on another size and '
                        'batch) and compare with PyTorch')
    p.add_argument('--seed', type=int, default=0, help='seed of the example input and of a '
                                                       "'none' checkpoint's weights")
    p.add_argument('--cfg-options', '--cfg_options', dest='cfg_options', action=DictAction,
                   help='override config keys, e.g. test_cfg.score_thr=0.2')
    return p


def verify(model, onnx_file: str, example, dynamic: bool) -> bool:
    """PyTorch vs ONNX Runtime on the example (and another size/batch when dynamic)."""
    import torch

    from mmdet_solo.deploy.compare import compare_all
    from mmdet_solo.deploy.runtime import ONNXRuntimeDetector
    runner = ONNXRuntimeDetector(onnx_file, model.cfg)
    inputs = [example]
    if dynamic:
        b, _, h, w = example.shape
        other = (b + 1, 3, h + 64, max(32, w - 32))
        inputs.append(torch.randn(*other, generator=torch.Generator().manual_seed(1)))
    ok = True
    for img in inputs:
        metas = [dict(img_shape=(*img.shape[-2:], 3), ori_shape=(*img.shape[-2:], 3))] * len(img)
        with torch.no_grad():
            ref = model.simple_test(img, metas)
        got = runner(img, metas, return_loss=False)
        same, comps = compare_all(ref, got)
        for i, c in enumerate(comps):
            print(f'verify {tuple(img.shape)} image {i}: {c} -> {"ok" if c.ok else "DIFFERENT"}')
        ok &= same
    return ok


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from mmdet_solo.deploy.export import DEFAULT_OPSET, check_export_args
    try:
        check_export_args(args.shape, args.batch_size, args.opset or DEFAULT_OPSET)
    except ValueError as e:
        parser.error(str(e))
    if args.max_candidates < 1:
        parser.error(f'--max-candidates {args.max_candidates}: expected >= 1')
    ckpt = None if args.checkpoint == 'none' else args.checkpoint
    for path, what in ((args.config, 'config'), (ckpt, 'checkpoint')):
        if path is not None and not osp.isfile(path):
            parser.error(f'{what} file not found: {path!r}')
    if osp.abspath(args.output_file) in (osp.abspath(args.config), osp.abspath(args.checkpoint)):
        parser.error(f'--output-file {args.output_file!r} would overwrite the config/checkpoint')

    import torch

    from mmdet_solo.apis import init_detector
    from mmdet_solo.deploy.export import UnsupportedExport, export_onnx
    torch.manual_seed(args.seed)
    # contiguous weights: channels_last only changes the speed of the PyTorch path
    options = dict(args.cfg_options or {}, channels_last=False)
    model = init_detector(args.config, ckpt, device='cpu', cfg_options=options)
    if osp.exists(args.output_file):
        print(f'warning: {args.output_file} exists and will be overwritten', file=sys.stderr)
    start = time.time()
    try:
        example = export_onnx(model, args.output_file, shape=args.shape,
                              batch_size=args.batch_size, dynamic=args.dynamic_export,
                              opset=args.opset, max_candidates=args.max_candidates,
                              seed=args.seed)
    except (UnsupportedExport, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f'exported {args.output_file} in {time.time() - start:.0f} s', flush=True)
    if args.verify and not verify(model, args.output_file, example, args.dynamic_export):
        print('verify: ONNX Runtime and PyTorch differ (see above)', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
