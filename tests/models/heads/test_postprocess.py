"""select_candidates / segm_postprocess on hand-made predictions with hand-computed results."""
import math

import numpy as np
import pytest
import torch

from mmdet_solo.models.heads.postprocess import segm_postprocess, select_candidates
from mmdet_solo.structures import InstanceResult

CFG = dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, update_thr=0.05, kernel='gaussian',
           sigma=2.0, max_per_img=100)


def _block(value, y0, y1, x0, x1, size=(8, 8), base=0.0):
    m = torch.full(size, base)
    m[y0:y1, x0:x1] = value
    return m


def test_select_candidates_strict_threshold_row_major():
    scores = torch.tensor([[0.1, 0.3, 0.05],
                           [0.0, 0.0, 0.0],
                           [0.2, 0.1000001, 0.9]])
    cells, labels, sc = select_candidates(scores, 0.1)
    assert cells.tolist() == [0, 2, 2, 2]                  # 0.1 itself is not kept
    assert labels.tolist() == [1, 0, 1, 2]
    assert torch.allclose(sc, torch.tensor([0.3, 0.2, 0.1000001, 0.9]))
    cells, labels, sc = select_candidates(torch.zeros(4, 3), 0.1)
    assert len(cells) == len(labels) == len(sc) == 0


def _scoring_case():
    """Candidates on an 8x8 (1/4) grid:
    0: 9 px at 0.9 and 0.7 halves (+ sub-threshold 0.3 pixels), stride 8, class 0, score 0.8
    1: 8 px at 0.6, stride 8 → area not > stride, dropped
    2: 16 px at 0.7, stride 8, class 1, score 0.5, disjoint from 0
    3: everything 0.4 → empty binary mask, dropped
    4: copy of 0, class 0, score 0.6 → decayed by exp(-2) (IoU 1 with 0)
    5: copy of 0, class 0, score 0.3 → decayed by exp(-2), below update_thr
    6: 17 px at 0.8, stride 16 → 17 > 16 kept, class 2, score 0.25, disjoint
    """
    m0 = torch.full((8, 8), 0.3)
    m0[0:3, 0:3] = 0.9
    m0[2, 0:3] = 0.6                                       # 6 px at 0.9, 3 at 0.6 → mean 0.8
    m1 = _block(0.6, 0, 2, 4, 8)
    m2 = _block(0.7, 4, 8, 0, 4)
    m3 = torch.full((8, 8), 0.4)
    m6 = _block(0.8, 4, 8, 4, 8)
    m6[3, 7] = 0.8                                         # 17 px
    masks = torch.stack([m0, m1, m2, m3, m0.clone(), m0.clone(), m6])
    labels = torch.tensor([0, 0, 1, 0, 0, 0, 2])
    scores = torch.tensor([0.8, 0.9, 0.5, 0.95, 0.6, 0.3, 0.25])
    strides = torch.tensor([8., 8., 8., 8., 8., 8., 16.])
    return masks, labels, scores, strides


def test_scores_stride_filter_maskness_nms_update_thr():
    masks, labels, scores, strides = _scoring_case()
    res = segm_postprocess(masks, labels, scores, strides, (32, 32), (32, 32), CFG, rescale=True)
    assert isinstance(res, InstanceResult)
    # 0: 0.8 * 0.8 = 0.64; 4: 0.6 * 0.8 * e^-2; 2: 0.5 * 0.7 = 0.35; 6: 0.25 * 0.8 = 0.2
    expected = [(0, 0.64), (1, 0.35), (2, 0.2), (0, 0.48 * math.exp(-2))]
    assert res.labels.tolist() == [lab for lab, _ in expected]
    np.testing.assert_allclose(res.scores, [s for _, s in expected], rtol=1e-5)
    assert res.masks.shape == (4, 32, 32) and res.masks.dtype == bool


def test_max_per_img_and_nms_pre():
    masks, labels, scores, strides = _scoring_case()
    res = segm_postprocess(masks, labels, scores, strides, (32, 32), (32, 32),
                           dict(CFG, max_per_img=2))
    np.testing.assert_allclose(res.scores, [0.64, 0.35], rtol=1e-5)
    # nms_pre=2 keeps the two best after maskness, 0 (0.64) and its copy 4 (0.48), which decays
    res = segm_postprocess(masks, labels, scores, strides, (32, 32), (32, 32),
                           dict(CFG, nms_pre=2))
    np.testing.assert_allclose(res.scores, [0.64, 0.48 * math.exp(-2)], rtol=1e-5)
    assert res.labels.tolist() == [0, 0]

def _resize_1d(v, out_len):
    """Bilinear (align_corners=False, edge-clamped) resize of a 1-D profile, with numpy."""
    src = (np.arange(out_len) + 0.5) * len(v) / out_len - 0.5
    return np.interp(np.clip(src, 0, len(v) - 1), np.arange(len(v)), v)


def _expected(block_1d_y, block_1d_x, crop, out):
    """Separable soft block → x4 to the padded size → crop → resize → > 0.5."""
    py = _resize_1d(_resize_1d(block_1d_y, 32)[:crop[0]], out[0])
    px = _resize_1d(_resize_1d(block_1d_x, 32)[:crop[1]], out[1])
    return np.outer(py, px) > 0.5


def test_upsample_crop_and_resize():
    # soft 1.0 on a 4x4 block at the top-left and one at the bottom-right of an 8x8 grid
    # (padded input 32x32, image 24x28 inside it, original image 48x56)
    masks = torch.stack([_block(1.0, 0, 4, 0, 4), _block(1.0, 4, 8, 4, 8)])
    labels, scores, strides = torch.tensor([3, 5]), torch.tensor([0.9, 0.8]), torch.full((2,), 8.)
    res = segm_postprocess(masks, labels, scores, strides, (24, 28, 3), (48, 56, 3), CFG, True)
    first, last = np.r_[1., 1, 1, 1, 0, 0, 0, 0], np.r_[0., 0, 0, 0, 1, 1, 1, 1]
    exp0 = _expected(first, first, (24, 28), (48, 56))
    exp1 = _expected(last, last, (24, 28), (48, 56))
    # x4: 1-D profile > 0.5 on 0..15; crop; x2: rows/cols 0..31, corners rounded by bilinear
    assert exp0[:28, :28].all() and exp0[31, :20].all() and not exp0[31, 31]
    assert not exp0[32:].any() and not exp0[:, 32:].any()
    assert exp1[36:, 36:].all() and not exp1[:32].any() and not exp1[:, :32].any()
    np.testing.assert_array_equal(res.labels, [3, 5])
    np.testing.assert_array_equal(res.masks[0], exp0)
    np.testing.assert_array_equal(res.masks[1], exp1)
    assert res.bboxes.tolist() == [[0, 0, 32, 32], [32, 32, 56, 48]]
    # rescale=False: masks at img_shape (cropped, not resized)
    res = segm_postprocess(masks, labels, scores, strides, (24, 28, 3), (48, 56, 3), CFG, False)
    assert res.masks.shape == (2, 24, 28)
    np.testing.assert_array_equal(res.masks[0], _expected(first, first, (24, 28), (24, 28)))
    np.testing.assert_array_equal(res.masks[1], _expected(last, last, (24, 28), (24, 28)))


@pytest.mark.parametrize('case', ['no_candidates', 'all_too_small', 'all_below_update_thr'])
def test_empty_results(case):
    strides = torch.full((2,), 8.)
    if case == 'no_candidates':
        masks, labels, scores = torch.zeros(0, 8, 8), torch.zeros(0, dtype=torch.long), torch.zeros(0)
        strides = torch.zeros(0)
    elif case == 'all_too_small':
        masks = torch.stack([_block(0.9, 0, 2, 0, 4), _block(0.4, 0, 8, 0, 8)])
        labels, scores = torch.tensor([0, 1]), torch.tensor([0.9, 0.9])
    else:
        masks = torch.stack([_block(0.9, 0, 4, 0, 4), _block(0.9, 4, 8, 4, 8)])
        labels, scores = torch.tensor([0, 1]), torch.tensor([0.05, 0.04])   # x 0.9 < 0.05
    res = segm_postprocess(masks, labels, scores, strides, (30, 31), (60, 62), CFG, True)
    assert len(res) == 0 and res.masks.shape == (0, 60, 62)
    assert res.scores.shape == (0,) and res.labels.shape == (0,) and res.bboxes.shape == (0, 4)


@pytest.mark.parametrize('cfg, message', [
    (dict(score_thresh=0.3), r"test_cfg.score_thresh: unknown key \(did you mean 'score_thr'\?\)"),
    (dict(max_per_img=0), r'test_cfg.max_per_img=0: expected an int >= 1'),
    (dict(max_per_img=2.5), r'test_cfg.max_per_img=2.5: expected an int >= 1'),
    (dict(nms_pre=True), r'test_cfg.nms_pre=True: expected an int >= 1'),
    (dict(mask_thr=1.0), r'test_cfg.mask_thr=1.0: expected a number in \[0, 1\)'),
    (dict(score_thr=-0.1), r'test_cfg.score_thr=-0.1: expected a number in \[0, 1\]'),
    (dict(kernel='gauss'), r"test_cfg.kernel='gauss': expected 'gaussian' or 'linear'"),
    (dict(sigma=0), r'test_cfg.sigma=0: expected a number > 0'),
])
def test_test_cfg_is_checked_when_the_model_is_built(cfg, message):
    from golden_utils import ROOT

    from mmdet_solo.apis import init_detector
    from mmdet_solo.config import ConfigError
    options = {f'test_cfg.{k}': v for k, v in cfg.items()}
    with pytest.raises(ConfigError, match=message):
        init_detector(f'{ROOT}/configs/shapes/solov2_light_r18_shapes.py', None, 'cpu',
                      cfg_options=options)


def test_read_test_cfg_defaults_are_the_originals():
    from mmdet_solo.models.heads.postprocess import read_test_cfg
    defaults = {k: read_test_cfg({}, k) for k in ('nms_pre', 'score_thr', 'mask_thr',
                                                    'update_thr', 'kernel', 'sigma', 'max_per_img')}
    assert defaults == dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, update_thr=0.05,
                            kernel='gaussian', sigma=2.0, max_per_img=100)
    assert read_test_cfg(dict(mask_thr=0.4), 'mask_thr') == 0.4
    with pytest.raises(KeyError):
        read_test_cfg({}, 'mask_threshold')
