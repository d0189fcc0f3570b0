"""SOLOHead: names, shapes, targets against the original, losses, inference plumbing."""
import json
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmdet_solo.models.heads import SOLOHead, SOLOOutputs
from mmdet_solo.registry import HEADS
from mmdet_solo.structures import InstanceResult

GOLDEN = os.path.join(os.path.dirname(__file__), '..', '..', 'data', 'golden')
LOSSES = dict(loss_ins=dict(type='DiceLoss', use_sigmoid=True, loss_weight=3.0),
              loss_cate=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                             loss_weight=1.0))
CONFIG_ARGS = dict(num_classes=80, in_channels=256, stacked_convs=7, seg_feat_channels=256,
                   strides=[8, 8, 16, 32, 32], sigma=0.2, num_grids=[40, 36, 24, 16, 12],
                   scale_ranges=((1, 96), (48, 192), (96, 384), (192, 768), (384, 2048)),
                   cate_down_pos=0, **LOSSES)
SMALL_ARGS = dict(CONFIG_ARGS, in_channels=32, seg_feat_channels=32, stacked_convs=2,
                  num_classes=3, num_grids=[8, 6, 4, 3, 2],
                  scale_ranges=((1, 24), (12, 48), (24, 96), (48, 192), (96, 512)))
TEST_CFG = dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, update_thr=0.05, kernel='gaussian',
                sigma=2.0, max_per_img=100)


def fpn_feats(batch=2, channels=32, h=64, w=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, channels, h // s, w // s, generator=g) for s in (4, 8, 16, 32, 64)]


def gt_for(h=64, w=96):
    """Image 0: two instances (one mid-size, one large); image 1: no instance."""
    masks = np.zeros((2, h, w), np.uint8)
    masks[0, 10:30, 20:40] = 1
    masks[1, 5:60, 10:90] = 1
    boxes = torch.tensor([[20., 10., 39., 29.], [10., 5., 89., 59.]])
    return ([boxes, torch.zeros((0, 4))], [torch.tensor([0, 2]), torch.zeros(0, dtype=torch.long)],
            [masks, np.zeros((0, h, w), np.uint8)])


def spec_of(name):
    with open(os.path.join(GOLDEN, name, 'spec.json')) as f:
        d = json.load(f)
    return {k[len('bbox_head.'):]: tuple(s) for k, s in d['spec'] if k.startswith('bbox_head.')}


def test_parameter_names_match_original():
    head = HEADS.build(dict(type='SOLOHead', **CONFIG_ARGS))
    ours = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert ours == spec_of('solo_r50_fpn_8gpu_1x')


def test_init_weights():
    head = SOLOHead(**SMALL_ARGS)
    head.init_weights()
    prior = -math.log(99)
    assert torch.allclose(head.solo_cate.bias, torch.full((3,), prior))
    assert all(torch.allclose(m.bias, torch.full_like(m.bias, prior)) for m in head.solo_ins_list)
    assert head.ins_convs[0].conv.weight.std() < 0.02 and head.ins_convs[0].conv.bias is None


def test_bad_arguments():
    with pytest.raises(ValueError, match='num_grids'):
        SOLOHead(**dict(SMALL_ARGS, num_grids=None))
    with pytest.raises(ValueError, match='one entry per level'):
        SOLOHead(**dict(SMALL_ARGS, num_grids=[8, 6]))
    with pytest.raises(ValueError, match='5 FPN levels'):
        SOLOHead(**dict(SMALL_ARGS, num_grids=[8, 6, 4, 3], strides=[8, 8, 16, 32],
                        scale_ranges=SMALL_ARGS['scale_ranges'][:4]))
    for dead in ('with_deform', 'base_edge_list'):   # accepted and unused before: now refused
        with pytest.raises(TypeError, match=dead):
            SOLOHead(**dict(SMALL_ARGS, **{dead: False}))
    with pytest.raises(ValueError, match='mask_feats'):
        SOLOHead(**SMALL_ARGS)(fpn_feats(), torch.zeros(2, 8, 16, 24))


def test_forward_shapes():
    head = SOLOHead(**SMALL_ARGS)
    outs = head(fpn_feats())
    assert isinstance(outs, SOLOOutputs)
    ins, cate = outs.mask_preds, outs.cate_preds
    assert [tuple(p.shape) for p in ins] == [(2, 64, 16, 24), (2, 36, 16, 24), (2, 16, 8, 12),
                                            (2, 9, 4, 6), (2, 4, 4, 6)]
    assert [tuple(p.shape) for p in cate] == [(2, 3, s, s) for s in (8, 6, 4, 3, 2)]


def test_loss_finite_and_differentiable():
    head = SOLOHead(**SMALL_ARGS)
    head.init_weights()
    outs = head(fpn_feats())
    losses = head.loss(outs, *gt_for(), img_metas=[{}, {}])
    assert set(losses) == {'loss_ins', 'loss_cate'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    assert head.solo_ins_list[0].weight.grad is not None


def test_loss_without_any_positive_is_zero_but_connected():
    head = SOLOHead(**SMALL_ARGS)
    outs = head(fpn_feats())
    boxes, labels, masks = gt_for()
    losses = head.loss(outs, [boxes[1]] * 2, [labels[1]] * 2, [masks[1]] * 2, img_metas=[{}, {}])
    assert losses['loss_ins'].item() == 0 and losses['loss_ins'].requires_grad
    assert torch.isfinite(losses['loss_cate']) and losses['loss_cate'] > 0
    sum(losses.values()).backward()
    assert head.solo_ins_list[0].weight.grad is not None


def test_loss_matches_direct_computation():
    """Dice on the positive cells' masks (mean over targets × 3) and focal / (num_pos + 1)."""
    head = SOLOHead(**SMALL_ARGS)
    head.init_weights()
    outs = head(fpn_feats())
    ins, cate = outs.mask_preds, outs.cate_preds
    gt = gt_for()
    losses = head.loss(outs, *gt, img_metas=[{}, {}])
    assigns, cate_t = head.get_targets(*gt, (64, 96))
    mask_t = [t for _, _, t in head._mask_targets(assigns, gt[2], [p.shape[-2:] for p in ins])]
    pos = [c.flatten(1) != 3 for c in cate_t]
    dices = []
    for lvl in range(5):
        for b, cell in pos[lvl].nonzero().tolist():
            k = int(pos[lvl][:b].sum() + pos[lvl][b, :cell].sum())
            p, t = ins[lvl][b, cell].sigmoid(), mask_t[lvl][k].float()
            dices.append(1 - 2 * (p * t).sum() / ((p * p).sum() + 1e-3 + (t * t).sum() + 1e-3))
    assert len(dices) > 0
    assert torch.allclose(losses['loss_ins'], torch.stack(dices).mean() * 3.0, rtol=1e-5)
    num_pos = sum(int(p.sum()) for p in pos)
    logits = torch.cat([c.permute(0, 2, 3, 1).reshape(-1, 3) for c in cate])
    onehot = F.one_hot(torch.cat([t.flatten() for t in cate_t]), 4)[:, :3].float()
    p = logits.sigmoid()
    pt = p * onehot + (1 - p) * (1 - onehot)
    focal = (0.25 * onehot + 0.75 * (1 - onehot)) * (1 - pt) ** 2 * \
        F.binary_cross_entropy_with_logits(logits, onehot, reduction='none')
    assert torch.allclose(losses['loss_cate'], focal.sum() / (num_pos + 1), rtol=1e-5)


def test_candidate_masks_identical_to_resizing_every_channel():
    """Resizing only the candidate channels gives the original's numbers bit for bit (PyTorch's
    CPU bilinear kernel is channel-count independent once the output is >= 64 px wide; every
    config's is, its narrowest being 112 px at 448 input)."""
    head = SOLOHead(**SMALL_ARGS)
    g = torch.Generator().manual_seed(0)
    # mask logits of a 256x384 input: level maps 64x96, 64x96, 32x48, 16x24, 16x24
    sizes = [(64, 96), (64, 96), (32, 48), (16, 24), (16, 24)]
    ins = [torch.randn(2, s * s, h, w, generator=g) for s, (h, w) in zip(head.seg_num_grids, sizes)]
    full = torch.cat([F.interpolate(p[1:2].sigmoid(), size=(64, 96), mode='bilinear')[0]
                      for p in ins])
    cells = torch.tensor([0, 63, 64, 64, 99, 100, 115, 125, 128])
    cate = [torch.zeros(2, 3, s, s) for s in head.seg_num_grids]
    assert torch.equal(head._candidate_masks(SOLOOutputs(cate, ins), 1, cells), full[cells])


def test_predict_returns_one_result_per_image():
    head = SOLOHead(**SMALL_ARGS)
    head.init_weights()
    with torch.no_grad():
        head.solo_cate.bias.fill_(0.0)                   # scores around 0.5: many candidates
        for m in head.solo_ins_list:
            m.bias.fill_(1.0)                           # masks mostly > 0.5
        outs = head(fpn_feats())
    metas = [dict(img_shape=(60, 90, 3), ori_shape=(30, 45, 3)),
             dict(img_shape=(64, 96, 3), ori_shape=(64, 96, 3))]
    results = head.predict(outs, metas, TEST_CFG, rescale=True)
    assert len(results) == 2 and all(isinstance(r, InstanceResult) for r in results)
    assert results[0].masks.shape[1:] == (30, 45) and results[1].masks.shape[1:] == (64, 96)
    assert len(results[0]) > 0 and np.all(np.diff(results[0].scores) <= 0)
    assert results[0].labels.max() < 3
    empty = head.predict(outs, metas, dict(TEST_CFG, score_thr=1.0))
    assert [len(r) for r in empty] == [0, 0] and empty[0].masks.shape == (0, 30, 45)


@pytest.mark.parametrize('name', ['solo_r50_fpn_8gpu_1x', 'decoupled_solo_light_r50_fpn_8gpu_3x'])
def test_targets_match_original(name):
    """Category grids, positive cells and mask-target pixel sums equal the original's."""
    t = np.load(os.path.join(GOLDEN, name, 'train.npz'))
    ranges = CONFIG_ARGS['scale_ranges'] if 'light' not in name else \
        ((1, 64), (32, 128), (64, 256), (128, 512), (256, 2048))
    head = SOLOHead(**dict(CONFIG_ARGS, stacked_convs=1, scale_ranges=ranges))
    sizes = [tuple(int(v) for v in s) for s in t['target_featmap_sizes']]
    assigns, cate = head.get_targets([torch.from_numpy(t['gt_bboxes'])],
                                     [torch.from_numpy(t['gt_labels_0based'])], [t['gt_masks']],
                                     (sizes[0][0] * 4, sizes[0][1] * 4))
    targets = head._mask_targets(assigns, [t['gt_masks']], sizes)
    for lvl, (_, cells, masks) in enumerate(targets):
        ours = cate[lvl][0].numpy()
        ours = np.where(ours == 80, 0, ours + 1)            # original: 0 = background, 1..80
        np.testing.assert_array_equal(ours, t[f'target_cate_label_L{lvl}'])
        np.testing.assert_array_equal(np.flatnonzero(ours), t[f'target_pos_cells_L{lvl}'])
        np.testing.assert_array_equal(cells.numpy(), t[f'target_pos_cells_L{lvl}'])
        assert len(masks) == int(t[f'target_ins_target_count_L{lvl}'])
        assert tuple(masks.shape[1:]) == tuple(t['target_featmap_sizes'][lvl])
        np.testing.assert_array_equal(masks.flatten(1).sum(1).numpy(),
                                      t[f'target_ins_target_pixelsum_L{lvl}'])
