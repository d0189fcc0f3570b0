"""DecoupledSOLOHead: names, shapes, the x·y mask product in loss and inference."""
import math

import numpy as np
import torch
import torch.nn.functional as F

from mmdet_solo.models.heads import DecoupledSOLOHead, DecoupledSOLOOutputs
from mmdet_solo.registry import HEADS
from mmdet_solo.structures import InstanceResult

from test_solo_head import CONFIG_ARGS, SMALL_ARGS, TEST_CFG, fpn_feats, gt_for, spec_of


def test_parameter_names_match_original():
    head = HEADS.build(dict(type='DecoupledSOLOHead', **CONFIG_ARGS))
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == \
        spec_of('decoupled_solo_r50_fpn_8gpu_1x')


def test_init_weights():
    head = DecoupledSOLOHead(**SMALL_ARGS)
    head.init_weights()
    prior = -math.log(99)
    assert torch.allclose(head.dsolo_cate.bias, torch.full((3,), prior))
    for m in list(head.dsolo_ins_list_x) + list(head.dsolo_ins_list_y):
        assert torch.allclose(m.bias, torch.full_like(m.bias, prior))


def test_forward_shapes():
    head = DecoupledSOLOHead(**SMALL_ARGS)
    outs = head(fpn_feats())
    assert isinstance(outs, DecoupledSOLOOutputs)
    cate, xs, ys = outs
    sizes = [(16, 24), (16, 24), (8, 12), (4, 6), (4, 6)]
    assert [tuple(p.shape) for p in xs] == [(2, s, *hw) for s, hw in zip((8, 6, 4, 3, 2), sizes)]
    assert [tuple(p.shape) for p in ys] == [tuple(p.shape) for p in xs]
    assert [tuple(p.shape) for p in cate] == [(2, 3, s, s) for s in (8, 6, 4, 3, 2)]


def test_loss_uses_x_of_column_times_y_of_row():
    head = DecoupledSOLOHead(**SMALL_ARGS)
    head.init_weights()
    outs = head(fpn_feats())
    _, xs, ys = outs
    gt = gt_for()
    losses = head.loss(outs, *gt, img_metas=[{}, {}])
    assigns, cate_t = head.get_targets(*gt, (64, 96))
    mask_t = [t for _, _, t in head._mask_targets(assigns, gt[2], [p.shape[-2:] for p in xs])]
    dices = []
    for lvl, s in enumerate(head.seg_num_grids):
        for k, (b, cell) in enumerate((cate_t[lvl].flatten(1) != 3).nonzero().tolist()):
            p = xs[lvl][b, cell % s].sigmoid() * ys[lvl][b, cell // s].sigmoid()
            t = mask_t[lvl][k].float()
            dices.append(1 - 2 * (p * t).sum() / ((p * p).sum() + 1e-3 + (t * t).sum() + 1e-3))
    assert torch.allclose(losses['loss_ins'], torch.stack(dices).mean() * 3.0, rtol=1e-5)
    assert torch.isfinite(losses['loss_cate'])
    sum(losses.values()).backward()
    assert head.dsolo_ins_list_x[0].weight.grad is not None


def test_loss_without_any_positive_is_zero_but_connected():
    head = DecoupledSOLOHead(**SMALL_ARGS)
    outs = head(fpn_feats())
    boxes, labels, masks = gt_for()
    losses = head.loss(outs, [boxes[1]] * 2, [labels[1]] * 2, [masks[1]] * 2, img_metas=[{}, {}])
    assert losses['loss_ins'].item() == 0 and losses['loss_ins'].requires_grad
    assert torch.isfinite(losses['loss_cate'])
    sum(losses.values()).backward()
    assert head.dsolo_ins_list_y[0].weight.grad is not None


def test_candidate_masks_are_resized_x_times_resized_y():
    head = DecoupledSOLOHead(**SMALL_ARGS)
    g = torch.Generator().manual_seed(0)
    sizes = [(64, 96), (64, 96), (32, 48), (16, 24), (16, 24)]
    xs = [torch.randn(2, s, h, w, generator=g) for s, (h, w) in zip(head.seg_num_grids, sizes)]
    ys = [torch.randn(2, s, h, w, generator=g) for s, (h, w) in zip(head.seg_num_grids, sizes)]
    cells = torch.tensor([0, 9, 63, 64, 64, 99, 125, 128])      # levels 0, 0, 0, 1, 1, 2, 3, 4
    cate = [torch.zeros(2, 3, s, s) for s in head.seg_num_grids]
    ours = head._candidate_masks(DecoupledSOLOOutputs(cate, xs, ys), 1, cells)
    offsets = np.cumsum([0] + [s * s for s in head.seg_num_grids])
    for k, c in enumerate(cells.tolist()):
        lvl = int(np.searchsorted(offsets, c, side='right') - 1)
        s, local = head.seg_num_grids[lvl], c - offsets[lvl]
        up = lambda p: F.interpolate(p[1:2].sigmoid(), size=(64, 96), mode='bilinear')[0]
        assert torch.equal(ours[k], up(xs[lvl])[local % s] * up(ys[lvl])[local // s])


def test_predict_returns_one_result_per_image():
    head = DecoupledSOLOHead(**SMALL_ARGS)
    head.init_weights()
    with torch.no_grad():
        head.dsolo_cate.bias.fill_(0.0)
        for m in list(head.dsolo_ins_list_x) + list(head.dsolo_ins_list_y):
            m.bias.fill_(2.0)
        outs = head(fpn_feats())
    metas = [dict(img_shape=(60, 90, 3), ori_shape=(30, 45, 3))] * 2
    results = head.predict(outs, metas, TEST_CFG, rescale=True)
    assert len(results) == 2 and all(isinstance(r, InstanceResult) for r in results)
    assert len(results[0]) > 0 and results[0].masks.shape[1:] == (30, 45)
    assert [len(r) for r in head.predict(outs, metas, dict(TEST_CFG, score_thr=1.0))] == [0, 0]
