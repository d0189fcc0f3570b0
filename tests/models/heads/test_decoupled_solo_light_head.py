"""DecoupledSOLOLightHead: one shared mask tower, optional DCN in the last tower conv."""
import pytest
import torch

from mmdet_solo.models.heads import DecoupledSOLOLightHead
from mmdet_solo.models.heads.utils import coord_features
from mmdet_solo.models.layers import DeformConvPack
from mmdet_solo.registry import HEADS
from mmdet_solo.structures import InstanceResult

from test_solo_head import CONFIG_ARGS, SMALL_ARGS, TEST_CFG, fpn_feats, gt_for, spec_of

LIGHT_ARGS = dict(CONFIG_ARGS)
LIGHT_ARGS.update(stacked_convs=4, scale_ranges=((1, 64), (32, 128), (64, 256), (128, 512),
                                                 (256, 2048)))
SMALL_LIGHT = dict(SMALL_ARGS)


def test_parameter_names_match_original():
    head = HEADS.build(dict(type='DecoupledSOLOLightHead', **LIGHT_ARGS))
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == \
        spec_of('decoupled_solo_light_r50_fpn_8gpu_3x')


def test_dcn_in_last_tower_conv():
    head = DecoupledSOLOLightHead(**SMALL_LIGHT, use_dcn_in_tower=True, type_dcn='DCN')
    assert isinstance(head.ins_convs[-1].conv, DeformConvPack)
    assert isinstance(head.cate_convs[-1].conv, DeformConvPack)
    assert not isinstance(head.ins_convs[0].conv, DeformConvPack)
    head.init_weights()
    cate, xs, ys = head(fpn_feats(batch=1))
    assert tuple(xs[0].shape) == (1, 8, 16, 24) and tuple(cate[4].shape) == (1, 3, 2, 2)


def test_bad_arguments():
    with pytest.raises(TypeError, match='with_deform'):
        DecoupledSOLOLightHead(**SMALL_LIGHT, with_deform=False)
    with pytest.raises(ValueError, match='type_dcn'):
        DecoupledSOLOLightHead(**SMALL_LIGHT, use_dcn_in_tower=True)


def test_shared_tower_feeds_x_and_y():
    head = DecoupledSOLOLightHead(**SMALL_LIGHT)
    assert head.ins_convs[0].conv.in_channels == 32 + 2
    feats = fpn_feats()
    cate, xs, ys = head(feats)
    x = torch.nn.functional.interpolate(feats[0], scale_factor=0.5, mode='bilinear')
    feat = torch.cat([x, coord_features(x)], 1)
    feat = torch.nn.functional.interpolate(head.ins_convs(feat), scale_factor=2, mode='bilinear')
    assert torch.allclose(xs[0], head.dsolo_ins_list_x[0](feat))
    assert torch.allclose(ys[0], head.dsolo_ins_list_y[0](feat))


def test_loss_and_predict():
    head = DecoupledSOLOLightHead(**SMALL_LIGHT)
    head.init_weights()
    outs = head(fpn_feats())
    losses = head.loss(outs, *gt_for(), img_metas=[{}, {}])
    assert all(torch.isfinite(v) for v in losses.values()) and losses['loss_ins'] > 0
    sum(losses.values()).backward()
    boxes, labels, masks = gt_for()
    empty = head.loss(head(fpn_feats()), [boxes[1]] * 2, [labels[1]] * 2, [masks[1]] * 2,
                      img_metas=[{}, {}])
    assert empty['loss_ins'].item() == 0 and empty['loss_ins'].requires_grad
    with torch.no_grad():
        head.dsolo_cate.bias.fill_(0.0)
        results = head.predict(head(fpn_feats()), [dict(img_shape=(64, 96), ori_shape=(32, 48))] * 2,
                               TEST_CFG)
    assert len(results) == 2 and isinstance(results[0], InstanceResult)
    assert results[0].masks.shape[1:] == (32, 48)
