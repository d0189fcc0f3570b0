"""SOLOv2 against the original release: targets, losses and inference (tests/data/golden)."""
import numpy as np
import pytest
import torch

from golden_utils import (assert_losses_match_original, build_golden_model, compare_detections,
                          infer_meta, load_case)

CASES = ['solov2_r50_fpn_8gpu_1x', 'solov2_light_448_r18_fpn_8gpu_3x']


@pytest.mark.parametrize('name', CASES)
def test_targets_match_original(name):
    case = load_case(name)
    head = build_golden_model(name).bbox_head
    t = case.train
    h, w = (int(s) for s in t['target_mask_feat_size'])
    assigns, cates = head.get_targets([torch.from_numpy(t['gt_bboxes'])],
                                      [torch.from_numpy(t['gt_labels_0based'])], [t['gt_masks']],
                                      (h * 4, w * 4))
    levels, cates = assigns[0], [c[0] for c in cates]
    # per image the targets of all (instance, cell) pairs, level after level
    pair_masks = head._mask_targets(assigns, [t['gt_masks']], (h, w))[0]
    masks = torch.split(pair_masks, [len(level.inst_inds) for level in levels])
    for lvl, (level, cate) in enumerate(zip(levels, cates)):
        ref_cate = t[f'target_cate_label_L{lvl}'].astype(np.int64)
        ours = cate.numpy().copy()
        ours[ours == head.num_classes] = -1          # background: ours num_classes, original 0
        np.testing.assert_array_equal(ours + 1, ref_cate, err_msg=f'category grid, level {lvl}')
        np.testing.assert_array_equal(level.cells.numpy(), t[f'target_grid_order_L{lvl}'],
                                      err_msg=f'grid order, level {lvl}')
        pos = np.flatnonzero((level.cell_owner() >= 0).numpy())
        np.testing.assert_array_equal(pos, t[f'target_pos_cells_L{lvl}'])
        sums = masks[lvl].flatten(1).sum(1).numpy()
        np.testing.assert_array_equal(sums, t[f'target_ins_target_pixelsum_L{lvl}'])
        assert len(sums) == int(t[f'target_ins_target_count_L{lvl}'])


@pytest.mark.parametrize('name', CASES)
def test_losses_match_original(name):
    assert_losses_match_original(name)


@pytest.mark.parametrize('name', CASES)
@pytest.mark.parametrize('which', ['infer_strict', 'infer'])
def test_inference_matches_original(name, which):
    case = load_case(name)
    model = build_golden_model(name)
    model.eval()
    ref = case.infer[which]
    model.test_cfg = dict(ref['test_cfg'])
    try:
        result = model.simple_test(torch.from_numpy(case.test_img), [infer_meta(ref)], rescale=True)[0]
    finally:
        model.test_cfg = dict(case.infer['infer']['test_cfg'])
    compare_detections(result, ref)
