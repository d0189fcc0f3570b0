"""Matrix NMS: the original's outputs, a case computed by hand, degenerate input."""
import math
import os

import numpy as np
import pytest
import torch

from mmdet_solo.ops import matrix_nms

GOLDEN = os.path.join(os.path.dirname(__file__), '..', 'data', 'golden', 'matrix_nms.npz')


@pytest.mark.parametrize('case', [0, 1, 2])
def test_matches_original_release(case):
    d = np.load(GOLDEN)
    p = f'case{case}_'
    sum_masks = torch.from_numpy(d[p + 'sum_masks']) if bool(d[p + 'pass_sum_masks']) else None
    out = matrix_nms(torch.from_numpy(d[p + 'seg_masks']).bool(), torch.from_numpy(d[p + 'cate_labels']),
                     torch.from_numpy(d[p + 'cate_scores']), kernel=str(d[p + 'kernel']),
                     sigma=float(d[p + 'sigma']), sum_masks=sum_masks)
    np.testing.assert_allclose(out.numpy(), d[p + 'out_scores'], rtol=1e-5)


def _row_masks():
    """Four 1x8 masks: A cols 0-3, B cols 2-5, C = A (another class), D cols 4-7."""
    m = torch.zeros(4, 1, 8, dtype=torch.bool)
    m[0, 0, 0:4] = True
    m[1, 0, 2:6] = True
    m[2, 0, 0:4] = True
    m[3, 0, 4:8] = True
    return m, torch.tensor([0, 0, 1, 0]), torch.tensor([0.9, 0.8, 0.7, 0.6])


def test_hand_computed_gaussian_and_linear():
    masks, labels, scores = _row_masks()
    # IoU(A, B) = IoU(B, D) = 2/6; IoU(A, D) = 0; C is another class.
    # B decays by exp(-2 * (1/3)^2). D's only overlap is with B, whose own compensation IoU is
    # also 1/3, so the decay ratio is exactly 1 and D keeps its score.
    out = matrix_nms(masks, labels, scores, kernel='gaussian', sigma=2.0)
    expected = [0.9, 0.8 * math.exp(-2.0 / 9.0), 0.7, 0.6]
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    out = matrix_nms(masks, labels, scores, kernel='linear')
    np.testing.assert_allclose(out.numpy(), [0.9, 0.8 * 2 / 3, 0.7, 0.6], rtol=1e-6)


def test_mask_dtypes_and_given_areas_agree():
    masks, labels, scores = _row_masks()
    ref = matrix_nms(masks, labels, scores)
    for m in (masks.to(torch.uint8), masks.float()):
        torch.testing.assert_close(matrix_nms(m, labels, scores), ref)
    torch.testing.assert_close(matrix_nms(masks, labels, scores, sum_masks=masks.sum((1, 2)).float()), ref)


def test_empty_and_single():
    out = matrix_nms(torch.zeros(0, 4, 4, dtype=torch.bool), torch.zeros(0, dtype=torch.long), torch.zeros(0))
    assert out.shape == (0,)
    one = matrix_nms(torch.ones(1, 4, 4, dtype=torch.bool), torch.zeros(1, dtype=torch.long), torch.tensor([0.5]))
    assert one.tolist() == [0.5]


@pytest.mark.parametrize('kernel', ['gaussian', 'linear'])
def test_zero_area_and_duplicates_give_no_nan(kernel):
    masks = torch.zeros(4, 3, 3, dtype=torch.bool)
    masks[0, :2, :2] = True
    masks[1, :2, :2] = True           # exact duplicate of mask 0, same class
    masks[2, :2, :2] = True           # and another one
    # mask 3 has zero area
    labels = torch.zeros(4, dtype=torch.long)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    out = matrix_nms(masks, labels, scores, kernel=kernel)
    assert torch.isfinite(out).all()
    assert out[0] == pytest.approx(0.9)
    assert out[3] == pytest.approx(0.6)        # zero area: IoU 0 with everything, not NaN
    if kernel == 'linear':
        assert out[1] == 0 and out[2] == 0     # a duplicate (IoU 1) is suppressed completely


def test_input_errors():
    masks, labels, scores = _row_masks()
    with pytest.raises(ValueError, match='kernel'):
        matrix_nms(masks, labels, scores, kernel='gauss')
    with pytest.raises(ValueError, match=r'\(N, H, W\)'):
        matrix_nms(masks[:, 0], labels, scores)
    with pytest.raises(ValueError, match='cate_labels'):
        matrix_nms(masks, labels[:3], scores)
    with pytest.raises(TypeError, match='floating'):
        matrix_nms(masks, labels, torch.tensor([3, 2, 1, 0]))
