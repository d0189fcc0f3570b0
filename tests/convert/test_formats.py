"""Each foreign format loads through ``init_detector``; conversions round-trip exactly.

The AdelaiDet and Paddle key lists are written out here from those implementations' module
structure (not from our converter), so the converter is checked against an independent list.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from conftest import ROOT, mmdet3_case, model_spec, weights_for_spec
from mmdet_solo.apis import init_detector
from mmdet_solo.utils.convert import (compare_state_dicts, detect_format, from_solo, to_solo)
from mmdet_solo.utils.pdparams import load_pdparams, save_pdparams

R50_BLOCKS = (3, 4, 6, 3)


def _bn(prefix, c, leaves=('weight', 'bias', 'running_mean', 'running_var')):
    return [(f'{prefix}.{leaf}', (c,)) for leaf in leaves]


def adelaidet_r50_spec():
    """AdelaiDet SOLOv2 R50 keys: detectron2 ResNet (FrozenBN) + FPN, SOLOv2InsHead/MaskHead."""
    bb, spec = 'backbone.bottom_up.', [('backbone.bottom_up.stem.conv1.weight', (64, 3, 7, 7))]
    spec += _bn(bb + 'stem.conv1.norm', 64)
    cin = 64
    for s, n in zip(range(2, 6), R50_BLOCKS):
        planes = 64 * 2 ** (s - 2)
        for b in range(n):
            p = f'{bb}res{s}.{b}.'
            for c, shape in ((1, (planes, cin, 1, 1)), (2, (planes, planes, 3, 3)),
                             (3, (planes * 4, planes, 1, 1))):
                spec.append((f'{p}conv{c}.weight', shape))
                spec += _bn(f'{p}conv{c}.norm', shape[0])
            if b == 0:
                spec.append((f'{p}shortcut.weight', (planes * 4, cin, 1, 1)))
                spec += _bn(f'{p}shortcut.norm', planes * 4)
            cin = planes * 4
    for lvl, c in zip(range(2, 6), (256, 512, 1024, 2048)):
        spec += [(f'backbone.fpn_lateral{lvl}.weight', (256, c, 1, 1)),
                 (f'backbone.fpn_lateral{lvl}.bias', (256,)),
                 (f'backbone.fpn_output{lvl}.weight', (256, 256, 3, 3)),
                 (f'backbone.fpn_output{lvl}.bias', (256,))]
    for tower, first in (('cate_tower', 256), ('kernel_tower', 258)):
        for i in range(4):
            spec += [(f'ins_head.{tower}.{3 * i}.weight', (512, first if i == 0 else 512, 3, 3)),
                     (f'ins_head.{tower}.{3 * i + 1}.weight', (512,)),
                     (f'ins_head.{tower}.{3 * i + 1}.bias', (512,))]
    spec += [('ins_head.cate_pred.weight', (80, 512, 3, 3)), ('ins_head.cate_pred.bias', (80,)),
             ('ins_head.kernel_pred.weight', (256, 512, 3, 3)), ('ins_head.kernel_pred.bias', (256,))]
    for lvl in range(4):
        for j in range(max(lvl, 1)):
            cin = (258 if lvl == 3 else 256) if j == 0 else 128
            p = f'mask_head.convs_all_levels.{lvl}.conv{j}'
            spec += [(f'{p}.0.weight', (128, cin, 3, 3)), (f'{p}.1.weight', (128,)),
                     (f'{p}.1.bias', (128,))]
    spec += [('mask_head.conv_pred.0.weight', (256, 128, 1, 1)),
             ('mask_head.conv_pred.1.weight', (256,)), ('mask_head.conv_pred.1.bias', (256,))]
    return spec


def _paddle_conv_norm(prefix, cout, cin, k, norm, dcn=None):
    """One Paddle ConvNormLayer: ``norm`` 'bn' or 'gn'; ``dcn`` None, 'resnet' (the backbone's
    own ConvNormLayer: ``conv_offset`` beside ``conv``, no bias) or 'layers'
    (``ppdet.modeling.layers.ConvNormLayer``: DeformableConvV2 inside ``conv``, with a bias)."""
    spec = []
    if dcn == 'resnet':
        spec += [(f'{prefix}.conv_offset.weight', (3 * k * k, cin, k, k)),
                 (f'{prefix}.conv_offset.bias', (3 * k * k,)),
                 (f'{prefix}.conv.weight', (cout, cin, k, k))]
    elif dcn == 'layers':
        spec += [(f'{prefix}.conv.conv_offset.weight', (3 * k * k, cin, k, k)),
                 (f'{prefix}.conv.conv_offset.bias', (3 * k * k,)),
                 (f'{prefix}.conv.conv_dcn.weight', (cout, cin, k, k)),
                 (f'{prefix}.conv.conv_dcn.bias', (cout,))]
    else:
        spec.append((f'{prefix}.conv.weight', (cout, cin, k, k)))
    leaves = ('weight', 'bias', '_mean', '_variance') if norm == 'bn' else ('weight', 'bias')
    return spec + _bn(f'{prefix}.norm', cout, leaves)


def paddle_spec(depth=50, variant='b', backbone_dcn_stages=(), head_channels=512,
                stacked_convs=4, head_dcn_stages=(), kernel_out=256, mask_dcn=False,
                mask_out=256):
    """PaddleDetection SOLOv2 keys (ResNet, FPN, SOLOv2Head, SOLOv2MaskHead); the arguments are
    those of its yml (ResNet ``variant``/``dcn_v2_stages``, SOLOv2Head ``seg_feat_channels``/
    ``stacked_convs``/``dcn_v2_stages``/``kernel_out_channels``, SOLOv2MaskHead
    ``use_dcn_in_tower``/``out_channels``). Defaults: solov2_r50_fpn_1x_coco."""
    blocks = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
    if variant == 'd':
        spec = []
        for i, (cin, cout) in enumerate(((3, 32), (32, 32), (32, 64)), 1):
            spec += _paddle_conv_norm(f'backbone.conv1.conv1_{i}', cout, cin, 3, 'bn')
    else:
        spec = _paddle_conv_norm('backbone.conv1.conv1', 64, 3, 7, 'bn')
    cin = 64
    for s, n in zip(range(2, 6), blocks):
        planes = 64 * 2 ** (s - 2)
        dcn = 'resnet' if s - 2 in backbone_dcn_stages else None
        for b in range(n):
            name = 'a' if b == 0 else (f'b{b}' if n > 10 and s == 4 else chr(97 + b))
            p = f'backbone.res{s}.res{s}{name}'
            spec += _paddle_conv_norm(f'{p}.branch2a', planes, cin, 1, 'bn')
            spec += _paddle_conv_norm(f'{p}.branch2b', planes, planes, 3, 'bn', dcn)
            spec += _paddle_conv_norm(f'{p}.branch2c', planes * 4, planes, 1, 'bn')
            if b == 0:  # vd with stride 2: Sequential(pool, conv)
                short = f'{p}.short.conv' if variant == 'd' and s > 2 else f'{p}.short'
                spec += _paddle_conv_norm(short, planes * 4, cin, 1, 'bn')
            cin = planes * 4
    for s, c in zip(range(2, 6), (256, 512, 1024, 2048)):
        inner = 'neck.fpn_inner_res5_sum' if s == 5 else f'neck.fpn_inner_res{s}_sum_lateral'
        spec += [(f'{inner}.weight', (256, c, 1, 1)), (f'{inner}.bias', (256,)),
                 (f'neck.fpn_res{s}_sum.weight', (256, 256, 3, 3)), (f'neck.fpn_res{s}_sum.bias', (256,))]
    for i in range(stacked_convs):
        dcn = 'layers' if i in head_dcn_stages else None
        for tower, first in (('kernel_convs', 258), ('cate_convs', 256)):
            spec += _paddle_conv_norm(f'solov2_head.bbox_head.{tower}.{i}', head_channels,
                                      first if i == 0 else head_channels, 3, 'gn', dcn)
    spec += [('solov2_head.bbox_head.solo_kernel.weight', (kernel_out, head_channels, 3, 3)),
             ('solov2_head.bbox_head.solo_kernel.bias', (kernel_out,)),
             ('solov2_head.bbox_head.solo_cate.weight', (80, head_channels, 3, 3)),
             ('solov2_head.bbox_head.solo_cate.bias', (80,))]
    dcn = 'layers' if mask_dcn else None
    for lvl in range(4):
        for j in range(max(lvl, 1)):
            cin = (258 if lvl == 3 else 256) if j == 0 else 128
            p = f'mask_head.conv_pre_feat{lvl}.mask_feat_head.convs_all_levels.{lvl}.conv{j}'
            spec += _paddle_conv_norm(p, 128, cin, 3, 'gn', dcn)
    spec += _paddle_conv_norm('mask_head.mask_feat_head.conv_pred.0', mask_out, 128, 1, 'gn', dcn)
    return spec


# PaddleDetection configs/solov2/*.yml -> the keys of their published .pdparams
PADDLE_MODELS = {
    'solov2_r50_fpn_1x_coco': {},
    'solov2_r101_vd_fpn_3x_coco': dict(depth=101, variant='d', backbone_dcn_stages=(1, 2, 3),
                                       head_dcn_stages=(0, 1, 2, 3), mask_dcn=True),
    'solov2_r50_enhance_coco': dict(variant='d', backbone_dcn_stages=(1, 2, 3), head_channels=256,
                                    stacked_convs=3, head_dcn_stages=(2,), kernel_out=128,
                                    mask_dcn=True, mask_out=128),
}


def _check_loaded(model, theirs):
    """Every key maps, the model holds exactly the file's tensors, and it runs finite."""
    converted, unmatched, fmt = to_solo(theirs)
    report = compare_state_dicts(converted, model.state_dict(), fmt, unmatched)
    assert report.ok, report.format()
    own = model.state_dict()
    for k, v in converted.items():
        assert torch.equal(own[k].cpu(), v.float() if v.is_floating_point() else v), k
    img = torch.linspace(-2, 2, 3 * 128 * 160).reshape(1, 3, 128, 160)
    with torch.no_grad():
        outs = model._head_outputs(img)
        flat = [t for o in outs for t in (o if isinstance(o, (list, tuple)) else [o])]
        assert all(torch.isfinite(t).all() for t in flat)
        meta = dict(img_shape=(128, 160, 3), ori_shape=(128, 160, 3), pad_shape=(128, 160, 3),
                    scale_factor=1.0, flip=False)
        res = model.simple_test(img, [meta])[0]
    assert np.isfinite(res.scores).all()


def test_mmdet_format_loads(tmp_path):
    case = mmdet3_case('solov2-light_r18_fpn_ms-3x_coco')
    theirs = weights_for_spec(case['spec'], salt='fmt:')
    path = str(tmp_path / 'mmdet.pth')
    torch.save({'meta': {'mmdet_version': '2.25.0', 'CLASSES': ['c'] * 80},
                'state_dict': theirs, 'optimizer': {'state': {}, 'param_groups': []}}, path)
    assert detect_format(theirs) == 'mmdet'
    model = init_detector(os.path.join(ROOT, 'configs/mmdet/solov2-light_r18_fpn_ms-3x_coco.py'),
                          path, device='cpu')
    _check_loaded(model, theirs)


def test_adelaidet_format_loads(tmp_path):
    theirs = weights_for_spec(adelaidet_r50_spec(), salt='adet:')
    path = str(tmp_path / 'SOLOv2_R50_3x.pth')
    torch.save({'model': theirs, 'iteration': 270000}, path)  # detectron2 Checkpointer layout
    assert detect_format(theirs) == 'adelaidet'
    model = init_detector(os.path.join(ROOT, 'configs/adelaidet/solov2_r50_3x.py'), path,
                          device='cpu')
    assert model.backbone.style == 'caffe'
    _check_loaded(model, theirs)


@pytest.mark.parametrize('name', [
    'solov2_r50_fpn_1x_coco',
    'solov2_r101_vd_fpn_3x_coco',
    'solov2_r50_enhance_coco',
])
def test_paddle_format_loads(tmp_path, name):
    """Every published Paddle model loads with every key matched (DCN biases included)."""
    theirs = {k: v.numpy() for k, v in
              weights_for_spec(paddle_spec(**PADDLE_MODELS[name]), salt='pd:').items()}
    path = str(tmp_path / f'{name}.pdparams')
    save_pdparams(theirs, path)
    assert set(load_pdparams(path)) == set(theirs)
    assert detect_format(theirs) == 'paddle'
    model = init_detector(os.path.join(ROOT, f'configs/paddle/{name}.py'), path, device='cpu')
    _check_loaded(model, theirs)
    # and back: our Paddle names are Paddle's
    assert set(from_solo(model.state_dict(), 'paddle').state_dict) == set(theirs)


@pytest.mark.parametrize('config,fmt', [
    ('configs/mmdet/solov2-light_r18_fpn_ms-3x_coco.py', 'mmdet'),
    pytest.param(*('configs/mmdet/decoupled-solo-light_r50_fpn_3x_coco.py', 'mmdet'), marks=pytest.mark.slow),
    pytest.param(*('configs/mmdet/solov2-light_r50-dcn_fpn_ms-3x_coco.py', 'mmdet'), marks=pytest.mark.slow),
    pytest.param(*('configs/adelaidet/solov2_r50_3x.py', 'adelaidet'), marks=pytest.mark.slow),
    ('configs/paddle/solov2_r50_fpn_1x_coco.py', 'paddle'),
    pytest.param(*('configs/paddle/solov2_r101_vd_fpn_3x_coco.py', 'paddle'), marks=pytest.mark.slow),
    pytest.param(*('configs/paddle/solov2_r50_enhance_coco.py', 'paddle'), marks=pytest.mark.slow),
])
def test_round_trip_exact(config, fmt):
    from mmdet_solo.config import Config
    from mmdet_solo.models import build_detector
    cfg = Config.fromfile(os.path.join(ROOT, config))
    cfg.model.pretrained = None
    model = build_detector(cfg.model, test_cfg=cfg.test_cfg)
    ours = weights_for_spec(model_spec(model), salt='rt:')
    theirs = from_solo(ours, fmt)
    assert not theirs.unmatched
    assert detect_format(theirs.state_dict) == fmt
    back, unmatched, got = to_solo(theirs.state_dict, 'auto')
    assert got == fmt and not unmatched
    expected = {k: v for k, v in ours.items()
                if fmt == 'mmdet' or not k.endswith('num_batches_tracked')}
    assert list(back) == list(expected) or set(back) == set(expected)
    for k, v in expected.items():
        assert torch.equal(back[k], v), k


def test_detect_format():
    assert detect_format(['backbone.conv1.weight', 'bbox_head.solo_cate.weight']) == 'solo'
    assert detect_format(['mask_head.conv_cls.weight']) == 'mmdet'
    assert detect_format(['backbone.bottom_up.stem.conv1.weight']) == 'adelaidet'
    assert detect_format(['backbone.res2.res2a.branch2a.norm._mean']) == 'paddle'
    assert detect_format(['conv1.weight', 'layer1.0.conv1.weight']) == 'unknown'
