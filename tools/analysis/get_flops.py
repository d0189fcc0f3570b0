"""FLOPs and parameters of a detector, per module group.

    python tools/analysis/get_flops.py CONFIG [--shape H W] [--cfg-options KEY=VALUE ...]

The input is one random H x W image (default 800 1344: 1333x800 padded to 32) through the
whole network of inference: backbone, neck, SOLOv2's mask-feature head (which the original
release's tool leaves out) and the SOLO head; not post-processing, whose dynamic mask
convolution and Matrix NMS depend on how many candidates pass the score threshold.

FLOPs are counted by ``torch.utils.flop_counter`` as **2 per multiply-accumulate** (convolutions
and matrix products; normalisation, activations and resizing are not counted). MMDetection's
``get_flops`` prints MACs under the name "Flops": compare those with the GMACs column.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from mmdet_solo.config import DictAction

DEFAULT_SHAPE = (800, 1344)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('config', help='model config file (.py, or an AdelaiDet .yaml)')
    p.add_argument('--shape', type=int, nargs='+', metavar='N',
                   help='input H W (one number: a square); default 800 1344')
    p.add_argument('--json', help='also write the figures to this JSON file')
    p.add_argument('--cfg-options', '--cfg_options', dest='cfg_options', nargs='+',
                   action=DictAction, metavar='KEY=VALUE', help='override config keys')
    return p


def format_table(report: dict, shape: Sequence[int]) -> str:
    lines = [f'Input 1x3x{shape[0]}x{shape[1]}; FLOPs = 2 x MACs (torch.utils.flop_counter)',
             '| module | GFLOPs | GMACs | params (M) |', '|---|---|---|---|']
    for name, row in report.items():
        lines.append(f"| {name} | {row['flops'] / 1e9:.2f} | {row['flops'] / 2e9:.2f} | "
                     f"{row['params'] / 1e6:.2f} |")
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from mmdet_solo.utils.profiling import detector_flops, input_shape
    try:
        shape = input_shape(args.shape, DEFAULT_SHAPE)
    except ValueError as e:
        parser.error(str(e))
    import torch

    from mmdet_solo.apis import init_detector
    model = init_detector(args.config, None, device='cpu', cfg_options=args.cfg_options,
                          allow_partial=True)
    img = torch.randn(1, 3, *shape)
    report = detector_flops(model, img)
    print(format_table(report, shape))
    if args.json:
        from mmdet_solo.utils.io import atomic_write
        atomic_write(args.json, json.dumps(dict(config=args.config, shape=list(shape),
                                                flops_per_mac=2, groups=report), indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
