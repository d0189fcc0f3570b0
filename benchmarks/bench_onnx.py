"""ONNX Runtime vs PyTorch CPU latency, batch 1, 2 threads, median (BENCHMARKS.md, "ONNX
Runtime"). Both run the whole detector on the same padded input: network, post-processing
and the masks pasted at the image size (``ONNXRuntimeDetector`` vs ``simple_test``).

    python benchmarks/bench_onnx.py                       # SOLOv2 R50 800x1216, light R18 448x672
    python benchmarks/bench_onnx.py --cases configs/solov2/solov2_r50_fpn_8gpu_3x.py=800x1216

Weights: seeded random with the head's outputs spread and score_thr set so that ~300
candidates pass (``benchmarks/onnx_matrix.py``): post-processing then does the work of a
trained model, which the static graph always does (see docs/DEPLOYMENT.md). Runs alternate
between the backends, so both see the same machine load.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import statistics
import sys
import tempfile
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))

DEFAULT_CASES = ('configs/solov2/solov2_r50_fpn_8gpu_3x.py=800x1216',
                 'configs/solov2/solov2_light_448_r18_fpn_8gpu_3x.py=448x672')


def bench_case(config: str, h: int, w: int, runs: int, workdir: str) -> dict:
    from onnx_matrix import padded_batch, probe_score_thr

    from mmdet_solo.apis import init_detector
    from mmdet_solo.deploy.compare import spread_head_outputs
    from mmdet_solo.deploy.export import export_onnx
    from mmdet_solo.deploy.runtime import ONNXRuntimeDetector
    torch.manual_seed(0)
    model = init_detector(config, None, device='cpu', cfg_options={'channels_last': False})
    spread_head_outputs(model)
    model.test_cfg['score_thr'] = probe_score_thr(model, {'x': [(h, w)]}, 300)
    onnx_file = osp.join(workdir, 'model.onnx')
    export_onnx(model, onnx_file, shape=(256, 320), dynamic=True)
    runner = ONNXRuntimeDetector(onnx_file, model.cfg, num_threads=2)
    # the PyTorch path as users run it on a CPU: channels_last weights (init_detector's default)
    model.to(memory_format=torch.channels_last)
    img, metas = padded_batch([(h, w)], seed=0)
    times = {'pytorch': [], 'onnxruntime': []}
    counts = {}
    with torch.no_grad():
        for i in range(runs + 1):          # the first run of each is a warm-up
            for name, fn in (('pytorch', lambda: model.simple_test(img, metas)),
                             ('onnxruntime', lambda: runner(img, metas))):
                start = time.perf_counter()
                res = fn()
                if i:
                    times[name].append(time.perf_counter() - start)
                counts[name] = len(res[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    return dict(config=config, input=[1, 3, h, w], runs=runs, counts=counts,
                median_s={k: round(v, 3) for k, v in med.items()},
                ort_over_torch=round(med['onnxruntime'] / med['pytorch'], 3))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description='ONNX Runtime vs PyTorch CPU latency')
    p.add_argument('--cases', nargs='+', default=list(DEFAULT_CASES), metavar='CONFIG=HxW')
    p.add_argument('--runs', type=int, default=5)
    p.add_argument('--out', help='write the rows as JSON here')
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for case in args.cases:
            config, size = case.split('=')
            h, w = (int(v) for v in size.split('x'))
            rows.append(bench_case(config, h, w, args.runs, workdir))
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        from mmdet_solo.utils.io import atomic_write
        atomic_write(args.out, json.dumps(rows, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
