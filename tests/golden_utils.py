"""Load the reference outputs of the original SOLO release (tests/data/golden) and compare.

The weights are deterministic (``detweights.py``, salt ``'public:'``) and use the original's
parameter names, which are also ours.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
from types import SimpleNamespace

import numpy as np
import pycocotools.mask as mask_util
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN_DIR = os.path.join(ROOT, 'tests', 'data', 'golden')
CONFIGS = {
    'solo_r50_fpn_8gpu_1x': 'configs/solo/solo_r50_fpn_8gpu_1x.py',
    'decoupled_solo_r50_fpn_8gpu_1x': 'configs/solo/decoupled_solo_r50_fpn_8gpu_1x.py',
    'decoupled_solo_light_r50_fpn_8gpu_3x': 'configs/solo/decoupled_solo_light_r50_fpn_8gpu_3x.py',
    'solov2_r50_fpn_8gpu_1x': 'configs/solov2/solov2_r50_fpn_8gpu_1x.py',
    'solov2_light_448_r18_fpn_8gpu_3x': 'configs/solov2/solov2_light_448_r18_fpn_8gpu_3x.py',
}


def _detweights():
    spec = importlib.util.spec_from_file_location('detweights', os.path.join(GOLDEN_DIR, 'detweights.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@functools.lru_cache(maxsize=None)
def load_case(name: str) -> SimpleNamespace:
    """Everything stored for one golden config."""
    d = os.path.join(GOLDEN_DIR, name)
    with open(os.path.join(d, 'train.json')) as f:
        train_json = json.load(f)
    infer = {}
    for fn in ('infer.json', 'infer_strict.json'):
        with open(os.path.join(d, fn)) as f:
            infer[fn[:-5]] = json.load(f)
    train = dict(np.load(os.path.join(d, 'train.npz')))
    input_file = os.path.join(d, 'infer_input.npz')
    test_img = np.load(input_file)['img'] if os.path.exists(input_file) else train['img']
    return SimpleNamespace(name=name, dir=d, train=train, train_json=train_json, infer=infer,
                           test_img=test_img, config=os.path.join(ROOT, CONFIGS[name]))


def golden_state_dict(name: str) -> dict:
    dw = _detweights()
    spec, cate_bias_keys = dw.load_spec(os.path.join(GOLDEN_DIR, name, 'spec.json'))
    return dw.state_dict(spec, cate_bias_keys, salt='public:')


@functools.lru_cache(maxsize=None)
def build_golden_model(name: str):
    """Our model from our config file with the golden weights loaded strictly."""
    from mmdet_solo.config import Config
    from mmdet_solo.models import build_detector
    cfg = Config.fromfile(load_case(name).config)
    cfg.model.pretrained = None
    model = build_detector(cfg.model, train_cfg=cfg.get('train_cfg'), test_cfg=cfg.get('test_cfg'))
    model.load_state_dict(golden_state_dict(name), strict=True)
    return model


def train_inputs(case: SimpleNamespace) -> dict:
    t = case.train
    return dict(img=torch.from_numpy(t['img']), img_metas=[case.train_json['img_meta']],
                gt_bboxes=[torch.from_numpy(t['gt_bboxes'])],
                gt_labels=[torch.from_numpy(t['gt_labels_0based'])], gt_masks=[t['gt_masks']])


def assert_losses_match_original(name: str, rtol: float = 1e-4) -> None:
    """Our ``forward_train`` losses on the golden batch equal the original's within ``rtol``."""
    case = load_case(name)
    model = build_golden_model(name)
    model.train()
    with torch.no_grad():
        losses = model.forward_train(**train_inputs(case))
    for key in ('loss_ins', 'loss_cate'):
        ref = float(case.train[key])
        assert abs(float(losses[key]) - ref) <= rtol * abs(ref), (key, float(losses[key]), ref)


def infer_meta(ref: dict) -> dict:
    p = ref['preprocessing']
    return dict(ori_shape=tuple(p['ori_shape']), img_shape=tuple(p['img_shape']),
                pad_shape=tuple(p['pad_shape']), scale_factor=p['scale_factor'], flip=False)


def decode_rle(rle: dict) -> np.ndarray:
    return mask_util.decode({'size': rle['size'], 'counts': rle['counts'].encode()}).astype(bool)


def compare_detections(result, ref: dict, score_atol: float = 1e-3, min_iou: float = 0.99) -> dict:
    """Check our ``InstanceResult`` against a golden infer*.json; returns the worst figures.

    Every reference detection is matched to one of ours with the same label and a score within
    ``score_atol`` (the best mask IoU among those not matched yet), so detections whose scores
    differ by rounding noise may come out in either order.
    """
    dets = ref['detections']
    assert len(result) == len(dets), f'{len(result)} detections, the original gives {len(dets)}'
    ref_masks = [decode_rle(d['rle']) for d in dets]

    def iou(a, b):
        union = np.logical_or(a, b).sum()
        return 1.0 if union == 0 else np.logical_and(a, b).sum() / union

    worst_iou, worst_score = 1.0, 0.0
    scores = np.asarray(result.scores, dtype=np.float64)
    unused = set(range(len(dets)))
    for k, det in enumerate(dets):
        cands = [u for u in unused if int(result.labels[u]) == det['label']
                 and abs(scores[u] - det['score']) <= score_atol]
        assert cands, (f'detection {k} (label {det["label"]}, score {det["score"]:.6f}) has no '
                       f'counterpart with the same label and a score within {score_atol}')
        ious = {u: iou(result.masks[u], ref_masks[k]) for u in cands}
        best = max(cands, key=lambda u: (ious[u], -abs(u - k)))
        unused.remove(best)
        worst_iou = min(worst_iou, ious[best])
        worst_score = max(worst_score, abs(scores[best] - det['score']))
    assert worst_iou >= min_iou, f'mask IoU {worst_iou} < {min_iou}'
    return dict(worst_iou=worst_iou, worst_score=worst_score)
