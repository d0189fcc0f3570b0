"""Make the MMDetection 3.x reference outputs in ``tests/data/mmdet3/`` (not run in CI).

Needs a throwaway virtual environment with MMDetection 3.3.0 (never inside the repo)::

    python3 -m venv /tmp/mmdet3venv
    /tmp/mmdet3venv/bin/pip install torch==2.14.1 torchvision==0.29.1 \
        mmengine mmcv-lite==2.1.0 mmdet==3.3.0
    /tmp/mmdet3venv/bin/python tools/dev/make_mmdet3_reference.py

``mmcv-lite`` has no compiled ops; SOLO inference needs none, so ``mmcv._ext`` is stubbed
(configs with DCN are skipped). For each config it builds mmdet's own model from mmdet's
own config file, fills every parameter with the deterministic weights of
``tests/data/golden/detweights.py`` under **mmdet's** key names (salt ``'mmdet3:'``),
runs ``mmdet.apis.inference_detector`` on ``tests/data/golden/public.jpg`` and writes
``<config>/spec.json`` (keys and shapes in mmdet's order) and ``<config>/infer.json``
(labels, scores, RLE masks).
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, 'tests', 'data', 'mmdet3')
IMAGE = os.path.join(ROOT, 'tests', 'data', 'golden', 'public.jpg')
SALT = 'mmdet3:'
# mmdet config (relative to mmdet's packaged configs) -> key of its category-output bias
CONFIGS = {
    'solo_r50_fpn_1x_coco': 'solo/solo_r50_fpn_1x_coco.py',
    'decoupled-solo_r50_fpn_1x_coco': 'solo/decoupled-solo_r50_fpn_1x_coco.py',
    'decoupled-solo-light_r50_fpn_3x_coco': 'solo/decoupled-solo-light_r50_fpn_3x_coco.py',
    'solov2_r50_fpn_1x_coco': 'solov2/solov2_r50_fpn_1x_coco.py',
    'solov2-light_r18_fpn_ms-3x_coco': 'solov2/solov2-light_r18_fpn_ms-3x_coco.py',
}
CATE_BIAS_KEYS = ('mask_head.conv_cls.bias',)


def _stub_mmcv_ext() -> None:
    """mmcv-lite ships no ``mmcv._ext``; SOLO inference calls none of its functions."""
    stub = types.ModuleType('mmcv._ext')
    stub.__file__ = os.path.join(ROOT, 'mmcv_ext_stub.py')

    def _missing(name: str):
        if name.startswith('__'):
            raise AttributeError(name)
        return lambda *args, **kwargs: None

    stub.__getattr__ = _missing  # type: ignore[attr-defined]
    sys.modules['mmcv._ext'] = stub


def _detweights():
    spec = importlib.util.spec_from_file_location(
        'detweights', os.path.join(ROOT, 'tests', 'data', 'golden', 'detweights.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rle(mask: np.ndarray) -> dict:
    import pycocotools.mask as mask_util
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': list(rle['size']), 'counts': rle['counts'].decode('ascii')}


def make_one(name: str, rel_cfg: str) -> None:
    import mmdet
    import torch
    from mmdet.apis import inference_detector
    from mmdet.registry import MODELS
    from mmengine.config import Config

    cfg_path = os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs', rel_cfg)
    cfg = Config.fromfile(cfg_path)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    spec = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    weights = _detweights().state_dict(spec, CATE_BIAS_KEYS, salt=SALT)
    model.load_state_dict(weights, strict=True)
    model.cfg = cfg
    model.eval()
    pipeline = [t for t in cfg.test_dataloader.dataset.pipeline if t.type != 'LoadAnnotations']
    cfg.test_dataloader.dataset.pipeline = pipeline
    with torch.no_grad():
        result = inference_detector(model, IMAGE)
    pred = result.pred_instances
    d = os.path.join(OUT_DIR, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'spec.json'), 'w') as f:
        json.dump({'mmdet_config': rel_cfg, 'salt': SALT, 'cate_bias_keys': list(CATE_BIAS_KEYS),
                   'spec': [[k, list(s)] for k, s in spec]}, f)
    masks = pred.masks.cpu().numpy()
    out = {
        'mmdet_version': mmdet.__version__, 'torch_version': torch.__version__,
        'image': 'tests/data/golden/public.jpg',
        'img_shape': list(result.metainfo['img_shape']),
        'ori_shape': list(result.metainfo['ori_shape']),
        'labels': pred.labels.cpu().tolist(),
        'scores': [float(s) for s in pred.scores.cpu()],
        'masks': [_rle(m) for m in masks],
    }
    with open(os.path.join(d, 'infer.json'), 'w') as f:
        json.dump(out, f)
    print(f'{name}: {len(out["labels"])} detections, img_shape {out["img_shape"]}')


def main() -> None:
    _stub_mmcv_ext()
    from mmdet.utils import register_all_modules
    register_all_modules()
    names = sys.argv[1:] or list(CONFIGS)
    for name in names:
        make_one(name, CONFIGS[name])


if __name__ == '__main__':
    main()
