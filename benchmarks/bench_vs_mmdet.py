"""Our inference against MMDetection 3.3's, same weights, interleaved in one process.

This machine's speed drifts by tens of percent within minutes, so timing two programs one after
the other says little. Here both models live in one process and their calls alternate; the
figure is the median of the per-pair ratios (ours / mmdet), stable to ~0.05.

MMDetection is never a project dependency: run this in a throwaway virtualenv (the same setup
as tools/dev/make_mmdet3_reference.py)::

    python3 -m venv /tmp/mmdet3venv
    /tmp/mmdet3venv/bin/pip install torch==2.14.1 torchvision==0.29.1 \\
        mmengine mmcv-lite==2.1.0 mmdet==3.3.0 pycocotools
    PYTHONPATH=. /tmp/mmdet3venv/bin/python benchmarks/bench_vs_mmdet.py [--pairs 15]

Both models get MMDetection's deterministic test weights (tests/data/mmdet3, category bias
raised so that ~1300 (cell, class) candidates reach post-processing: the worst case); ours loads
them through its mmdet checkpoint converter. Each call is ``inference_detector`` on
tests/data/golden/public.jpg (pipeline, forward, post-processing, masks at the original size).
The detections are compared first (labels, scores to 1e-4, mask IoU > 0.99), with our model in
contiguous memory format as mmdet's; the timed model uses our CPU default (channels_last for
models without DCN), which rounds differently (``--channels-last off`` times it contiguous).
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))  # golden_utils
sys.path.insert(0, os.path.join(ROOT, 'tools', 'dev'))

IMAGE = os.path.join(ROOT, 'tests', 'data', 'golden', 'public.jpg')
CASES = {  # mmdet reference name -> our config of the same model
    'solov2-light_r18_fpn_ms-3x_coco': 'configs/mmdet/solov2-light_r18_fpn_ms-3x_coco.py',
    'solov2_r50_fpn_1x_coco': 'configs/mmdet/solov2_r50_fpn_1x_coco.py',
}


def _convert_helpers():
    spec = importlib.util.spec_from_file_location(
        'convert_helpers', os.path.join(ROOT, 'tests', 'convert', 'conftest.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build_pair(name: str, channels_last, fuse: bool = False):
    """(mmdet model, our model, our model with contiguous weights as mmdet's) with the same
    deterministic weights; ``channels_last=None`` is our default (on for a CPU without DCN);
    ``fuse``: our timed model with BatchNorm folded into the convolutions (``fuse_conv_bn``)."""
    import mmdet
    from mmdet.registry import MODELS
    from mmengine.config import Config as MMConfig

    from mmdet_solo.apis import init_detector

    with open(os.path.join(ROOT, 'tests', 'data', 'mmdet3', name, 'spec.json')) as f:
        spec = json.load(f)
    cfg = MMConfig.fromfile(os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs',
                                         spec['mmdet_config']))
    cfg.model.backbone.init_cfg = None
    theirs = MODELS.build(cfg.model)
    weights = _convert_helpers().weights_for_spec([(k, tuple(s)) for k, s in spec['spec']],
                                                  spec['cate_bias_keys'], spec['salt'])
    theirs.load_state_dict(weights, strict=True)
    cfg.test_dataloader.dataset.pipeline = [
        t for t in cfg.test_dataloader.dataset.pipeline if t.type != 'LoadAnnotations']
    theirs.cfg = cfg
    theirs.eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f'{name}.pth')
        torch.save({'meta': {'mmdet_version': '3.3.0'}, 'state_dict': weights}, path)
        config = os.path.join(ROOT, CASES[name])
        options = {} if channels_last is None else {'channels_last': channels_last}
        if fuse:
            options['fuse_conv_bn'] = True
        ours = init_detector(config, path, device='cpu', cfg_options=options)
        contiguous = init_detector(config, path, device='cpu',
                                   cfg_options={'channels_last': False})
    return theirs, ours, contiguous


def check_same(theirs_out, ours_out) -> int:
    """Raise unless both found the same instances (the golden tests' matching: same label,
    score within 1e-4, mask IoU >= 0.99); return their number."""
    import pycocotools.mask as mask_util
    from golden_utils import compare_detections

    pred = theirs_out.pred_instances
    masks = pred.masks.numpy().astype(np.uint8).transpose(1, 2, 0)
    rles = mask_util.encode(np.asfortranarray(masks))
    dets = [dict(label=int(label), score=float(score),
                 rle=dict(size=rle['size'], counts=rle['counts'].decode('ascii')))
            for label, score, rle in zip(pred.labels, pred.scores, rles)]
    compare_detections(ours_out, dict(detections=dets), score_atol=1e-4)
    return len(dets)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pairs', type=int, default=15, help='timed (mmdet, ours) pairs per case')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--case', choices=sorted(CASES), action='append',
                        help='only this case (repeatable; default: all)')
    parser.add_argument('--channels-last', choices=['auto', 'on', 'off'], default='auto',
                        help='memory format of our timed model (auto: our CPU default, '
                             'channels_last without DCN). The detections are compared with a '
                             "contiguous copy, as mmdet's: channels_last rounds differently")
    parser.add_argument('--fuse-conv-bn', action='store_true',
                        help='time our model with BatchNorm folded into the convolutions '
                             '(fuse_conv_bn=True; rounds differently, as channels_last)')
    parser.add_argument('--json', help='also write the figures to this JSON file')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        import make_mmdet3_reference as ref
        ref._stub_mmcv_ext()
        from mmdet.apis import inference_detector as mmdet_infer
        from mmdet.utils import register_all_modules
    except ImportError as e:
        parser.error(f'MMDetection 3.3 is not importable here ({e}); see this file\'s docstring')
    register_all_modules()
    from mmdet_solo.apis import inference_detector

    report = dict(machine=platform.processor() or platform.machine(), threads=args.threads,
                  torch=torch.__version__, date=datetime.date.today().isoformat(),
                  channels_last=args.channels_last, fuse_conv_bn=args.fuse_conv_bn, cases=[])
    for name in args.case or list(CASES):
        theirs, ours, contiguous = build_pair(
            name, dict(auto=None, on=True, off=False)[args.channels_last], args.fuse_conv_bn)
        with torch.no_grad():
            n = check_same(mmdet_infer(theirs, IMAGE), inference_detector(contiguous, IMAGE))
            del contiguous
            ratios, t_theirs, t_ours = [], [], []
            for _ in range(args.pairs):
                t0 = time.perf_counter()
                mmdet_infer(theirs, IMAGE)
                t1 = time.perf_counter()
                inference_detector(ours, IMAGE)
                t2 = time.perf_counter()
                t_theirs.append(t1 - t0)
                t_ours.append(t2 - t1)
                ratios.append((t2 - t1) / (t1 - t0))
        row = dict(case=name, detections=n, mmdet_s=statistics.median(t_theirs),
                   ours_s=statistics.median(t_ours), ratio=statistics.median(ratios),
                   ratio_q1_q3=[float(np.percentile(ratios, 25)), float(np.percentile(ratios, 75))])
        report['cases'].append(row)
        print(f"{name}: {n} detections (identical); mmdet {row['mmdet_s']:.3f} s, ours "
              f"{row['ours_s']:.3f} s; ours/mmdet = {row['ratio']:.2f} (median of {args.pairs} "
              f"pairs, IQR {row['ratio_q1_q3'][0]:.2f}-{row['ratio_q1_q3'][1]:.2f})", flush=True)
    if args.json:
        from mmdet_solo.utils.io import atomic_write
        atomic_write(args.json, json.dumps(report, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
