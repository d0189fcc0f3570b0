import os

import numpy as np
import pytest
import torch
import torch.nn as nn

from mmdet_solo.apis import inference_detector, init_detector
from mmdet_solo.config import ConfigError
from mmdet_solo.models.backbones.resnet import ResNet
from mmdet_solo.models.layers.fuse_conv_bn import fuse_conv_bn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPES = os.path.join(ROOT, 'configs', 'shapes', 'solov2_light_r18_shapes.py')


def _randomise_bn(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize('depth,num_bn', [(18, 20), (50, 53)])
def test_every_backbone_batchnorm_is_folded_with_the_same_outputs(depth, num_bn):
    torch.manual_seed(0)
    model = ResNet(depth=depth).eval()
    _randomise_bn(model)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        ref = model(x)
        assert fuse_conv_bn(model) == num_bn
        out = model(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    for a, b in zip(ref, out):   # float rounding only
        assert (b - a).abs().max() <= 1e-5 * a.abs().max()


def test_fusing_needs_eval_mode():
    with pytest.raises(RuntimeError, match='eval mode'):
        fuse_conv_bn(ResNet(depth=18).train())


def test_init_detector_fuses_on_request_only():
    torch.manual_seed(0)
    plain = init_detector(SHAPES, device='cpu', cfg_options={'channels_last': False})
    fused = init_detector(SHAPES, device='cpu', cfg_options={'channels_last': False,
                                                              'fuse_conv_bn': True})
    fused.load_state_dict({k: v for k, v in plain.state_dict().items() if k in
                           fused.state_dict()}, strict=False)
    assert any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    with pytest.raises(ConfigError, match=r"fuse_conv_bn='yes': expected True or False"):
        init_detector(SHAPES, device='cpu', cfg_options={'fuse_conv_bn': 'yes'})


def test_fused_detector_detects_the_same(tmp_path):
    torch.manual_seed(0)
    plain = init_detector(SHAPES, device='cpu', cfg_options={'channels_last': False})
    _randomise_bn(plain)
    ckpt = str(tmp_path / 'm.pth')
    torch.save({'meta': {}, 'state_dict': plain.state_dict()}, ckpt)
    fused = init_detector(SHAPES, ckpt, device='cpu',
                          cfg_options={'channels_last': False, 'fuse_conv_bn': True})
    for model in (plain, fused):   # an untrained model: keep its weak candidates
        model.test_cfg.update(score_thr=0.0, update_thr=0.0)
    img = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    a, b = inference_detector(plain, img), inference_detector(fused, img)
    assert len(a) == len(b) > 0
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
