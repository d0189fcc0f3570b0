"""How often the exported graph's candidate cap bites: per test image, the number of (cell,
class) pairs above ``score_thr`` (all of which the PyTorch path keeps; the graph keeps the
``--max-candidates`` best). Results differ from PyTorch only on images above the cap.

    python benchmarks/onnx_candidates.py CONFIG CHECKPOINT [--cap 1000] [--cfg-options ...]
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys

import numpy as np
import torch
from tqdm import tqdm

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv=None) -> int:
    from mmdet_solo.apis.test import prepare_test
    from mmdet_solo.config import DictAction
    from mmdet_solo.datasets import build_test_dataloader
    from mmdet_solo.deploy.graph import DEFAULT_MAX_CANDIDATES
    from mmdet_solo.models.heads.utils import flatten_cate_preds, points_nms
    p = argparse.ArgumentParser(description='candidates above score_thr per test image')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--cap', type=int, default=DEFAULT_MAX_CANDIDATES)
    p.add_argument('--cfg-options', '--cfg_options', dest='cfg_options', action=DictAction)
    args = p.parse_args(argv)
    cfg, model, dataset, _ = prepare_test(args.config, args.checkpoint, args.cfg_options,
                                          device='cpu')
    thr = model.test_cfg.get('score_thr', 0.1)
    counts = []
    with torch.no_grad():
        for data in tqdm(build_test_dataloader(dataset, cfg.data, 'test'), desc='candidates'):
            img = data['img'][0] if isinstance(data['img'], list) else data['img']
            outputs = model.forward_heads(model.extract_feat(img))
            scores = flatten_cate_preds([points_nms(c.sigmoid()) for c in outputs.cate_preds])
            counts += (scores > thr).flatten(1).sum(1).tolist()
    counts = np.array(counts)
    print(json.dumps(dict(images=len(counts), score_thr=thr, cap=args.cap,
                          max=int(counts.max()), median=float(np.median(counts)),
                          p99=float(np.percentile(counts, 99)),
                          above_cap=int((counts > args.cap).sum()))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
