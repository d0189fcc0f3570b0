"""Prepare a trained checkpoint for release.

    python tools/publish_model.py IN OUT

Drops the optimizer state, keeps ``meta`` (CLASSES, config, ...) and the weights (of a run with
``EMAHook``: the averaged weights, the ones validation measured; ``--no-ema``: the raw ones), and writes
``OUT`` with the first 8 hex digits of its SHA-256 appended: ``solov2_r50-1a2b3c4d.pth``.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import sys
from typing import List, Optional

import torch

from mmdet_solo.utils.checkpoint import CheckpointError, load_state_dict_file
from mmdet_solo.utils.io import atomic_write


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def publish(in_file: str, out_file: str, use_ema: bool = True) -> str:
    """Write the slimmed checkpoint; returns the final file name (with the hash)."""
    state_dict, meta = load_state_dict_file(in_file, use_ema=use_ema)
    stem = out_file[:-len('.pth')] if out_file.endswith('.pth') else out_file
    buffer = io.BytesIO()  # the name holds the hash of the bytes: serialise them first
    torch.save({'meta': meta, 'state_dict': state_dict}, buffer)
    data = buffer.getvalue()
    final = f'{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    atomic_write(final, data)
    return final


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description='Strip a checkpoint for release and hash its name.')
    p.add_argument('in_file')
    p.add_argument('out_file')
    p.add_argument('--no-ema', '--no_ema', dest='no_ema', action='store_true',
                   help='publish the raw weights of a run with EMAHook (default: the averaged '
                        'ones, ema_state_dict)')
    args = p.parse_args(argv)
    try:
        final = publish(args.in_file, args.out_file, use_ema=not args.no_ema)
    except (CheckpointError, FileNotFoundError) as e:
        print(f'publish_model: error: {e}', file=sys.stderr)
        return 1
    print(final)
    return 0


if __name__ == '__main__':
    sys.exit(main())
