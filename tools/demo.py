"""Run a trained SOLO/SOLOv2 model on your own images and draw the instances.

    python tools/demo.py --config CONFIG --checkpoint CKPT --input a.jpg b.jpg [dir/ ...] \
        [--output demo_out] [--score-thr 0.3] [--device cpu] [--json] [--cfg-options ...]

For every input image ``OUT/<name>`` is written with the instances scoring above
``--score-thr`` drawn on it (mask, outline, "class score"); with ``--json`` also
``OUT/<stem>.json``: the image size and the instances as COCO-style results (``category``
name, ``category_id`` = 0-based label + 1, ``score``, ``bbox`` ``[x, y, w, h]`` and the mask as
compressed RLE ``segmentation``). A folder given to ``--input`` means every image in it.
Class names come from the checkpoint (else the config's test dataset).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence

from mmdet_solo.config import DictAction
from mmdet_solo.utils.cli import add_model_loading_args

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description='Instance segmentation of your own images',
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 2)[2] if __doc__ else None)
    p.add_argument('--config', required=True, help='model config file')
    p.add_argument('--checkpoint', required=True, help='checkpoint file (.pth)')
    p.add_argument('--input', nargs='+', required=True,
                   help='image files and/or folders of images')
    p.add_argument('--output', default='demo_out', help='output folder (default demo_out)')
    p.add_argument('--score-thr', '--score_thr', dest='score_thr', type=float, default=0.3,
                   help='draw (and write with --json) instances scoring above this (default 0.3)')
    p.add_argument('--device', default=None,
                   help="'cpu', 'cuda', 'cuda:1', ... (default: cuda:0 if available, else cpu)")
    p.add_argument('--json', action='store_true',
                   help='also write OUT/<stem>.json with the instances (RLE masks)')
    add_model_loading_args(p)
    p.add_argument('--cfg-options', '--cfg_options', dest='cfg_options', nargs='+',
                   action=DictAction, metavar='KEY=VALUE',
                   help='override config keys, e.g. test_cfg.mask_thr=0.4')
    return p


def collect_inputs(inputs: Sequence[str]) -> List[str]:
    """Files as given, folders expanded to their images (sorted); missing paths are errors."""
    files: List[str] = []
    for path in inputs:
        if osp.isdir(path):
            found = sorted(osp.join(path, n) for n in os.listdir(path)
                           if n.lower().endswith(IMG_EXTENSIONS))
            if not found:
                raise FileNotFoundError(f'--input folder {path!r} holds no images '
                                        f'({", ".join(IMG_EXTENSIONS)})')
            files += found
        elif osp.isfile(path):
            files.append(path)
        else:
            raise FileNotFoundError(f'--input {path!r}: no such file or folder')
    return files


def output_names(files: Sequence[str]) -> List[str]:
    """Base names for the outputs, made unique (``a.jpg``, ``a_1.jpg``) when inputs share one."""
    seen: dict = {}
    names = []
    for f in files:
        base = osp.basename(f)
        stem, ext = osp.splitext(base)
        if ext.lower() not in IMG_EXTENSIONS:
            ext = '.jpg'
        key = (stem + ext).lower()
        n = seen.get(key, 0)
        seen[key] = n + 1
        names.append(f'{stem}{ext}' if n == 0 else f'{stem}_{n}{ext}')
    return names


def result_to_json(result, classes: Optional[Sequence[str]], score_thr: float,
                   file_name: str) -> dict:
    """The instances above ``score_thr`` as COCO-style result dicts (compressed RLE masks)."""
    import numpy as np
    import pycocotools.mask as mask_utils
    h, w = result.masks.shape[1:] if result.masks.ndim == 3 else (0, 0)
    instances = []
    for i in np.nonzero(result.scores > score_thr)[0]:
        rle = mask_utils.encode(np.asfortranarray(result.masks[i].astype(np.uint8)))
        rle['counts'] = rle['counts'].decode('ascii')
        x1, y1, x2, y2 = (float(v) for v in result.bboxes[i])
        label = int(result.labels[i])
        instances.append(dict(
            category=classes[label] if classes is not None else str(label),
            category_id=label + 1, label=label, score=round(float(result.scores[i]), 5),
            bbox=[x1, y1, x2 - x1, y2 - y1], area=int(result.masks[i].sum()),
            segmentation=rle))
    return dict(file_name=file_name, height=int(h), width=int(w), score_thr=score_thr,
                instances=instances)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0.0 <= args.score_thr <= 1.0:
        parser.error(f'--score-thr must be in [0, 1], got {args.score_thr}')
    for path, what in ((args.config, '--config'), (args.checkpoint, '--checkpoint')):
        if not osp.isfile(path):
            parser.error(f'{what} {path!r}: no such file')
    if osp.isfile(args.output):
        parser.error(f'--output {args.output!r} is a file, not a folder')
    try:
        files = collect_inputs(args.input)
    except FileNotFoundError as e:
        parser.error(str(e))

    import torch

    from mmdet_solo.apis import inference_detector, init_detector, show_result_ins
    from mmdet_solo.utils.misc import refuse_overwriting_inputs
    device = args.device or ('cuda:0' if torch.cuda.is_available() else 'cpu')
    model = init_detector(args.config, args.checkpoint, device=device,
                          cfg_options=args.cfg_options, allow_partial=args.allow_partial,
                          fp16=args.fp16)
    classes = model.CLASSES
    names = output_names(files)
    outputs = [osp.join(args.output, n) for n in names]
    if args.json:
        outputs += [osp.join(args.output, osp.splitext(n)[0] + '.json') for n in names]
    try:
        refuse_overwriting_inputs(outputs, files, '--output')
    except ValueError as e:
        parser.error(str(e))
    os.makedirs(args.output, exist_ok=True)
    t_all = time.time()
    failed = []
    for k, (path, name) in enumerate(zip(files, names)):
        t0 = time.time()
        try:
            result = inference_detector(model, path)
            out_img = osp.join(args.output, name)
            show_result_ins(path, result, classes, score_thr=args.score_thr, out_file=out_img)
        except Exception as e:  # one bad file must not stop the others: named, counted
            failed.append((path, f'{type(e).__name__}: {e}'))
            print(f'[{k + 1}/{len(files)}] {path}: FAILED: {failed[-1][1]}', file=sys.stderr,
                  flush=True)
            continue
        n = int((result.scores > args.score_thr).sum())
        msg = f'[{k + 1}/{len(files)}] {path}: {n} instance(s) > {args.score_thr} -> {out_img}'
        if args.json:
            out_json = osp.join(args.output, osp.splitext(name)[0] + '.json')
            with open(out_json, 'w') as f:
                json.dump(result_to_json(result, classes, args.score_thr, osp.basename(path)), f)
            msg += f', {out_json}'
        print(f'{msg} ({time.time() - t0:.2f} s)', flush=True)
    print(f'{len(files) - len(failed)} image(s) in {time.time() - t_all:.1f} s; results in '
          f'{args.output}', flush=True)
    if failed:
        print(f'{len(failed)} of {len(files)} image(s) failed:', file=sys.stderr)
        for path, why in failed:
            print(f'  {path}: {why}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
