"""Convert a SOLO-family checkpoint between formats (default: to ours, the original's names).

    python tools/convert_checkpoint.py SRC DST [--from auto|solo|mmdet|adelaidet|paddle]
        [--to solo|mmdet|adelaidet|paddle] [--config CONFIG] [--allow-partial]

Every key no rule maps is reported; with ``--config`` the result is also checked against the
model the config builds (missing keys, surplus keys, shape mismatches). Any problem fails
the conversion (exit status 1, nothing written) unless ``--allow-partial`` is given.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

import torch

from mmdet_solo.utils.checkpoint import CheckpointError
from mmdet_solo.utils.convert import (FORMATS, ConversionError, compare_state_dicts, from_solo,
                                      normalise_meta, to_solo)
from mmdet_solo.utils.convert.io import read_raw
from mmdet_solo.utils.convert.report import ConversionReport
from mmdet_solo.utils.io import atomic_write
from mmdet_solo.utils.pdparams import save_pdparams


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('src', help='checkpoint to convert (.pth or Paddle .pdparams)')
    p.add_argument('dst', help='output file')
    p.add_argument('--from', dest='src_format', default='auto', choices=('auto',) + FORMATS)
    p.add_argument('--to', dest='dst_format', default='solo', choices=FORMATS)
    p.add_argument('--config', help='check the result against the model this config builds')
    p.add_argument('--allow-partial', action='store_true',
                   help='write the result even if keys are unmatched, missing or mismatched')
    return p.parse_args(argv)


def _model_state_dict(config: str):
    from mmdet_solo.config import Config
    from mmdet_solo.models import build_detector
    cfg = Config.fromfile(config)
    cfg.model.pretrained = None
    return build_detector(cfg.model, test_cfg=cfg.get('test_cfg')).state_dict()


def convert(args: argparse.Namespace) -> ConversionReport:
    """Do the conversion; raises on any error, writes ``args.dst`` only on success."""
    if os.path.exists(args.dst) and os.path.exists(args.src) and \
            os.path.samefile(args.src, args.dst):
        raise ConversionError(f"the output '{args.dst}' is the input checkpoint '{args.src}' "
                              '(same file); converting in place would replace it (and drop its '
                              'optimizer state): give another output path')
    raw, meta = read_raw(args.src)
    state_dict, unmatched, fmt = to_solo(raw, args.src_format)
    if fmt == 'unknown':
        raise ConversionError(
            f"'{args.src}' has none of the key names of a SOLO-family checkpoint (solo, mmdet, "
            f"adelaidet, paddle); first keys: {list(raw)[:5]}. Is it the right file? "
            'Pass --from FORMAT to force one.')
    report = ConversionReport(fmt, unmatched=unmatched)
    if args.config:
        report = compare_state_dicts(state_dict, _model_state_dict(args.config), fmt, unmatched)
    if not report.ok and not args.allow_partial:
        raise ConversionError(f"'{args.src}' ({fmt} format) does not convert cleanly; nothing "
                              f'was written (use --allow-partial to write it anyway):\n'
                              + report.format())
    meta = normalise_meta(meta)
    meta['converted_from'] = fmt
    if args.dst_format == 'solo':
        atomic_write(args.dst, lambda f: torch.save({'meta': meta, 'state_dict': state_dict}, f))
        return report
    out = from_solo(state_dict, args.dst_format)
    if out.unmatched and not args.allow_partial:
        raise ConversionError(f'{len(out.unmatched)} keys have no {args.dst_format} name; nothing '
                              'was written:\n' + '\n'.join(f'    {k}' for k in out.unmatched))
    if args.dst_format == 'paddle':
        atomic_write(args.dst, lambda f: save_pdparams(out.state_dict, f.name))  # takes a path
    else:
        ckpt = {'model': out.state_dict} if args.dst_format == 'adelaidet' else \
            {'meta': meta, 'state_dict': out.state_dict}
        atomic_write(args.dst, lambda f: torch.save(ckpt, f))
    return report


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        report = convert(args)
    except (CheckpointError, ConversionError, FileNotFoundError) as e:
        print(f'convert_checkpoint: error: {e}', file=sys.stderr)
        return 1
    if not report.ok:
        print(f'convert_checkpoint: warning (--allow-partial):\n{report.format()}', file=sys.stderr)
    print(f'convert_checkpoint: {args.src} ({report.fmt}) -> {args.dst} ({args.dst_format})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
