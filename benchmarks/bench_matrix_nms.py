"""Matrix NMS: the compiled operator against the PyTorch reference (median wall time).

    python benchmarks/bench_matrix_nms.py                  # N = 50, 200, 500 at 200x304, CPU (+GPU)
    python benchmarks/bench_matrix_nms.py --sizes 500 --repeat 11 --devices cpu

Two kinds of input, both at a quarter of an 800x1216 input (200x304):

* ``objects``: what SOLOv2 hands to Matrix NMS: the top-N candidates are jittered copies of a few
  objects (ellipses and boxes of varied size), 5 classes, many same-class overlaps;
* ``dense``: the extension's worst case: one class, every mask a random blob spread over the
  whole image (every pair is compared over every word).

The reference's time does not depend on the content (a dense N x N matmul). Each figure is the
median of ``--repeat`` runs after one warm-up; the extension's results are checked against the
reference's before timing.
"""
import argparse
import math
import platform
import statistics
import time

import torch

from mmdet_solo.ops import _ext_loader, matrix_nms_torch


def objects_case(n, h, w, seed=0, n_objects=12, n_classes=5):
    g = torch.Generator().manual_seed(seed)
    yy = torch.arange(h, dtype=torch.float32)[:, None]
    xx = torch.arange(w, dtype=torch.float32)[None, :]
    objs = []
    for _ in range(n_objects):
        cy, cx = torch.rand(2, generator=g).tolist()
        ry = 4 + torch.rand(1, generator=g).item() * h * 0.3
        rx = 4 + torch.rand(1, generator=g).item() * w * 0.3
        objs.append((cy * h, cx * w, ry, rx, torch.randint(0, n_classes, (1,), generator=g).item()))
    masks = torch.zeros(n, h, w, dtype=torch.bool)
    labels = torch.zeros(n, dtype=torch.long)
    for k in range(n):
        cy, cx, ry, rx, lab = objs[torch.randint(0, n_objects, (1,), generator=g).item()]
        j = torch.randn(4, generator=g) * 0.1
        cy, cx = cy + j[0].item() * ry, cx + j[1].item() * rx
        ry, rx = ry * math.exp(j[2].item()), rx * math.exp(j[3].item())
        if k % 2:
            masks[k] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        else:
            masks[k] = ((yy - cy).abs() <= ry) & ((xx - cx).abs() <= rx)
        # a fifth of the candidates are classified as another class
        labels[k] = lab if torch.rand(1, generator=g).item() > 0.2 else \
            torch.randint(0, n_classes, (1,), generator=g).item()
    scores = torch.sort(torch.rand(n, generator=g), descending=True).values
    return masks, labels, scores


def dense_case(n, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 1, h // 8 + 1, w // 8 + 1, generator=g)
    masks = torch.nn.functional.interpolate(low, size=(h, w), mode='bilinear')[:, 0] > 0.5
    masks[:, 0, 0] = True
    masks[:, -1, -1] = True  # every mask spans every word
    labels = torch.zeros(n, dtype=torch.long)
    scores = torch.sort(torch.rand(n, generator=g), descending=True).values
    return masks, labels, scores


def median_time(fn, repeat, sync):
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--sizes', type=int, nargs='+', default=[50, 200, 500])
    ap.add_argument('--hw', type=int, nargs=2, default=[200, 304])
    ap.add_argument('--repeat', type=int, default=7)
    ap.add_argument('--cases', nargs='+', default=['objects', 'dense'], choices=['objects', 'dense'])
    ap.add_argument('--devices', nargs='+', default=None, help='cpu and/or cuda (default: all)')
    ap.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (CPU)')
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (['cpu', 'cuda'] if torch.cuda.is_available() else ['cpu'])
    if not _ext_loader.load():
        raise SystemExit(f'the extension is not available: {_ext_loader.load_error()}')
    op = torch.ops.mmdet_solo.matrix_nms
    h, w = args.hw

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'
    print(f'torch {torch.__version__}, {platform.processor() or platform.machine()}, '
          f'{torch.get_num_threads()} CPU threads, GPU: {gpu}; masks {h}x{w}, median of '
          f'{args.repeat}')
    print()
    print('| device | input | N | reference (ms) | extension (ms) | speed-up |')
    print('|---|---|---:|---:|---:|---:|')
    for device in devices:
        if device == 'cuda' and not _ext_loader.has_kernel('cuda'):
            print(f'| cuda | - | - | - | no CUDA kernel built | - |')
            continue
        sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
        for case in args.cases:
            for n in args.sizes:
                masks, labels, scores = (objects_case if case == 'objects' else dense_case)(n, h, w)
                masks, labels, scores = masks.to(device), labels.to(device), scores.to(device)
                sum_masks = masks.sum((1, 2)).float()  # as the heads' predict passes them
                ref_out = matrix_nms_torch(masks, labels, scores, sum_masks=sum_masks)
                ext_out = op(masks, labels, scores, 'gaussian', 2.0, sum_masks)
                torch.testing.assert_close(ext_out, ref_out, rtol=1e-6, atol=1e-6)
                t_ref = median_time(lambda: matrix_nms_torch(masks, labels, scores,
                                                             sum_masks=sum_masks),
                                    args.repeat, sync)
                t_ext = median_time(lambda: op(masks, labels, scores, 'gaussian', 2.0, sum_masks),
                                    args.repeat, sync)
                print(f'| {device} | {case} | {n} | {t_ref * 1e3:.2f} | {t_ext * 1e3:.2f} | '
                      f'{t_ref / t_ext:.1f}x |', flush=True)


if __name__ == '__main__':
    main()
