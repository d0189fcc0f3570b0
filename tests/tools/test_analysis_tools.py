"""tools/analysis/get_flops.py and benchmark.py (mmdet_solo.utils.profiling) on tiny inputs:
FLOPs against hand counts, the output structure, 1-2 iterations only (no timing asserted)."""
from __future__ import annotations

import importlib.util
import json
import os.path as osp

import pytest
import torch
import torch.nn as nn

from mmdet_solo.apis import init_detector
from mmdet_solo.models.layers.deform_conv import DeformConvPack, ModulatedDeformConvPack
from mmdet_solo.utils.profiling import (GROUPS, count_flops, detector_flops, input_shape,
                                        time_stages)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'shapes', 'solov2_light_r18_shapes.py')
# every cell a candidate, nothing dropped by Matrix NMS: post-processing and pasting run
ALL = {'test_cfg.score_thr': 0.0, 'test_cfg.update_thr': 0.0, 'test_cfg.nms_pre': 20,
       'test_cfg.max_per_img': 5}


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, 'tools', 'analysis',
                                                                 f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return init_detector(CONFIG, None, device='cpu', cfg_options=dict(ALL))


def test_conv_flops_match_hand_count():
    x = torch.randn(2, 6, 16, 20)
    conv = nn.Conv2d(6, 8, 3, stride=2, padding=1, groups=2)
    flops, out = count_flops(lambda: conv(x))
    assert out.shape == (2, 8, 8, 10)
    # 2 FLOPs per multiply-accumulate: batch * C_out * C_in/groups * k*k * H_out * W_out
    assert flops == 2 * (2 * 8 * 3 * 3 * 3 * 8 * 10)
    lin = nn.Linear(5, 7)
    assert count_flops(lambda: lin(torch.randn(4, 5)))[0] == 2 * 4 * 5 * 7


@pytest.mark.parametrize('cls', [DeformConvPack, ModulatedDeformConvPack])
def test_deformable_conv_counts_as_its_convolution_plus_offsets(cls):
    x = torch.randn(1, 4, 12, 12)
    dcn = cls(4, 6, 3, padding=1)
    offset_ch = dcn.conv_offset.out_channels
    flops, _ = count_flops(lambda: dcn(x))
    assert flops == 2 * 144 * 9 * 4 * (6 + offset_ch)


def test_detector_flops_groups_sum_to_the_network(model):
    img = torch.randn(1, 3, 64, 96)
    report = detector_flops(model, img)
    assert list(report) == list(GROUPS) + ['total']
    assert all(report[g]['flops'] > 0 and report[g]['params'] > 0 for g in GROUPS)
    assert report['total']['flops'] == sum(report[g]['flops'] for g in GROUPS)
    assert report['total']['params'] == sum(report[g]['params'] for g in GROUPS) \
        == sum(p.numel() for p in model.parameters())
    whole, _ = count_flops(lambda: model.forward_heads(model.extract_feat(img)))
    assert whole == report['total']['flops']  # the mask-feature head is in it
    # the backbone's FLOPs scale with the pixels (the head's grids do not)
    assert count_flops(lambda: model.backbone(torch.randn(1, 3, 128, 192)))[0] == \
        4 * report['backbone']['flops']


def test_time_stages(model):
    img, metas = _tool('benchmark').random_batch((64, 96), 2, torch.device('cpu'))
    r = time_stages(model, img, metas, warmup=0, iters=1, whole_call=True)
    assert set(r) == {'backbone_neck', 'heads', 'postprocess', 'mask_paste', 'total', 'model',
                      'detections', 'iters'}
    assert r['detections'] == 5 and r['iters'] == 1
    assert r['mask_paste'] > 0 and all(r[k] >= 0 for k in ('postprocess', 'heads'))
    assert r['total'] == pytest.approx(r['backbone_neck'] + r['heads'] + r['postprocess']
                                       + r['mask_paste'], rel=0.5)


def test_input_shape():
    assert input_shape(None, (800, 1344)) == (800, 1344)
    assert input_shape([64], (1, 1)) == (64, 64)
    for bad in ([16, 64], [64, 64, 3]):
        with pytest.raises(ValueError, match='--shape'):
            input_shape(bad, (1, 1))


def test_get_flops_cli(tmp_path, capsys):
    out = tmp_path / 'flops.json'
    assert _tool('get_flops').main([CONFIG, '--shape', '64', '--json', str(out),
                                    '--cfg-options', 'test_cfg.max_per_img=5']) == 0
    text = capsys.readouterr().out
    assert 'FLOPs = 2 x MACs' in text and '| mask_feat_head |' in text
    rep = json.loads(out.read_text())
    assert rep['shape'] == [64, 64] and rep['flops_per_mac'] == 2
    assert set(rep['groups']) == set(GROUPS) | {'total'}


def test_benchmark_cli(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    args = [CONFIG, '--shape', '60', '90', '--batch-size', '2', '--num-iters', '1',
            '--warmup', '0', '--include-data', '--fp16', '--fuse-conv-bn', '--json', str(out),
            '--cfg-options']
    assert _tool('benchmark').main(args + [f'{k}={v}' for k, v in ALL.items()]) == 0
    text = capsys.readouterr().out
    assert 'mask paste (ms)' in text and 'images/s' in text
    rep = json.loads(out.read_text())
    assert set(rep['seconds']) == {'data', 'backbone_neck', 'heads', 'postprocess',
                                   'mask_paste', 'total'}
    assert rep['seconds']['mask_paste'] > 0 and rep['detections'] == 5
    # the pipeline resized 60x90 images to the config's test scale (192x160 at most)
    assert rep['network_input'] == [128, 192] and rep['batch_size'] == 2
    assert rep['fuse_conv_bn'] is True
    assert rep['images_per_s'] == pytest.approx(2 / rep['seconds']['total'])
