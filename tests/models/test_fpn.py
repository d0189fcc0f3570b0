"""FPN neck: original key layout, output shapes (odd sizes too), a hand-checked top-down sum."""
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from mmdet_solo.models.necks import FPN
from mmdet_solo.registry import NECKS

GOLDEN = Path(__file__).resolve().parents[1] / 'data' / 'golden'
SPECS = sorted(GOLDEN.glob('*/spec.json'))

# neck arguments copied from the original configs (configs/solo*/<name>.py, WXinlong/SOLO)
_R50_NECK = dict(in_channels=[256, 512, 1024, 2048], out_channels=256, start_level=0, num_outs=5)
ORIGINAL_NECKS = {
    'configs/solo/solo_r50_fpn_8gpu_1x.py': _R50_NECK,
    'configs/solo/decoupled_solo_r50_fpn_8gpu_1x.py': _R50_NECK,
    'configs/solo/decoupled_solo_light_r50_fpn_8gpu_3x.py': _R50_NECK,
    'configs/solov2/solov2_r50_fpn_8gpu_1x.py': _R50_NECK,
    'configs/solov2/solov2_light_448_r18_fpn_8gpu_3x.py': dict(_R50_NECK,
                                                                in_channels=[64, 128, 256, 512]),
}


@pytest.mark.parametrize('spec_path', SPECS, ids=lambda p: p.parent.name)
def test_keys_and_shapes_match_original(spec_path):
    spec = json.loads(spec_path.read_text())
    expected = {k[len('neck.'):]: s for k, s in spec['spec'] if k.startswith('neck.')}
    neck = NECKS.build(dict(type='FPN', **ORIGINAL_NECKS[spec['config']]))
    assert {k: list(v.shape) for k, v in neck.state_dict().items()} == expected


def _inputs(sizes, channels=(256, 512, 1024, 2048)):
    return [torch.randn(2, c, h, w) for c, (h, w) in zip(channels, sizes)]


@pytest.mark.parametrize('hw', [(64, 96), (50, 75), (33, 17)])
def test_output_shapes_five_levels(hw):
    h, w = hw
    # backbone map sizes of a ResNet for an H x W input (conv/pool with padding: ceil)
    sizes = []
    for s in (4, 8, 16, 32):
        sizes.append((math.ceil(h / s), math.ceil(w / s)))
    neck = FPN(**_R50_NECK).eval()
    with torch.no_grad():
        outs = neck(_inputs(sizes))
    assert len(outs) == 5
    p6 = (math.ceil(sizes[-1][0] / 2), math.ceil(sizes[-1][1] / 2))
    assert [tuple(o.shape[-2:]) for o in outs] == sizes + [p6]
    assert all(o.shape[:2] == (2, 256) for o in outs)


def _identity_fpn(num_ins: int, num_outs: int) -> FPN:
    """1-channel FPN whose lateral and output convs are identities."""
    fpn = FPN([1] * num_ins, 1, num_outs)
    with torch.no_grad():
        for conv in list(fpn.lateral_convs) + list(fpn.fpn_convs):
            conv.conv.weight.zero_()
            conv.conv.bias.zero_()
            k = conv.conv.weight.shape[-1] // 2
            conv.conv.weight[0, 0, k, k] = 1.0
    return fpn.eval()


def test_top_down_sum_by_hand_even():
    fpn = _identity_fpn(3, 4)
    c2 = torch.arange(16.).reshape(1, 1, 4, 4)
    c3 = torch.tensor([[100., 200.], [300., 400.]]).reshape(1, 1, 2, 2)
    c4 = torch.tensor([[1000.]]).reshape(1, 1, 1, 1)
    with torch.no_grad():
        p2, p3, p4, p5 = fpn([c2, c3, c4])
    expected_p3 = torch.tensor([[1100., 1200.], [1300., 1400.]])
    expected_p2 = torch.tensor([[1100., 1100., 1200., 1200.],
                                [1100., 1100., 1200., 1200.],
                                [1300., 1300., 1400., 1400.],
                                [1300., 1300., 1400., 1400.]]) + torch.arange(16.).reshape(4, 4)
    assert torch.equal(p4[0, 0], torch.tensor([[1000.]]))
    assert torch.equal(p3[0, 0], expected_p3)
    assert torch.equal(p2[0, 0], expected_p2)
    assert torch.equal(p5[0, 0], torch.tensor([[1000.]]))  # max_pool2d(k=1, s=2) of 1x1


def test_top_down_sum_by_hand_odd_and_extra_level():
    # 3x3 over 2x2: the original's scale_factor=2 would give 4x4 and fail; nearest to 3x3 takes
    # source rows/cols floor(i * 2 / 3) = 0, 0, 1.
    fpn = _identity_fpn(2, 3)
    c2 = torch.zeros(1, 1, 3, 3)
    c3 = torch.tensor([[1., 2.], [3., 4.]]).reshape(1, 1, 2, 2)
    with torch.no_grad():
        p2, p3, p4 = fpn([c2, c3])
    assert torch.equal(p2[0, 0], torch.tensor([[1., 1., 2.], [1., 1., 2.], [3., 3., 4.]]))
    assert torch.equal(p3[0, 0], c3[0, 0])
    assert torch.equal(p4[0, 0], torch.tensor([[1.]]))  # p3[::2, ::2]


def test_add_extra_convs():
    neck = FPN([256, 512, 1024, 2048], 256, num_outs=6, add_extra_convs=True,
               relu_before_extra_convs=True)
    shapes = {k: tuple(v.shape) for k, v in neck.state_dict().items()}
    assert shapes['fpn_convs.4.conv.weight'] == (256, 2048, 3, 3)  # on the C5 input
    assert shapes['fpn_convs.5.conv.weight'] == (256, 256, 3, 3)
    assert 'fpn_convs.6.conv.weight' not in shapes
    outs = neck.eval()(_inputs([(16, 16), (8, 8), (4, 4), (2, 2)]))
    assert [tuple(o.shape[-2:]) for o in outs] == [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
    on_outputs = FPN([256, 512], 256, num_outs=3, add_extra_convs=True,
                     extra_convs_on_inputs=False)
    assert tuple(on_outputs.fpn_convs[2].conv.weight.shape) == (256, 256, 3, 3)


def test_start_and_end_level():
    neck = FPN([256, 512, 1024, 2048], 128, num_outs=2, start_level=1, end_level=3)
    assert len(neck.lateral_convs) == 2
    assert neck.lateral_convs[0].conv.in_channels == 512
    outs = neck(_inputs([(16, 16), (8, 8), (4, 4), (2, 2)]))
    assert [tuple(o.shape[1:]) for o in outs] == [(128, 8, 8), (128, 4, 4)]
    with pytest.raises(ValueError, match='num_outs'):
        FPN([256, 512, 1024], 64, num_outs=3, start_level=0, end_level=2)


def test_xavier_init():
    neck = FPN(**_R50_NECK)
    w = neck.lateral_convs[3].conv.weight  # 2048 -> 256, 1x1
    bound = math.sqrt(6.0 / (2048 + 256))
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert abs(w.std().item() - bound / math.sqrt(3)) < 0.02 * bound
    assert all(m.bias.abs().sum() == 0 for m in neck.modules()
               if isinstance(m, nn.Conv2d) and m.bias is not None)


def test_norm_cfg_gn():
    neck = FPN([64, 128], 32, 2, norm_cfg=dict(type='GN', num_groups=8))
    keys = set(neck.state_dict())
    assert 'lateral_convs.0.gn.weight' in keys and 'lateral_convs.0.conv.bias' not in keys
    assert 'fpn_convs.1.gn.bias' in keys


def test_input_errors():
    neck = FPN([8, 16], 8, 2)
    with pytest.raises(ValueError, match='expected 2 input levels'):
        neck([torch.zeros(1, 8, 4, 4)])
    with pytest.raises(ValueError, match=r'level 1 must be \(B, 16, H, W\)'):
        neck([torch.zeros(1, 8, 4, 4), torch.zeros(1, 8, 2, 2)])
    with pytest.raises(TypeError, match='in_channels'):
        FPN(256, 8, 2)
