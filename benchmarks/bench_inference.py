"""CPU/GPU inference and training-step timing, split into backbone+neck, head and post-processing.

    python benchmarks/bench_inference.py                      # the three cases of BENCHMARKS.md
    python benchmarks/bench_inference.py --weights golden     # deterministic reference weights
    python benchmarks/bench_inference.py --device cuda --repeat 20
    python benchmarks/bench_inference.py --channels-last      # NHWC weights and input
    python benchmarks/bench_inference.py --bf16               # bfloat16 autocast (not exact)
    python benchmarks/bench_inference.py --device cuda --batch-size 8 --no-train   # images/s
    python benchmarks/bench_inference.py --config CONFIG [--checkpoint CKPT] [--shape H W]

``--weights init`` uses the model's own initialisation (category scores ≈ 0.01, so nothing passes
``score_thr`` and post-processing is nearly free, like a model early in training); ``golden``
uses the reference weights of tests/data/golden, which send ~1300 candidates into
post-processing (a worst case). Time is the median of ``--repeat`` runs after ``--warmup``.

``--batch-size N`` (default 1) feeds N different random images of the same size as one padded
batch (``img_metas = [meta] * N``). The stage columns are seconds per batch, each stage timed
on its own (backbone+neck, heads, ``predict``); ``model()`` is the whole
``model(img=batch, img_metas=[meta] * N, return_loss=False, rescale=True)`` call, timed
separately, and ``images/s`` is N divided by it. ``detections`` counts the first image's.

``--config PATH`` times that config instead of the built-in cases, with random weights (the
model's initialisation), ``--checkpoint PATH`` (loaded by ``mmdet_solo.apis.init_detector``) or
``--weights golden`` (where tests/data/golden has the config's name). Its input is ``--shape H
W``: default the built-in case's size for a built-in config, else 800x1216; ``--shape`` also
replaces the built-in cases' sizes. The training step (one 800x1216 image, batch 1) then uses
that model. ``--json PATH`` also writes the figures as JSON.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from mmdet_solo.config import Config  # noqa: E402
from mmdet_solo.models import build_detector  # noqa: E402
from mmdet_solo.utils.profiling import count_flops, time_stages, timed  # noqa: E402

CASES = [  # (name, config, input (H, W) = the test pipeline's output for a 4:3 image, golden name)
    ('SOLOv2 R50 1333x800', 'configs/solov2/solov2_r50_fpn_8gpu_1x.py', (800, 1067), 'solov2_r50_fpn_8gpu_1x'),
    ('SOLOv2-light R18 768x448', 'configs/solov2/solov2_light_448_r18_fpn_8gpu_3x.py', (448, 597),
     'solov2_light_448_r18_fpn_8gpu_3x'),
]


def build(config: str, weights: str, golden: str, device: torch.device,
          checkpoint: str | None = None):
    """The model of ``config`` (relative to the repository root, or absolute) on ``device``:
    ``checkpoint`` loaded through ``init_detector`` if given, else random (``weights='init'``)
    or the golden reference weights named ``golden``."""
    path = os.path.join(ROOT, config)
    if checkpoint is not None:
        from mmdet_solo.apis import init_detector
        return init_detector(path, checkpoint, device=device)
    cfg = Config.fromfile(path)
    cfg.model.pretrained = None
    model = build_detector(cfg.model, train_cfg=cfg.get('train_cfg'), test_cfg=cfg.get('test_cfg'))
    if weights == 'golden':
        from golden_utils import golden_state_dict
        model.load_state_dict(golden_state_dict(golden))
    return model.to(device)


def inference_inputs(hw, batch_size, device, memory_format=torch.contiguous_format):
    """A padded batch of ``batch_size`` different random images of the test size ``hw`` and
    their metas (all the same: a 4:3 original image scaled by 1/0.6)."""
    h, w = hw
    pad = (int(np.ceil(h / 32) * 32), int(np.ceil(w / 32) * 32))
    rng = np.random.default_rng(0)  # batch 1: the same image as before --batch-size existed
    img = torch.from_numpy(rng.standard_normal((batch_size, 3) + pad, dtype=np.float32)).to(device)
    img = img.contiguous(memory_format=memory_format)
    meta = dict(img_shape=(h, w, 3), ori_shape=(int(h * 0.6), int(w * 0.6), 3), pad_shape=pad + (3,),
                scale_factor=1 / 0.6, flip=False)
    return img, [dict(meta) for _ in range(batch_size)]


def bench_inference(model, hw, device, warmup, repeat, memory_format=torch.contiguous_format,
                    batch_size=1):
    """Median seconds per batch of (backbone+neck, heads, post-processing, their sum, the whole
    ``model(...)`` call), and the number of detections in the first image."""
    img, metas = inference_inputs(hw, batch_size, device, memory_format)
    # the stages of tools/analysis/benchmark.py; post-processing here includes mask pasting
    r = time_stages(model, img, metas, warmup=warmup, iters=repeat, whole_call=True)
    post = r['postprocess'] + r['mask_paste']
    return [r['backbone_neck'], r['heads'], post, r['total'], r['model']], r['detections']


def train_step_inputs(device, num_classes=80):
    """One 800x1216 image with 4 box-shaped instances, as ``forward_train`` takes it."""
    rng = np.random.default_rng(0)
    h, w = 800, 1216
    img = torch.from_numpy(rng.standard_normal((1, 3, h, w), dtype=np.float32)).to(device)
    boxes = np.array([[100, 120, 420, 560], [500, 80, 640, 200], [700, 300, 1150, 760],
                      [300, 600, 340, 640]], dtype=np.float32)
    masks = np.zeros((4, h, w), dtype=np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        masks[k, y1:y2, x1:x2] = 1
    meta = [dict(img_shape=(h, w, 3), ori_shape=(h, w, 3), pad_shape=(h, w, 3), scale_factor=1.0, flip=False)]
    return dict(img=img, img_metas=meta, gt_bboxes=[torch.from_numpy(boxes).to(device)],
                gt_labels=[torch.arange(4, device=device) % num_classes], gt_masks=[masks])


def _num_classes(model) -> int:
    return int(getattr(model.bbox_head, 'num_classes', 80) or 80)


def train_step(model, args):
    model.zero_grad(set_to_none=True)
    losses = model.forward_train(**args)
    sum(losses.values()).backward()


def bench_train_step(model, device, warmup, repeat, memory_format=torch.contiguous_format):
    """Median seconds of forward + backward on an 800x1216 image with 4 instances."""
    model.train()
    args = train_step_inputs(device, _num_classes(model))
    args['img'] = args['img'].contiguous(memory_format=memory_format)
    times = []
    for i in range(warmup + repeat):
        _, t = timed(lambda: train_step(model, args), device)
        if i >= warmup:
            times.append(t)
    return statistics.median(times)


def train_step_gflop(model, device) -> float:
    """Floating-point operations of one training step (convolutions and matmuls, forward and
    backward, as counted by ``torch.utils.flop_counter``), in GFLOP."""
    model.train()
    flops, _ = count_flops(lambda: train_step(model, train_step_inputs(device, _num_classes(model))))
    return flops / 1e9


def gemm_gflops(device, n=2048, repeat=10) -> float:
    """float32 GFLOP/s of an n x n x n matrix product: the practical peak of this machine."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    times = [timed(lambda: a @ b, device)[1] for _ in range(repeat)]
    return 2 * n ** 3 / statistics.median(times) / 1e9


def _rate(x: float) -> str:
    return f'{x:.2f}' if x < 10 else f'{x:.1f}'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--weights', choices=['init', 'golden'], default='init')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--no-train', action='store_true', help='skip the training step')
    parser.add_argument('--channels-last', action='store_true',
                        help='model weights and input in the channels_last memory format')
    parser.add_argument('--bf16', '--fp16', dest='bf16', action='store_true',
                        help='bfloat16 autocast (what `fp16 = dict(...)` in a config does on a CPU)')
    parser.add_argument('--batch-size', '--batch_size', dest='batch_size', type=int, default=1,
                        help='images per forward (a padded batch of N different random images '
                             'of the same size); images/s = N / model() time')
    parser.add_argument('--config', help='time this config instead of the built-in cases')
    parser.add_argument('--checkpoint', help='weights for --config (loaded by init_detector)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (the test pipeline\'s output, padded to 32); default: '
                             'the built-in case\'s, 800 1216 for another --config')
    parser.add_argument('--json', help='also write the results to this JSON file')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error('--batch-size must be >= 1')
    if args.repeat < 1 or args.warmup < 0:
        parser.error('--repeat must be >= 1 and --warmup >= 0')
    if args.checkpoint and not args.config:
        parser.error('--checkpoint needs --config')
    if args.checkpoint and args.weights == 'golden':
        parser.error('--checkpoint and --weights golden are exclusive')
    if args.config and not os.path.isfile(os.path.join(ROOT, args.config)):
        parser.error(f'--config {args.config}: no such file')
    if args.checkpoint and not os.path.isfile(args.checkpoint):
        parser.error(f'--checkpoint {args.checkpoint}: no such file')
    if args.shape and min(args.shape) < 32:
        parser.error('--shape H W: both at least 32')
    return args


def cases(args):
    """(name, config, (H, W), golden name) of each case to time."""
    if not args.config:
        return [(name, config, tuple(args.shape) if args.shape else hw, golden)
                for name, config, hw, golden in CASES]
    rel = os.path.relpath(os.path.abspath(os.path.join(ROOT, args.config)), ROOT)
    builtin = {os.path.normpath(config): hw for _, config, hw, _ in CASES}
    hw = tuple(args.shape) if args.shape else builtin.get(os.path.normpath(rel), (800, 1216))
    golden = os.path.splitext(os.path.basename(args.config))[0]
    return [(golden, args.config, hw, golden)]


def main(argv=None):
    args = parse_args(argv)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        sys.exit(f'bench_inference.py: --device {args.device} but CUDA is not available')
    gpu = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'none'
    cuda = f', CUDA {torch.version.cuda}' if device.type == 'cuda' else ''
    weights = f'checkpoint {args.checkpoint}' if args.checkpoint else f'weights={args.weights}'
    print(f'# torch {torch.__version__}{cuda}, {platform.processor() or platform.machine()}, '
          f'{args.threads} threads, device {device} ({gpu}), {weights}, '
          f'memory format {"channels_last" if args.channels_last else "contiguous"}, '
          f'{"bfloat16 autocast" if args.bf16 else "float32"}, batch {args.batch_size}')
    report = dict(torch=torch.__version__, cuda=torch.version.cuda if device.type == 'cuda' else None,
                  device=str(device), gpu=gpu, threads=args.threads, batch_size=args.batch_size,
                  weights=args.checkpoint or args.weights, channels_last=args.channels_last,
                  bf16=args.bf16, warmup=args.warmup, repeat=args.repeat,
                  date=datetime.date.today().isoformat(), cases=[], train_step=None)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
        run(args, device, memory_format, report)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
        print(f'# results written to {args.json}')


def run(args, device, memory_format, report=None):
    report = report if report is not None else dict(cases=[], train_step=None)
    n = args.batch_size
    print('| case | input | backbone+neck (s) | heads (s) | post-proc (s) | total (s) | detections '
          '| batch | model() (s) | images/s |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    model = None
    for name, config, hw, golden in cases(args):
        model = None
        if device.type == 'cuda':
            torch.cuda.empty_cache()
        model = build(config, args.weights, golden, device, args.checkpoint).to(
            memory_format=memory_format)
        (t1, t2, t3, tt, tf), det = bench_inference(model, hw, device, args.warmup, args.repeat,
                                                    memory_format, batch_size=n)
        print(f'| {name} | {hw[0]}x{hw[1]} | {t1:.3f} | {t2:.3f} | {t3:.3f} | {tt:.3f} | {det} '
              f'| {n} | {tf:.3f} | {_rate(n / tf)} |', flush=True)
        report['cases'].append(dict(case=name, config=config, input=list(hw), batch_size=n,
                                    backbone_neck_s=t1, heads_s=t2, postproc_s=t3, total_s=tt,
                                    model_s=tf, images_per_s=n / tf, detections=det))
    if not args.no_train:
        if not args.config:
            model = None
            model = build(CASES[0][1], args.weights, CASES[0][3], device).to(memory_format=memory_format)
        name = report['cases'][-1]['case'] if args.config else 'SOLOv2 R50'
        t = bench_train_step(model, device, args.warmup, args.repeat, memory_format)
        gflop = train_step_gflop(model, device)
        with torch.autocast(device.type, enabled=False):
            peak = gemm_gflops(device)
        print(f'\n{name} training step (forward + backward, 800x1216, 4 instances): {t:.3f} s; '
              f'{gflop:.0f} GFLOP = {gflop / t:.0f} GFLOP/s. float32 GEMM on this device: '
              f'{peak:.0f} GFLOP/s, i.e. at least {gflop / peak:.2f} s for this step')
        report['train_step'] = dict(case=name, seconds=t, gflop=gflop, gflops=gflop / t,
                                    gemm_fp32_gflops=peak)
    return report


if __name__ == '__main__':
    main()
