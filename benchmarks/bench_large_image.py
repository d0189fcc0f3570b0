"""Peak memory of post-processing on a large photo (6000x4000 by default).

    python benchmarks/bench_large_image.py [--size 4000 6000] [--mode dense|encoded|both]

Each measurement runs in a fresh subprocess: the model (SOLOv2-light R18 with the reference
weights of tests/data/golden, which give 100 detections on any photo-like input) is built,
then ``inference_detector`` (``dense``: an ``InstanceResult`` with (N, H, W) bool masks) or the
test tools' path (``encoded``: the same forward with ``encode_masks=True``, RLE masks) runs on
one image of the given size. Reported: the process's peak RSS (VmHWM) minus its RSS just
before the call, the size of the bool masks (N x H x W bytes), and the time.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = 'solov2_light_448_r18_fpn_8gpu_3x'


def _status_kb(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise KeyError(key)


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def measure(height: int, width: int, mode: str) -> dict:
    sys.path.insert(0, ROOT)
    sys.path.insert(0, os.path.join(ROOT, 'tests'))
    import cv2
    import numpy as np
    import torch
    from golden_utils import CONFIGS, GOLDEN_DIR, golden_state_dict

    from mmdet_solo.apis import inference_detector, init_detector
    from mmdet_solo.datasets.collate import collate

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = init_detector(os.path.join(ROOT, CONFIGS[GOLDEN]), None, device='cpu')
    model.load_state_dict(golden_state_dict(GOLDEN))
    img = cv2.resize(cv2.imread(os.path.join(GOLDEN_DIR, 'public.jpg')), (width, height),
                     interpolation=cv2.INTER_LINEAR)
    if mode == 'dense':
        run = lambda: inference_detector(model, img)  # noqa: E731
    else:
        from mmdet_solo.apis.inference import _test_pipeline
        data = collate([_test_pipeline(model.cfg)(dict(img=img))])

        def run():
            with torch.no_grad():
                return model(img=data['img'], img_metas=data['img_metas'], return_loss=False,
                             rescale=True, encode_masks=True)[0]
    run()  # warm-up (allocator, thread pools) at the same size
    _reset_peak()
    before = _status_kb('VmRSS')
    t = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - t
    peak = _status_kb('VmHWM')
    n = len(result)
    return dict(mode=mode, height=height, width=width, detections=n, seconds=round(seconds, 2),
                rss_before_mb=round(before / 1024), peak_growth_mb=round((peak - before) / 1024),
                bool_masks_mb=round(n * height * width / 2 ** 20),
                ratio=round((peak - before) * 1024 / max(n * height * width, 1), 3))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--size', type=int, nargs=2, default=(4000, 6000), metavar=('H', 'W'))
    p.add_argument('--mode', choices=['dense', 'encoded', 'both'], default='both')
    p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(*args.size, args.mode)))
        return
    rows = []
    for mode in (['dense', 'encoded'] if args.mode == 'both' else [args.mode]):
        out = subprocess.run([sys.executable, __file__, '--child', '--mode', mode, '--size',
                              *map(str, args.size)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    import torch
    print(f'torch {torch.__version__}, {os.cpu_count()} CPUs, {time.strftime("%Y-%m-%d")}')
    print('| mode | image | detections | bool masks (MB) | peak RSS growth (MB) | growth / masks | time (s) |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['mode']} | {r['width']}x{r['height']} | {r['detections']} | {r['bool_masks_mb']} "
              f"| {r['peak_growth_mb']} | {r['ratio']} | {r['seconds']} |")


if __name__ == '__main__':
    main()
