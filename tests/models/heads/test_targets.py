"""Grid-cell assignment and mask-target rescaling on hand-made ground truth."""
import cv2
import numpy as np
import pytest
import torch

from mmdet_solo.models.heads.targets import assign_grid_cells, rescale_masks


def _square(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), np.uint8)
    m[y0:y1 + 1, x0:x1 + 1] = 1
    return m


def _hand_made_gt():
    """64x64 input. A: 16x16 square at rows/cols 8..23 (box side 15, centre 15.5);
    B (later): 8x8 square at 20..27 (side 7, centre 23.5); C: box side 10, empty mask."""
    masks = np.stack([_square(64, 64, 8, 23, 8, 23), _square(64, 64, 20, 27, 20, 27),
                      np.zeros((64, 64), np.uint8)])
    boxes = torch.tensor([[8., 8., 23., 23.], [20., 20., 27., 27.], [0., 0., 10., 10.]])
    labels = torch.tensor([3, 7, 9])
    return boxes, masks, labels


def test_positive_cells_levels_and_last_wins():
    boxes, masks, labels = _hand_made_gt()
    # sqrt areas: A 15, B 7, C 10; ranges inclusive at both ends
    levels = assign_grid_cells(boxes, masks, scale_ranges=((7, 15), (15, 100), (16, 100)),
                               num_grids=(4, 2, 2), sigma=0.2, input_size=(64, 64))
    lvl0, lvl1, lvl2 = levels
    # level 0 (S=4, 16 px cells): A centre cell (0, 0), its sigma box reaches row/col 1 →
    # cells 0, 1, 4, 5; B only cell (1, 1) = 5; C (empty mask) nothing
    assert lvl0.inst_inds.tolist() == [0, 0, 0, 0, 1]
    assert lvl0.cells.tolist() == [0, 1, 4, 5, 5]
    assert lvl0.cell_owner().tolist() == [0, 1, -1, -1, 2, 4] + [-1] * 10
    cate = lvl0.cate_target(labels, num_classes=10)
    expected = torch.full((4, 4), 10)
    expected[0, 0] = expected[0, 1] = expected[1, 0] = 3
    expected[1, 1] = 7                                   # B, the later instance, wins
    assert torch.equal(cate, expected)
    # level 1 (S=2): only A (15 is the inclusive lower bound), one cell
    assert lvl1.inst_inds.tolist() == [0] and lvl1.cells.tolist() == [0]
    assert lvl1.cate_target(labels, 10).tolist() == [[3, 10], [10, 10]]
    # level 2: lower bound 16 > 15, nothing
    assert len(lvl2.cells) == 0
    assert (lvl2.cate_target(labels, 10) == 10).all()


def test_centre_region_limited_to_centre_cell_plus_minus_one():
    masks = _square(64, 64, 16, 47, 16, 47)[None]           # centre 31.5 → cell 3 of 8
    boxes = torch.tensor([[16., 16., 47., 47.]])
    # sigma 1: half size 15.5 px → box rows 2..5, clipped to 3 ± 1 = 2..4
    (lvl,) = assign_grid_cells(boxes, masks, ((1, 100),), (8,), sigma=1.0, input_size=(64, 64))
    assert sorted(lvl.cells.tolist()) == [r * 8 + c for r in (2, 3, 4) for c in (2, 3, 4)]


def test_centre_of_mass_not_box_centre_and_rectangular_input():
    # an L-shaped mask: centre of mass differs from the box centre; input 32 x 128 (H x W)
    m = np.zeros((32, 128), np.uint8)
    m[0:4, 0:128] = 1                                       # top bar, 512 px
    m[0:32, 0:4] = 1                                        # left bar
    boxes = torch.tensor([[0., 0., 127., 31.]])
    (lvl,) = assign_grid_cells(boxes, m[None], ((1, 1000),), (4,), sigma=0.0, input_size=(32, 128))
    ys, xs = np.nonzero(m)
    cy, cx = ys.mean(), xs.mean()
    assert lvl.cells.tolist() == [int(cy / 32 // 0.25) * 4 + int(cx / 128 // 0.25)]


def test_no_gt():
    levels = assign_grid_cells(torch.zeros((0, 4)), np.zeros((0, 16, 16), np.uint8),
                               ((1, 100), (50, 200)), (4, 2), 0.2, (16, 16))
    assert all(len(lvl.cells) == 0 for lvl in levels)
    assert (levels[0].cate_target(torch.zeros(0, dtype=torch.long), 5) == 5).all()


@pytest.mark.parametrize('scale,out_size', [(0.5, (20, 30)), (1 / 8, (8, 8)), (0.25, (4, 5))])
def test_rescale_masks_equals_cv2_per_mask(scale, out_size):
    rng = np.random.default_rng(0)
    masks = (rng.random((3, 37, 53)) > 0.6).astype(np.uint8)
    masks[1] = 0
    masks[2, 5:30, 10:40] = 1
    out = rescale_masks(masks, scale, out_size)
    assert out.shape == (3, *out_size) and out.dtype == np.uint8
    new_w, new_h = int(53 * scale + 0.5), int(37 * scale + 0.5)
    for k in range(3):
        ref = cv2.resize(masks[k], (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        expected = np.zeros(out_size, np.uint8)
        h, w = min(new_h, out_size[0]), min(new_w, out_size[1])
        expected[:h, :w] = ref[:h, :w]
        np.testing.assert_array_equal(out[k], expected)
    # tensors are accepted too
    np.testing.assert_array_equal(rescale_masks(torch.from_numpy(masks), scale, out_size), out)


def test_rescale_masks_more_than_cv2_max_channels():
    rng = np.random.default_rng(1)
    masks = (rng.random((600, 12, 16)) > 0.5).astype(np.uint8)
    out = rescale_masks(masks, 0.5, (6, 8))
    for k in (0, 127, 128, 511, 512, 599):
        np.testing.assert_array_equal(out[k], cv2.resize(masks[k], (8, 6),
                                                         interpolation=cv2.INTER_LINEAR))
    assert rescale_masks(np.zeros((0, 12, 16), np.uint8), 0.5, (6, 8)).shape == (0, 6, 8)
