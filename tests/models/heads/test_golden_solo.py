"""SOLO, Decoupled SOLO and Decoupled SOLO light against the original release
(tests/data/golden): losses of ``forward_train`` and detections of the inference path.

One R50 forward at 800x1216 takes 10-20 s on a CPU, so each config's forward is run once for
the losses (train mode) and once for inference (shared by infer.json and infer_strict.json).
"""
import numpy as np
import pytest
import torch

from golden_utils import (assert_losses_match_original, build_golden_model, compare_detections,
                          infer_meta, load_case)

CASES = ['solo_r50_fpn_8gpu_1x', 'decoupled_solo_r50_fpn_8gpu_1x',
         'decoupled_solo_light_r50_fpn_8gpu_3x']
R50_FULL = pytest.mark.slow  # the 800x1216 configs take > 20 s per test on two CPU cores
PARAMS = [pytest.param(n, marks=R50_FULL) if 'light' not in n else n for n in CASES]


@pytest.mark.parametrize('name', PARAMS)
def test_losses_match_original(name):
    assert_losses_match_original(name)


@pytest.mark.parametrize('name', PARAMS)
def test_inference_matches_original(name):
    case = load_case(name)
    model = build_golden_model(name)
    model.eval()
    img = torch.from_numpy(case.test_img)
    with torch.no_grad():
        outs = model.forward_heads(model.extract_feat(img))
    for which in ('infer_strict', 'infer'):
        ref = case.infer[which]
        assert ref['preprocessing']['input_tensor_shape'] == list(img.shape)
        result = model.bbox_head.predict(outs, [infer_meta(ref)], dict(ref['test_cfg']),
                                         rescale=True)[0]
        compare_detections(result, ref)
        if which == 'infer':   # capped at max_per_img: our first N are the original's first N
            diag = ref['diagnostics']
            assert len(result) == diag['n_final']
            if diag['score_at_cap'] is not None:
                assert abs(float(result.scores[-1]) - diag['score_at_cap']) <= 1e-3


def test_simple_test_path_light():
    """The detector's own ``simple_test`` (light config: 512x768, fast enough)."""
    name = 'decoupled_solo_light_r50_fpn_8gpu_3x'
    case = load_case(name)
    model = build_golden_model(name)
    model.eval()
    ref = case.infer['infer_strict']
    old = model.test_cfg
    model.test_cfg = dict(ref['test_cfg'])
    try:
        result = model.simple_test(torch.from_numpy(case.test_img), [infer_meta(ref)], rescale=True)[0]
    finally:
        model.test_cfg = old
    compare_detections(result, ref)
    assert result.masks.shape[1:] == tuple(ref['preprocessing']['ori_shape'][:2])
    assert np.all(np.diff(result.scores) <= 0)
