"""Helpers shared by the checkpoint-conversion tests."""
from __future__ import annotations

import importlib.util
import json
import os
from typing import Dict, List, Tuple

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MMDET3_DIR = os.path.join(ROOT, 'tests', 'data', 'mmdet3')
IMAGE = os.path.join(ROOT, 'tests', 'data', 'golden', 'public.jpg')


def detweights():
    spec = importlib.util.spec_from_file_location(
        'detweights', os.path.join(ROOT, 'tests', 'data', 'golden', 'detweights.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def weights_for_spec(spec: List[Tuple[str, Tuple[int, ...]]], cate_bias_keys=(), salt: str = ''
                     ) -> Dict[str, torch.Tensor]:
    """Deterministic weights (``detweights.py``) for ``(key, shape)`` pairs."""
    return detweights().state_dict(spec, tuple(cate_bias_keys), salt=salt)


def model_spec(model: torch.nn.Module) -> List[Tuple[str, Tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def mmdet3_case(name: str) -> dict:
    d = os.path.join(MMDET3_DIR, name)
    with open(os.path.join(d, 'spec.json')) as f:
        spec = json.load(f)
    with open(os.path.join(d, 'infer.json')) as f:
        infer = json.load(f)
    return dict(spec=[(k, tuple(s)) for k, s in spec['spec']], salt=spec['salt'],
                cate_bias_keys=spec['cate_bias_keys'], infer=infer)


def decode_masks(rles: List[dict]) -> np.ndarray:
    import pycocotools.mask as mask_util
    if not rles:
        return np.zeros((0, 0, 0), dtype=bool)
    return np.stack([mask_util.decode({'size': r['size'], 'counts': r['counts'].encode()})
                     for r in rles]).astype(bool)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
