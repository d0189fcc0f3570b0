"""CPU/GPU inference and training-step timing, split into backbone+neck, head and post-processing.

    python benchmarks/bench_inference.py                      # the three cases of BENCHMARKS.md
    python benchmarks/bench_inference.py --weights golden     # deterministic reference weights
    python benchmarks/bench_inference.py --device cuda --repeat 20
    python benchmarks/bench_inference.py --channels-last      # NHWC weights and input
    python benchmarks/bench_inference.py --bf16               # bfloat16 autocast (not exact)

``--weights init`` uses the model's own initialisation (category scores ≈ 0.01, so nothing passes
``score_thr`` and post-processing is nearly free, like a model early in training); ``golden``
uses the reference weights of tests/data/golden, which send ~1300 candidates into
post-processing (a worst case). Time is the median of ``--repeat`` runs after ``--warmup``.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from mmdet_solo.config import Config  # noqa: E402
from mmdet_solo.models import build_detector  # noqa: E402

CASES = [  # (name, config, input (H, W) = the test pipeline's output for a 4:3 image, golden name)
    ('SOLOv2 R50 1333x800', 'configs/solov2/solov2_r50_fpn_8gpu_1x.py', (800, 1067), 'solov2_r50_fpn_8gpu_1x'),
    ('SOLOv2-light R18 768x448', 'configs/solov2/solov2_light_448_r18_fpn_8gpu_3x.py', (448, 597),
     'solov2_light_448_r18_fpn_8gpu_3x'),
]


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def _timed(fn, device):
    _sync(device)
    t = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t


def build(config: str, weights: str, golden: str, device: torch.device):
    cfg = Config.fromfile(os.path.join(ROOT, config))
    cfg.model.pretrained = None
    model = build_detector(cfg.model, train_cfg=cfg.get('train_cfg'), test_cfg=cfg.get('test_cfg'))
    if weights == 'golden':
        from golden_utils import golden_state_dict
        model.load_state_dict(golden_state_dict(golden))
    return model.to(device)


def bench_inference(model, hw, device, warmup, repeat, memory_format=torch.contiguous_format):
    """Median seconds of (backbone+neck, heads, post-processing, total) for one image."""
    model.eval()
    h, w = hw
    pad = (int(np.ceil(h / 32) * 32), int(np.ceil(w / 32) * 32))
    rng = np.random.default_rng(0)
    img = torch.from_numpy(rng.standard_normal((1, 3) + pad, dtype=np.float32)).to(device)
    img = img.contiguous(memory_format=memory_format)
    meta = [dict(img_shape=(h, w, 3), ori_shape=(int(h * 0.6), int(w * 0.6), 3), pad_shape=pad + (3,),
                 scale_factor=1 / 0.6, flip=False)]
    times = []
    with torch.no_grad():
        for i in range(warmup + repeat):
            feats, t1 = _timed(lambda: model.extract_feat(img), device)

            def heads():
                outs = tuple(model.bbox_head(feats))
                if model.mask_feat_head is not None:
                    s, e = model.mask_feat_head.start_level, model.mask_feat_head.end_level
                    outs = outs + (model.mask_feat_head(feats[s:e + 1]),)
                return outs
            outs, t2 = _timed(heads, device)
            res, t3 = _timed(lambda: model.bbox_head.get_seg(*outs, meta, model.test_cfg), device)
            if i >= warmup:
                times.append((t1, t2, t3, t1 + t2 + t3))
    return [statistics.median(c) for c in zip(*times)], len(res[0])


def train_step_inputs(device):
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
                gt_labels=[torch.tensor([0, 1, 2, 3], device=device)], gt_masks=[masks])


def train_step(model, args):
    model.zero_grad(set_to_none=True)
    losses = model.forward_train(**args)
    sum(losses.values()).backward()


def bench_train_step(model, device, warmup, repeat, memory_format=torch.contiguous_format):
    """Median seconds of forward + backward on an 800x1216 image with 4 instances."""
    model.train()
    args = train_step_inputs(device)
    args['img'] = args['img'].contiguous(memory_format=memory_format)
    times = []
    for i in range(warmup + repeat):
        _, t = _timed(lambda: train_step(model, args), device)
        if i >= warmup:
            times.append(t)
    return statistics.median(times)


def train_step_gflop(model, device) -> float:
    """Floating-point operations of one training step (convolutions and matmuls, forward and
    backward, as counted by ``torch.utils.flop_counter``), in GFLOP."""
    from torch.utils.flop_counter import FlopCounterMode
    model.train()
    counter = FlopCounterMode(display=False)
    with counter:
        train_step(model, train_step_inputs(device))
    return counter.get_total_flops() / 1e9


def gemm_gflops(device, n=2048, repeat=10) -> float:
    """float32 GFLOP/s of an n x n x n matrix product: the practical peak of this machine."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    times = [_timed(lambda: a @ b, device)[1] for _ in range(repeat)]
    return 2 * n ** 3 / statistics.median(times) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--weights', choices=['init', 'golden'], default='init')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--no-train', action='store_true', help='skip the training step')
    parser.add_argument('--channels-last', action='store_true',
                        help='model weights and input in the channels_last memory format')
    parser.add_argument('--bf16', action='store_true',
                        help='bfloat16 autocast (what `fp16 = dict(...)` in a config does on a CPU)')
    args = parser.parse_args()
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'none'
    print(f'# torch {torch.__version__}, {platform.processor() or platform.machine()}, '
          f'{args.threads} threads, device {device} ({gpu}), weights={args.weights}, '
          f'memory format {"channels_last" if args.channels_last else "contiguous"}, '
          f'{"bfloat16 autocast" if args.bf16 else "float32"}')
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
        run(args, device, memory_format)


def run(args, device, memory_format):
    print('| case | input | backbone+neck (s) | heads (s) | post-proc (s) | total (s) | detections |')
    print('|---|---|---|---|---|---|---|')
    for name, config, hw, golden in CASES:
        model = build(config, args.weights, golden, device).to(memory_format=memory_format)
        (t1, t2, t3, tt), n = bench_inference(model, hw, device, args.warmup, args.repeat,
                                              memory_format)
        print(f'| {name} | {hw[0]}x{hw[1]} | {t1:.3f} | {t2:.3f} | {t3:.3f} | {tt:.3f} | {n} |')
    if not args.no_train:
        model = build(CASES[0][1], args.weights, CASES[0][3], device).to(memory_format=memory_format)
        t = bench_train_step(model, device, args.warmup, args.repeat, memory_format)
        gflop = train_step_gflop(model, device)
        with torch.autocast(device.type, enabled=False):
            peak = gemm_gflops(device)
        print(f'\nSOLOv2 R50 training step (forward + backward, 800x1216, 4 instances): {t:.3f} s; '
              f'{gflop:.0f} GFLOP = {gflop / t:.0f} GFLOP/s. float32 GEMM on this device: '
              f'{peak:.0f} GFLOP/s, i.e. at least {gflop / peak:.2f} s for this step')


if __name__ == '__main__':
    main()
