"""ResNet / ResNeXt: original key layout, torchvision numerics, DCN, freezing, pretrained."""
import json
import logging
import os
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torchvision

from mmdet_solo.models.backbones import ResNet, ResNeXt
from mmdet_solo.registry import BACKBONES

GOLDEN = Path(__file__).resolve().parents[1] / 'data' / 'golden'

# backbone arguments copied from the original configs (configs/solo*/<name>.py, WXinlong/SOLO)
_R50 = dict(depth=50, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1, style='pytorch')
ORIGINAL_BACKBONES = {
    'configs/solo/solo_r50_fpn_8gpu_1x.py': _R50,
    'configs/solo/decoupled_solo_r50_fpn_8gpu_1x.py': _R50,
    'configs/solo/decoupled_solo_light_r50_fpn_8gpu_3x.py': _R50,
    'configs/solov2/solov2_r50_fpn_8gpu_1x.py': _R50,
    'configs/solov2/solov2_light_448_r18_fpn_8gpu_3x.py': dict(_R50, depth=18),
}
SPECS = sorted(GOLDEN.glob('*/spec.json'))


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Fill every parameter and BN buffer with non-trivial random values (in place)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith('running_var'):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith('running_mean') or name.endswith('bias'):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif t.dim() == 1:  # norm weight
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) * (2.0 / fan_in) ** 0.5)
    return model


def _state_shapes(model: nn.Module) -> dict:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------ original layout

def test_golden_specs_present():
    assert len(SPECS) == 5, f'expected 5 golden specs under {GOLDEN}, found {SPECS}'


@pytest.mark.parametrize('spec_path', SPECS, ids=lambda p: p.parent.name)
def test_keys_and_shapes_match_original(spec_path):
    spec = json.loads(spec_path.read_text())
    args = ORIGINAL_BACKBONES[spec['config']]
    expected = {k[len('backbone.'):]: s for k, s in spec['spec'] if k.startswith('backbone.')}
    ours = _state_shapes(BACKBONES.build(dict(type='ResNet', **args)))
    assert sorted(ours) == sorted(expected)
    assert ours == expected


# ------------------------------------------------------------------------ torchvision numerics

def _torchvision_stages(tv: nn.Module, x: torch.Tensor):
    x = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
    outs = []
    for layer in (tv.layer1, tv.layer2, tv.layer3, tv.layer4):
        x = layer(x)
        outs.append(x)
    return outs


@pytest.mark.parametrize('depth', [18, 50])
def test_matches_torchvision(depth):
    tv = randomize_(getattr(torchvision.models, f'resnet{depth}')(), seed=depth).eval()
    ours = ResNet(depth, style='pytorch').eval()
    sd = {k: v for k, v in tv.state_dict().items() if not k.startswith('fc.')}
    ours.load_state_dict(sd, strict=True)
    x = torch.randn(2, 3, 64, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = _torchvision_stages(tv, x)
        got = ours(x)
    assert len(got) == 4
    for e, g in zip(expected, got):
        assert e.abs().max() > 1e-2  # non-trivial features
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
    assert ours.out_channels == [e.shape[1] for e in expected]
    assert ours.out_strides == [4, 8, 16, 32]
    assert [f['reduction'] for f in ours.feature_info] == [4, 8, 16, 32]


def test_param_count_r50():
    ours = sum(p.numel() for p in ResNet(50).parameters())
    tv = torchvision.models.resnet50()
    tv_no_fc = sum(p.numel() for n, p in tv.named_parameters() if not n.startswith('fc.'))
    assert ours == tv_no_fc == 23_508_032


def test_out_indices_and_stages():
    m = ResNet(18, num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(1, 2)).eval()
    outs = m(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 128, 8, 8), (1, 256, 4, 4)]
    assert m.out_channels == [128, 256] and m.out_strides == [8, 16]
    assert not hasattr(m, 'layer4')


def test_caffe_style_puts_stride_in_first_1x1():
    caffe, pt = ResNet(50, style='caffe'), ResNet(50, style='pytorch')
    for i, layer in enumerate(['layer2', 'layer3', 'layer4']):
        cb, pb = getattr(caffe, layer)[0], getattr(pt, layer)[0]
        assert cb.conv1.stride == (2, 2) and cb.conv2.stride == (1, 1)
        assert pb.conv1.stride == (1, 1) and pb.conv2.stride == (2, 2)
        assert cb.downsample[0].stride == pb.downsample[0].stride == (2, 2)
    assert _state_shapes(caffe) == _state_shapes(pt)
    x = torch.randn(1, 3, 32, 32)
    assert [o.shape for o in caffe.eval()(x)] == [o.shape for o in pt.eval()(x)]


def test_invalid_arguments():
    with pytest.raises(KeyError, match='invalid depth 42'):
        ResNet(42)
    with pytest.raises(ValueError, match='style'):
        ResNet(18, style='tf')
    with pytest.raises(ValueError, match='out_indices'):
        ResNet(18, out_indices=(4,))
    with pytest.raises(NotImplementedError, match='Bottleneck'):
        ResNet(18, dcn=dict(type='DCN'), stage_with_dcn=(False, True, True, True))


# ------------------------------------------------------------------------------------------ DCN

@pytest.mark.parametrize('dcn_type, offset_ch', [('DCN', 18), ('DCNv2', 27)])
def test_dcn_keys(dcn_type, offset_ch):
    dcn = dict(type=dcn_type, deformable_groups=1, fallback_on_stride=False)
    m = ResNet(50, dcn=dcn, stage_with_dcn=(False, True, True, True))
    assert dcn == dict(type=dcn_type, deformable_groups=1, fallback_on_stride=False)  # untouched
    plain = _state_shapes(ResNet(50))
    shapes = _state_shapes(m)
    extra = {k: s for k, s in shapes.items() if k not in plain}
    expected = {}
    for i, blocks in enumerate((3, 4, 6, 3)):
        planes = 64 * 2 ** i
        if i == 0:
            continue
        for b in range(blocks):
            expected[f'layer{i + 1}.{b}.conv2.conv_offset.weight'] = [offset_ch, planes, 3, 3]
            expected[f'layer{i + 1}.{b}.conv2.conv_offset.bias'] = [offset_ch]
    assert extra == expected
    assert all(shapes[k] == s for k, s in plain.items())  # conv2.weight etc. unchanged, no bias
    assert m.layer2[0].conv2.stride == (2, 2)


def _copy_into(dst: nn.Module, src: nn.Module) -> None:
    missing, unexpected = dst.load_state_dict(src.state_dict(), strict=False)
    assert not unexpected and all('conv_offset' in k for k in missing)


@pytest.mark.parametrize('kind', ['resnet', 'resnext'])
def test_dcn_with_zero_offsets_equals_plain_conv(kind):
    dcn = dict(type='DCN', deformable_groups=1, fallback_on_stride=False)
    if kind == 'resnet':
        args = dict(depth=50)
        cls = ResNet
    else:
        args = dict(depth=50, groups=32, base_width=4)
        cls = ResNeXt
    plain = randomize_(cls(**args), seed=3).eval()
    dcn_model = cls(dcn=dcn, stage_with_dcn=(False, True, True, True), **args).eval()
    _copy_into(dcn_model, plain)
    offset = dcn_model.layer3[1].conv2.conv_offset
    assert offset.weight.abs().sum() == 0 and offset.bias.abs().sum() == 0  # zero-initialised
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = plain(x), dcn_model(x)
        for e, g in zip(expected, got):  # random weights make activations large: relative
            assert (g - e).abs().max() <= 1e-5 * e.abs().max()
        y = torch.randn(1, plain.layer2[1].conv2.in_channels, 12, 12)  # one conv: absolute
        torch.testing.assert_close(dcn_model.layer2[1].conv2(y), plain.layer2[1].conv2(y),
                                   atol=1e-5, rtol=1e-5)
        # non-zero offsets must change the result (the DCN path is really used)
        nn.init.constant_(dcn_model.layer4[0].conv2.conv_offset.bias, 0.5)
        assert not torch.allclose(dcn_model(x)[3], expected[3], atol=1e-3)


def test_fallback_on_stride_keeps_plain_conv_in_strided_blocks():
    m = ResNet(50, dcn=dict(type='DCN', fallback_on_stride=True),
               stage_with_dcn=(False, True, True, True))
    assert isinstance(m.layer2[0].conv2, nn.Conv2d)        # stride 2: fallback
    assert hasattr(m.layer2[1].conv2, 'conv_offset')       # stride 1: DCN


# ------------------------------------------------------------------------------------- ResNeXt

@pytest.fixture(scope='module')
def tv_resnext101_64x4d():
    return torchvision.models.resnext101_64x4d()


def test_resnext101_64x4d_matches_torchvision(tv_resnext101_64x4d):
    tv = randomize_(tv_resnext101_64x4d, seed=5).eval()
    ours = BACKBONES.build(dict(type='ResNeXt', depth=101, groups=64, base_width=4)).eval()
    tv_sd = {k: v for k, v in tv.state_dict().items() if not k.startswith('fc.')}
    assert _state_shapes(ours) == {k: list(v.shape) for k, v in tv_sd.items()}
    ours.load_state_dict(tv_sd, strict=True)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for e, g in zip(_torchvision_stages(tv, x), ours(x)):
            torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)
    assert ours.layer1[0].conv2.groups == 64 and ours.layer1[0].conv2.weight.shape[:2] == (256, 4)


def test_resnext_dcnv2_grouped_shapes():
    m = ResNeXt(depth=50, groups=32, base_width=4,
                dcn=dict(type='DCNv2', deformable_groups=1, fallback_on_stride=False),
                stage_with_dcn=(False, True, True, True))
    conv2 = m.layer3[0].conv2   # planes 256 -> width floor(256 * 4 / 64) * 32 = 512
    # torchvision resnext50_32x4d: layer3.0.conv2.weight is (512, 16, 3, 3)
    assert tuple(conv2.weight.shape) == (512, 16, 3, 3)
    assert tuple(conv2.conv_offset.weight.shape) == (27, 512, 3, 3)
    assert conv2.bias is None
    out = m.eval()(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in out] == [256, 512, 1024, 2048]


# ------------------------------------------------------------------------ freezing / norm_eval

def test_frozen_stages_and_norm_eval():
    m = ResNet(18, frozen_stages=1, norm_eval=True)
    m.train()
    frozen = [m.conv1, m.bn1, m.layer1]
    assert all(not p.requires_grad for mod in frozen for p in mod.parameters())
    assert all(p.requires_grad for p in m.layer2.parameters())
    assert m.training and not any(
        mod.training for mod in m.modules() if isinstance(mod, nn.BatchNorm2d))
    before = m.layer3[0].bn1.running_mean.clone()
    out = m(torch.randn(2, 3, 32, 32))
    torch.testing.assert_close(m.layer3[0].bn1.running_mean, before)  # stats frozen
    sum(o.sum() for o in out).backward()
    assert m.conv1.weight.grad is None and m.layer1[0].conv1.weight.grad is None
    assert m.layer2[0].conv1.weight.grad is not None


def test_frozen_stages_without_norm_eval():
    m = ResNet(18, frozen_stages=2, norm_eval=False).train()
    assert not m.bn1.training and not m.layer2[0].bn1.training
    assert m.layer3[0].bn1.training and m.layer4[1].bn2.training
    m.eval().train()  # re-entering train mode keeps the frozen stages in eval
    assert not m.layer1[0].bn1.training and m.layer3[0].bn1.training


def test_gn_norm_cfg():
    m = ResNet(50, norm_cfg=dict(type='GN', num_groups=32, requires_grad=True))
    keys = m.state_dict().keys()
    assert 'gn1.weight' in keys and 'layer1.0.gn3.weight' in keys
    assert isinstance(m.layer1[0].downsample[1], nn.GroupNorm)


def test_zero_init_residual():
    m = ResNet(50, zero_init_residual=True)
    assert all(b.bn3.weight.abs().sum() == 0 for b in m.layer2)
    m = ResNet(18, zero_init_residual=False)
    assert all((b.bn2.weight == 1).all() for b in m.layer2)


def test_with_cp_same_gradients():
    x = torch.randn(1, 3, 32, 32)
    grads = []
    for with_cp in (False, True):
        m = randomize_(ResNet(50, with_cp=with_cp), seed=7).train()
        m.layer3[0].conv1.weight.grad = None
        sum(o.square().sum() for o in m(x)).backward()
        grads.append(m.layer3[0].conv1.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


# ------------------------------------------------------------------------------------ pretrained

def test_pretrained_from_offline_hub_cache(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    cache = tmp_path / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    tv = randomize_(torchvision.models.resnet18(), seed=11)
    torch.save(tv.state_dict(), cache / 'resnet18-0123abcd.pth')
    m = ResNet(18)
    with caplog.at_level(logging.WARNING):
        m.init_weights(pretrained='torchvision://resnet18')
    assert not caplog.records  # nothing missing; fc.* silently ignored
    for k, v in m.state_dict().items():
        torch.testing.assert_close(v, tv.state_dict()[k], msg=k)


def test_pretrained_absent_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        ResNet(18).init_weights(pretrained='torchvision://resnet18')
    msg = str(e.value)
    assert os.path.join(str(tmp_path), 'hub', 'checkpoints') in msg
    assert 'network' in msg and 'pretrained=None' in msg and 'resnet18' in msg


def test_pretrained_wrong_type():
    with pytest.raises(TypeError, match='pretrained'):
        ResNet(18).init_weights(pretrained=3)
