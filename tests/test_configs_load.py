"""Every released config loads and keeps the original release's hyper-parameters.

Values are checked against the original SOLO release (WXinlong/SOLO); the one deliberate
difference is ``num_classes=80`` in the heads (object classes only, no background; 8 for
Cityscapes, where the original wrote 9).
"""
import re
from pathlib import Path

import pytest

from mmdet_solo.config import Config

CONFIG_DIR = Path(__file__).resolve().parents[1] / 'configs'

FULL_RANGES = ((1, 96), (48, 192), (96, 384), (192, 768), (384, 2048))
LIGHT_448_RANGES = ((1, 56), (28, 112), (56, 224), (112, 448), (224, 896))
LIGHT_512_RANGES = ((1, 64), (32, 128), (64, 256), (128, 512), (256, 2048))
MS_1333 = [(1333, s) for s in (800, 768, 736, 704, 672, 640)]

# name: (detector, head, depth, scale_ranges, train img_scale, test img_scale, epochs)
EXPECTED = {
    'solo/solo_r50_fpn_8gpu_1x':
        ('SOLO', 'SOLOHead', 50, FULL_RANGES, (1333, 800), (1333, 800), 12),
    'solo/solo_r50_fpn_8gpu_3x': ('SOLO', 'SOLOHead', 50, FULL_RANGES, MS_1333, (1333, 800), 36),
    'solo/solo_r101_fpn_8gpu_3x': ('SOLO', 'SOLOHead', 101, FULL_RANGES, MS_1333, (1333, 800), 36),
    'solo/decoupled_solo_r50_fpn_8gpu_1x':
        ('SOLO', 'DecoupledSOLOHead', 50, FULL_RANGES, (1333, 800), (1333, 800), 12),
    'solo/decoupled_solo_r50_fpn_8gpu_3x':
        ('SOLO', 'DecoupledSOLOHead', 50, FULL_RANGES, MS_1333, (1333, 800), 36),
    'solo/decoupled_solo_r101_fpn_8gpu_3x':
        ('SOLO', 'DecoupledSOLOHead', 101, FULL_RANGES, MS_1333, (1333, 800), 36),
    'solo/decoupled_solo_light_r50_fpn_8gpu_3x':
        ('SOLO', 'DecoupledSOLOLightHead', 50, LIGHT_512_RANGES,
         [(852, s) for s in (512, 480, 448, 416, 384, 352)], (852, 512), 36),
    'solo/decoupled_solo_light_dcn_r50_fpn_8gpu_3x':
        ('SOLO', 'DecoupledSOLOLightHead', 50, LIGHT_512_RANGES,
         [(852, s) for s in (512, 480, 448, 416, 384, 352)], (852, 512), 36),
    'solov2/solov2_r50_fpn_8gpu_1x':
        ('SOLOv2', 'SOLOv2Head', 50, FULL_RANGES, (1333, 800), (1333, 800), 12),
    'solov2/solov2_r50_fpn_8gpu_3x':
        ('SOLOv2', 'SOLOv2Head', 50, FULL_RANGES, MS_1333, (1333, 800), 36),
    'solov2/solov2_r50_fpn_8gpu_1x_cityscapes':
        ('SOLOv2', 'SOLOv2Head', 50, FULL_RANGES, [(2048, 800), (2048, 1024)], (2048, 1024), 12),
    'solov2/solov2_r101_fpn_8gpu_3x':
        ('SOLOv2', 'SOLOv2Head', 101, FULL_RANGES, MS_1333, (1333, 800), 36),
    'solov2/solov2_r101_dcn_fpn_8gpu_3x':
        ('SOLOv2', 'SOLOv2Head', 101, FULL_RANGES, MS_1333, (1333, 800), 36),
    'solov2/solov2_x101_dcn_fpn_8gpu_3x':
        ('SOLOv2', 'SOLOv2Head', 101, FULL_RANGES, MS_1333, (1333, 800), 36),
    'solov2/solov2_light_448_r18_fpn_8gpu_3x':
        ('SOLOv2', 'SOLOv2Head', 18, LIGHT_448_RANGES,
         [(768, s) for s in (512, 480, 448, 416, 384, 352)], (768, 448), 36),
    'solov2/solov2_light_448_r34_fpn_8gpu_3x':
        ('SOLOv2', 'SOLOv2Head', 34, LIGHT_448_RANGES,
         [(768, s) for s in (512, 480, 448, 416, 384, 352)], (768, 448), 36),
    'solov2/solov2_light_448_r50_fpn_8gpu_3x':
        ('SOLOv2', 'SOLOv2Head', 50, LIGHT_448_RANGES,
         [(768, s) for s in (512, 480, 448, 416, 384, 352)], (768, 448), 36),
    'solov2/solov2_light_512_dcn_r50_fpn_8gpu_3x':
        ('SOLOv2', 'SOLOv2LightHead', 50, LIGHT_512_RANGES,
         [(852, s) for s in (512, 480, 448, 416, 384, 352)], (852, 512), 36),
}

# name: (stacked_convs, seg_feat_channels, ins_out_channels / mask-feature channels)
SOLOV2_HEADS = {
    'solov2_r50_fpn_8gpu_1x': (4, 512, 256), 'solov2_r50_fpn_8gpu_3x': (4, 512, 256),
    'solov2_r50_fpn_8gpu_1x_cityscapes': (4, 512, 256),
    'solov2_r101_fpn_8gpu_3x': (4, 512, 256), 'solov2_r101_dcn_fpn_8gpu_3x': (4, 512, 256),
    'solov2_x101_dcn_fpn_8gpu_3x': (4, 512, 256),
    'solov2_light_448_r18_fpn_8gpu_3x': (2, 256, 128),
    'solov2_light_448_r34_fpn_8gpu_3x': (2, 256, 128),
    'solov2_light_448_r50_fpn_8gpu_3x': (2, 256, 128),
    'solov2_light_512_dcn_r50_fpn_8gpu_3x': (3, 256, 128),
}

TEST_CFG = dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, update_thr=0.05, kernel='gaussian',
                sigma=2.0, max_per_img=100)


def load(name):
    return Config.fromfile(str(CONFIG_DIR / f'{name}.py'))


def test_every_config_file_is_listed():
    found = {str(p.relative_to(CONFIG_DIR).with_suffix(''))
             for d in ('solo', 'solov2') for p in (CONFIG_DIR / d).glob('*.py')}
    assert found == set(EXPECTED)


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_config_values(name):
    detector, head_type, depth, ranges, train_scale, test_scale, epochs = EXPECTED[name]
    cfg = load(name)
    model, head = cfg.model, cfg.model.bbox_head
    assert model.type == detector and head.type == head_type
    assert model.backbone.depth == depth
    assert model.backbone.frozen_stages == 1 and model.backbone.style == 'pytorch'
    assert model.backbone.out_indices == (0, 1, 2, 3)
    assert model.neck.type == 'FPN' and model.neck.num_outs == 5
    assert model.neck.in_channels == ([64, 128, 256, 512] if depth in (18, 34)
                                      else [256, 512, 1024, 2048])

    cityscapes = name.endswith('_cityscapes')
    assert head.num_classes == (8 if cityscapes else 80)
    assert head.num_grids == [40, 36, 24, 16, 12]
    assert head.strides == [8, 8, 16, 32, 32]
    assert head.scale_ranges == ranges
    assert head.sigma == 0.2
    assert head.loss_ins == dict(type='DiceLoss', use_sigmoid=True, loss_weight=3.0)
    assert head.loss_cate == dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                                  loss_weight=1.0)
    assert cfg.train_cfg == {} and cfg.test_cfg == TEST_CFG

    train_resize = [t for t in cfg.data.train.pipeline if t.type == 'Resize']
    assert len(train_resize) == 1 and train_resize[0].img_scale == train_scale
    assert train_resize[0].keep_ratio is True
    if isinstance(train_scale, list):  # Cityscapes: a (long, short) range, COCO: listed values
        assert train_resize[0].get('multiscale_mode', 'range') == \
            ('range' if cityscapes else 'value')
    for split in ('val', 'test'):
        aug = cfg.data[split].pipeline[1]
        assert aug.type == 'MultiScaleFlipAug' and aug.img_scale == test_scale
        assert aug.flip is False
    assert cfg.data.imgs_per_gpu == (5 if cityscapes else 2) and cfg.data.workers_per_gpu == 2

    assert cfg.total_epochs == epochs
    assert cfg.lr_config.step == ([9, 11] if epochs == 12 else [27, 33])
    assert cfg.lr_config.warmup_iters == 500
    assert cfg.lr_config.warmup_ratio == (0.01 if detector == 'SOLOv2' else 1.0 / 3)
    assert cfg.optimizer == dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001)
    assert cfg.optimizer_config == dict(grad_clip=dict(max_norm=35, norm_type=2))
    for key in ('checkpoint_config', 'log_config', 'dist_params', 'log_level', 'work_dir',
                'load_from', 'resume_from', 'workflow'):
        assert key in cfg, f'{name}: missing {key}'
    assert 'device_ids' not in cfg
    assert cfg.work_dir == f"./work_dirs/{name.split('/')[1]}"


def test_cityscapes_data():
    data = load('solov2/solov2_r50_fpn_8gpu_1x_cityscapes').data
    for split in ('train', 'val', 'test'):
        assert data[split].type == 'CityscapesDataset'
        assert data[split].ann_file == \
            f'data/cityscapes/annotations/instancesonly_filtered_gtFine_{split}.json'
        assert data[split].img_prefix == f'data/cityscapes/{split}/'


@pytest.mark.parametrize('name', sorted(SOLOV2_HEADS))
def test_solov2_head_and_mask_features(name):
    stacked, feat, out = SOLOV2_HEADS[name]
    cfg = load(f'solov2/{name}')
    head, mfh = cfg.model.bbox_head, cfg.model.mask_feat_head
    assert head.stacked_convs == stacked
    assert (head.seg_feat_channels, head.ins_out_channels) == (feat, out)
    assert mfh.type == 'MaskFeatHead' and mfh.num_classes == out  # channels, not classes
    assert (mfh.in_channels, mfh.out_channels, mfh.start_level, mfh.end_level) == (256, 128, 0, 3)
    assert mfh.norm_cfg == dict(type='GN', num_groups=32, requires_grad=True)


@pytest.mark.parametrize('name,stacked', [
    ('solo/solo_r50_fpn_8gpu_1x', 7), ('solo/decoupled_solo_r101_fpn_8gpu_3x', 7),
    ('solo/decoupled_solo_light_r50_fpn_8gpu_3x', 4)])
def test_solo_towers(name, stacked):
    head = load(name).model.bbox_head
    assert head.stacked_convs == stacked and head.seg_feat_channels == 256
    assert head.cate_down_pos == 0
    assert 'with_deform' not in head  # accepted and ignored by the original: removed


def test_dcn_variants():
    dcn_v1 = dict(type='DCN', deformable_groups=1, fallback_on_stride=False)
    for name in ('solo/decoupled_solo_light_dcn_r50_fpn_8gpu_3x',
                 'solov2/solov2_light_512_dcn_r50_fpn_8gpu_3x'):
        cfg = load(name)
        assert cfg.model.backbone.dcn == dcn_v1
        assert cfg.model.backbone.stage_with_dcn == (False, True, True, True)
        assert cfg.model.bbox_head.use_dcn_in_tower is True
        assert cfg.model.bbox_head.type_dcn == 'DCN'
        assert 'conv_cfg' not in cfg.model.get('mask_feat_head', {})
    for name in ('solov2/solov2_r101_dcn_fpn_8gpu_3x', 'solov2/solov2_x101_dcn_fpn_8gpu_3x'):
        cfg = load(name)
        assert cfg.model.backbone.dcn == dict(dcn_v1, type='DCNv2')
        assert cfg.model.bbox_head.type_dcn == 'DCNv2'
        assert cfg.model.mask_feat_head.conv_cfg == dict(type='DCNv2')
    for name in EXPECTED:
        if 'dcn' not in name:
            cfg = load(name)
            assert 'dcn' not in cfg.model.backbone and 'use_dcn_in_tower' not in cfg.model.bbox_head


def test_backbones_and_pretrained():
    x101 = load('solov2/solov2_x101_dcn_fpn_8gpu_3x').model
    assert x101.pretrained == 'open-mmlab://resnext101_64x4d'
    assert x101.backbone.type == 'ResNeXt'
    assert (x101.backbone.groups, x101.backbone.base_width) == (64, 4)
    for name, (_, _, depth, *_rest) in EXPECTED.items():
        model = load(name).model
        if 'x101' not in name:
            assert model.backbone.type == 'ResNet'
            assert model.pretrained == f'torchvision://resnet{depth}'


def test_no_config_counts_background():
    files = list(CONFIG_DIR.rglob('*.py'))
    assert files
    for path in files:
        assert not re.search(r'num_classes\s*=\s*81', path.read_text()), path


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_dump_round_trip(name, tmp_path):
    cfg = load(name)
    cfg.dump(str(tmp_path / 'dumped.py'))
    assert Config.fromfile(str(tmp_path / 'dumped.py')).to_dict() == cfg.to_dict()
