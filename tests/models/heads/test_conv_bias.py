"""``conv_bias`` of SOLOv2Head / MaskFeatHead: mmcv's 'auto'/True/False plus 'dcn' (Paddle)."""
import pytest
import torch

from mmdet_solo.models.heads import MaskFeatHead, SOLOv2Head, SOLOv2LightHead
from mmdet_solo.models.layers import resolve_conv_bias

GRIDS = dict(num_grids=[6, 5, 4, 3, 2], strides=[8, 8, 16, 32, 32],
             scale_ranges=((1, 96), (48, 192), (96, 384), (192, 768), (384, 2048)))


def _tower_biases(head):
    return [m.conv.bias is not None for tower in (head.kernel_convs, head.cate_convs)
            for m in tower]


def test_default_keeps_the_original_bias_free_convs():
    head = SOLOv2Head(3, 8, seg_feat_channels=32, stacked_convs=2, use_dcn_in_tower=True,
                      type_dcn='DCNv2', **GRIDS)
    assert not any(_tower_biases(head))
    feat = MaskFeatHead(8, 16, 0, 1, 16, conv_cfg=dict(type='DCNv2'),
                        norm_cfg=dict(type='GN', num_groups=8))
    assert all(m.conv.bias is None for m in feat.modules() if hasattr(m, 'conv'))
    # without a norm 'auto' gives a bias, as mmcv's ConvModule
    assert MaskFeatHead(8, 16, 0, 0, 16).conv_pred[0].conv.bias is not None


def test_dcn_bias_only_on_deformable_convs():
    head = SOLOv2LightHead(3, 8, seg_feat_channels=32, stacked_convs=3, use_dcn_in_tower=True,
                           type_dcn='DCNv2', conv_bias='dcn', **GRIDS)
    # kernel tower then cate tower; only the last conv of each is deformable
    assert _tower_biases(head) == [False, False, True] * 2
    sd = head.state_dict()
    assert sd['kernel_convs.2.conv.bias'].shape == (32,) and 'kernel_convs.1.conv.bias' not in sd
    head.init_weights()
    assert torch.count_nonzero(head.kernel_convs[2].conv.bias) == 0
    feats = [torch.randn(1, 8, 32 // 2 ** i, 32 // 2 ** i) for i in range(5)]
    cate, kernel, _ = head(feats, torch.zeros(1, 16, 8, 8))
    assert all(torch.isfinite(t).all() for t in cate + kernel)

    feat = MaskFeatHead(8, 16, 0, 1, 16, conv_cfg=dict(type='DCNv2'),
                        norm_cfg=dict(type='GN', num_groups=8), conv_bias='dcn')
    convs = [m.conv for m in feat.modules() if hasattr(m, 'conv')]
    assert len(convs) == 3 and all(c.bias is not None for c in convs)
    assert torch.isfinite(feat(feats[:2])).all()
    plain = MaskFeatHead(8, 16, 0, 1, 16, norm_cfg=dict(type='GN', num_groups=8), conv_bias='dcn')
    assert all(m.conv.bias is None for m in plain.modules() if hasattr(m, 'conv'))


def test_true_gives_every_tower_conv_a_bias():
    head = SOLOv2Head(3, 8, seg_feat_channels=32, stacked_convs=2, conv_bias=True, **GRIDS)
    assert all(_tower_biases(head))


@pytest.mark.parametrize('bad', ['yes', 1, None, 'DCN'])
def test_bad_conv_bias_is_named(bad):
    with pytest.raises(ValueError, match=f"SOLOv2Head: conv_bias must be .*got {bad!r}"):
        SOLOv2Head(3, 8, seg_feat_channels=32, stacked_convs=0, conv_bias=bad, **GRIDS)
    with pytest.raises(ValueError, match=f"MaskFeatHead: conv_bias must be .*got {bad!r}"):
        MaskFeatHead(8, 16, 0, 0, 16, conv_bias=bad)
    assert resolve_conv_bias('dcn', dict(type='DCN')) is True
    assert resolve_conv_bias('dcn', dict(type='Conv')) is False


def test_dcn_v1_refuses_a_bias():
    with pytest.raises(ValueError, match='DCN v1'):
        SOLOv2Head(3, 8, seg_feat_channels=32, stacked_convs=1, use_dcn_in_tower=True,
                   type_dcn='DCN', conv_bias='dcn', **GRIDS)
