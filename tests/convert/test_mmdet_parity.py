"""MMDetection 3.x checkpoints through ``init_detector`` give mmdet 3.x's own outputs.

``tests/data/mmdet3/<config>/`` holds mmdet 3.3.0's key names and shapes (``spec.json``) and its
inference on ``public.jpg`` with deterministic weights (``infer.json``), made by
``tools/dev/make_mmdet3_reference.py``. Here the same weights are written as an mmdet checkpoint,
loaded into our MMDetection-matching config and run through our pipeline.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from conftest import IMAGE, ROOT, mmdet3_case, weights_for_spec
from golden_utils import compare_detections
from mmdet_solo.apis import inference_detector, init_detector

CASES = {
    'solo_r50_fpn_1x_coco': 'configs/mmdet/solo_r50_fpn_1x_coco.py',
    'decoupled-solo_r50_fpn_1x_coco': 'configs/mmdet/decoupled-solo_r50_fpn_1x_coco.py',
    'decoupled-solo-light_r50_fpn_3x_coco': 'configs/mmdet/decoupled-solo-light_r50_fpn_3x_coco.py',
    'solov2_r50_fpn_1x_coco': 'configs/mmdet/solov2_r50_fpn_1x_coco.py',
    'solov2-light_r18_fpn_ms-3x_coco': 'configs/mmdet/solov2-light_r18_fpn_ms-3x_coco.py',
}


def _write_mmdet_checkpoint(case: dict, path: str) -> None:
    sd = weights_for_spec(case['spec'], case['cate_bias_keys'], case['salt'])
    # mmdet 2.x/3.x container: meta + state_dict
    torch.save({'meta': {'mmdet_version': '3.3.0', 'dataset_meta': {'classes': None}},
                'state_dict': sd}, path)


# the three full-resolution R50 cases take ~40 s each on a CPU
_SLOW = {'solo_r50_fpn_1x_coco', 'decoupled-solo_r50_fpn_1x_coco', 'solov2_r50_fpn_1x_coco'}


@pytest.mark.parametrize('name', [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW else n
                                  for n in sorted(CASES)])
def test_mmdet3_parity(name, tmp_path):
    case = mmdet3_case(name)
    ckpt = str(tmp_path / f'{name}.pth')
    _write_mmdet_checkpoint(case, ckpt)
    # contiguous weights, as mmdet's: channels_last (our CPU default) rounds differently, which
    # can swap the last of the 100 detections with one of a near-equal score
    model = init_detector(os.path.join(ROOT, CASES[name]), ckpt, device='cpu',
                          cfg_options={'channels_last': False})
    own = model.state_dict()
    # every key maps: the converted dict covers the model exactly
    from mmdet_solo.utils.convert import compare_state_dicts, to_solo
    converted, unmatched, fmt = to_solo(weights_for_spec(case['spec'], (), case['salt']))
    assert fmt == 'mmdet'
    report = compare_state_dicts(converted, own, fmt, unmatched)
    assert report.ok, report.format()

    result = inference_detector(model, IMAGE)
    ref = case['infer']
    assert list(result.masks.shape[1:]) == ref['ori_shape'][:2]
    # in order, except inside runs of near-equal scores (their order depends on rounding)
    dets = [dict(label=int(lab), score=float(sc), rle=rle)
            for lab, sc, rle in zip(ref['labels'], ref['scores'], ref['masks'])]
    compare_detections(result, dict(detections=dets), score_atol=1e-3, min_iou=0.99)
    assert np.isfinite(result.scores).all()
