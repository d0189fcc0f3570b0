"""Inference speed of a detector: images/s and where the time goes.

    python tools/analysis/benchmark.py CONFIG [CHECKPOINT] [--shape H W] [--batch-size N] \
        [--fp16] [--fuse-conv-bn] [--include-data] [--num-iters 10] [--warmup 2] [--device cpu] \
        [--json out.json] [--cfg-options KEY=VALUE ...]

Each iteration times the stages of inference one after the other, the device synchronised
around each: ``backbone+neck``, ``heads`` (SOLOv2's mask-feature head and the SOLO head),
``post-processing`` (scores, candidate masks, Matrix NMS) and ``mask paste`` (resizing the
kept masks to the original image). Figures are medians over ``--num-iters`` iterations after
``--warmup`` untimed ones; ``images/s`` = batch size / median total.

Without ``--include-data`` the network gets a batch of random H x W images (default 800 1344,
padded to 32); with it, random H x W JPEG files go through the config's test pipeline
(decoding, resizing, normalising, padding, collating: the ``data`` column), so the network
input is what the pipeline makes of them. Without CHECKPOINT the weights are the model's
initialisation: few candidates pass the score threshold, so post-processing is nearly free
(give a trained checkpoint for realistic post-processing). ``--fp16`` runs the network under
autocast as ``init_detector(fp16=True)``: float16 on CUDA, bfloat16 on a CPU;
``--fuse-conv-bn`` folds BatchNorm into the convolutions (config ``fuse_conv_bn=True``).
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
import tempfile
from typing import Optional, Sequence

from mmdet_solo.config import DictAction
from mmdet_solo.utils.cli import add_model_loading_args, model_cfg_options

DEFAULT_SHAPE = (800, 1344)
COLUMNS = (('data', 'data'), ('backbone_neck', 'backbone+neck'), ('heads', 'heads'),
           ('postprocess', 'post-processing'), ('mask_paste', 'mask paste'), ('total', 'total'))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('config', help='model config file (.py, or an AdelaiDet .yaml)')
    p.add_argument('checkpoint', nargs='?', help='checkpoint (default: initial weights)')
    p.add_argument('--shape', type=int, nargs='+', metavar='N',
                   help='image H W (one number: a square); default 800 1344')
    p.add_argument('--batch-size', '--batch_size', dest='batch_size', type=int, default=1,
                   help='images per forward (default 1)')
    add_model_loading_args(p)   # --fp16, --fuse-conv-bn, --allow-partial, --no-ema
    p.add_argument('--include-data', '--include_data', dest='include_data',
                   action='store_true', help='time decoding + the test pipeline too')
    p.add_argument('--num-iters', '--num_iters', dest='num_iters', type=int, default=10,
                   help='timed iterations (default 10)')
    p.add_argument('--warmup', type=int, default=2, help='untimed iterations first (default 2)')
    p.add_argument('--device', default=None,
                   help="'cpu', 'cuda', ... (default: cuda:0 if available, else cpu)")
    p.add_argument('--json', help='also write the figures to this JSON file')
    p.add_argument('--cfg-options', '--cfg_options', dest='cfg_options', nargs='+',
                   action=DictAction, metavar='KEY=VALUE', help='override config keys')
    return p


def random_batch(shape: Sequence[int], batch_size: int, device):
    """A padded batch of random images of size ``shape`` and their metas (scale 1)."""
    import torch
    h, w = shape
    pad = (-(-h // 32) * 32, -(-w // 32) * 32)
    gen = torch.Generator().manual_seed(0)
    img = torch.randn((batch_size, 3) + pad, generator=gen).to(device)
    meta = dict(img_shape=(h, w, 3), ori_shape=(h, w, 3), pad_shape=pad + (3,),
                scale_factor=1.0, flip=False)
    return img, [dict(meta) for _ in range(batch_size)]


def pipeline_loader(model, shape: Sequence[int], batch_size: int, folder: str):
    """A function that reads ``batch_size`` random JPEGs of ``shape`` (written to ``folder``)
    through the model's test pipeline and collates them, as ``inference_detector`` does."""
    import cv2
    import numpy as np

    from mmdet_solo.apis.inference import _test_pipeline
    from mmdet_solo.datasets.collate import collate
    rng = np.random.default_rng(0)
    files = []
    for i in range(batch_size):
        path = osp.join(folder, f'{i}.jpg')
        cv2.imwrite(path, rng.integers(0, 256, (shape[0], shape[1], 3), dtype=np.uint8))
        files.append(path)
    pipeline = _test_pipeline(model.cfg)
    device = next(model.parameters()).device

    def load():
        data = collate([pipeline(dict(img=f)) for f in files])
        img, metas = data['img'], data['img_metas']
        if isinstance(img, list):  # MultiScaleFlipAug: one augmentation
            img, metas = img[0], metas[0]
        return img.to(device), metas
    return load


def format_table(result: dict, batch_size: int) -> str:
    cols = [(k, name) for k, name in COLUMNS if k in result]
    head = '| ' + ' | '.join(f'{name} (ms)' for _, name in cols) + ' | images/s |'
    row = '| ' + ' | '.join(f'{result[k] * 1e3:.1f}' for k, _ in cols) + \
        f" | {result['images_per_s']:.2f} |"
    return '\n'.join([head, '|' + '---|' * (len(cols) + 1), row])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from mmdet_solo.utils.profiling import input_shape, time_stages
    try:
        shape = input_shape(args.shape, DEFAULT_SHAPE)
    except ValueError as e:
        parser.error(str(e))
    if args.batch_size < 1 or args.num_iters < 1 or args.warmup < 0:
        parser.error('--batch-size and --num-iters must be >= 1, --warmup >= 0')
    for path, what in ((args.config, 'CONFIG'), (args.checkpoint, 'CHECKPOINT')):
        if path is not None and not osp.isfile(path):
            parser.error(f'{what} {path!r}: no such file')
    import torch

    from mmdet_solo.apis import init_detector
    device = args.device or ('cuda:0' if torch.cuda.is_available() else 'cpu')
    model = init_detector(args.config, args.checkpoint, device=device,
                          cfg_options=model_cfg_options(args), fp16=args.fp16,
                          allow_partial=args.allow_partial, use_ema=not args.no_ema)
    with tempfile.TemporaryDirectory() as tmp:
        if args.include_data:
            load = pipeline_loader(model, shape, args.batch_size, tmp)
            img, metas = load()
        else:
            load = None
            img, metas = random_batch(shape, args.batch_size, device)
        result = time_stages(model, img, metas, warmup=args.warmup, iters=args.num_iters,
                             load=load)
    result['images_per_s'] = args.batch_size / result['total']
    net = tuple(img.shape[-2:])
    print(f"# {args.config}: batch {args.batch_size}, network input {net[0]}x{net[1]}, "
          f"{'bf16/fp16 autocast' if args.fp16 else 'float32'}, device {device}, "
          f"{torch.get_num_threads()} threads, median of {args.num_iters} after {args.warmup} "
          f"warm-up, {result['detections']} detections in the first image")
    print(format_table(result, args.batch_size))
    if args.json:
        from mmdet_solo.utils.io import atomic_write
        report = dict(config=args.config, checkpoint=args.checkpoint, shape=list(shape),
                      network_input=list(net), batch_size=args.batch_size, fp16=args.fp16,
                      fuse_conv_bn=args.fuse_conv_bn,
                      include_data=args.include_data, device=str(device),
                      threads=torch.get_num_threads(), warmup=args.warmup,
                      seconds={k: result[k] for k, _ in COLUMNS if k in result},
                      images_per_s=result['images_per_s'], detections=result['detections'])
        atomic_write(args.json, json.dumps(report, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
