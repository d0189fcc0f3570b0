"""mmdet_solo.apis.config_check: every key a config sets is one something reads."""
from __future__ import annotations

import glob
import importlib.util
import os.path as osp

import pytest

from mmdet_solo.apis.config_check import (TOP_LEVEL_KEYS, check_config, framework_keys,
                                          load_config)
from mmdet_solo.config import Config, ConfigError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE = osp.join(ROOT, 'configs', 'solov2', 'solov2_light_448_r18_fpn_8gpu_3x.py')
ALL_CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                     if '_base_' not in p)


def _child(tmp_path, body: str, name: str = 'child.py') -> str:
    path = tmp_path / name
    path.write_text(f'_base_ = {BASE!r}\n{body}\n')
    return str(path)


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_every_shipped_config_passes(path):
    check_config(Config.fromfile(path))


@pytest.mark.parametrize('body, match', [
    # top-level typos and variables nothing uses
    ("optimzer = dict(type='SGD', lr=0.02)", r"child.py: top-level 'optimzer' is read by nothing "
                                             r"\(did you mean 'optimizer'"),
    ('total_epoch = 3', r"'total_epoch'.*did you mean 'total_epochs'"),
    ("img_norm_cfg = dict(mean=[0, 0, 0], std=[1, 1, 1], to_rgb=True)",
     r"top-level 'img_norm_cfg' is read by nothing.*never sees the variables"),
    ('device_ids = range(8)', r"'device_ids' is not read by mmdet_solo: the launcher chooses"),
    # the SOLO heads' settings
    ('train_cfg = dict(sync_normaliser=False)',
     r"train_cfg: unknown key 'sync_normaliser' \(did you mean 'sync_normalizer'\?\)"),
    ('test_cfg = dict(score_thresh=0.3)', r"test_cfg.score_thresh: .*did you mean 'score_thr'"),
    # arguments of what a type builds, by path
    ('model = dict(bbox_head=dict(num_clases=3))',
     r"model.bbox_head \(SOLOv2Head\): unknown key 'num_clases' \(did you mean 'num_classes'"),
    ('model = dict(backbone=dict(frozen_stage=1))', r"model.backbone \(ResNet\): .*'frozen_stages'"),
    ("model = dict(bbox_head=dict(loss_ins=dict(loss_weigth=3.0)))",
     r"model.bbox_head.loss_ins \(DiceLoss\): unknown key 'loss_weigth'.*'loss_weight'"),
    ("model = dict(neck=dict(num_outs=5, add_extra_conv=True))", r"model.neck \(FPN\).*'add_extra_convs'"),
    ("data = dict(train=dict(pipeline=[dict(type='Resize', img_scal=(1, 2))]))",
     r"data.train.pipeline.0 \(Resize\): unknown key 'img_scal' \(did you mean 'img_scale'"),
    ("data = dict(test=dict(pipeline=[dict(type='MultiScaleFlipAug', img_scale=(1, 1), "
     "transforms=[dict(type='Pad', size_divisr=32)])]))",
     r"data.test.pipeline.0.transforms.0 \(Pad\).*'size_divisor'"),
    ("data = dict(val=dict(filter_empty=False))", r"data.val \(CocoDataset\).*'filter_empty_gt'"),
    ("data = dict(imgs_per_gpus=2)", r"data: unknown key 'imgs_per_gpus'.*'imgs_per_gpu'"),
    ("data = dict(train=dict(type='CocoDatset'))", r"data.train.type: 'CocoDatset' is not in the "
                                                   r"dataset registry; did you mean 'CocoDataset'"),
    # runtime dicts
    ('optimizer = dict(momentun=0.8)', r"optimizer \(SGD\): unknown key 'momentun'.*'momentum'"),
    ('optimizer_config = dict(grad_clip=dict(max_nrom=3))',
     r"optimizer_config.grad_clip: unknown key 'max_nrom'.*'max_norm'"),
    ('optimizer_config = dict(gradclip=None)', r"optimizer_config: unknown key 'gradclip'.*'grad_clip'"),
    ('lr_config = dict(warmup_iter=3)', r"lr_config: unknown key 'warmup_iter'.*'warmup_iters'"),
    ('checkpoint_config = dict(save_optimiser=False)', r"checkpoint_config: .*'save_optimizer'"),
    ('checkpoint_config = dict(max_keep_ckpt=1)', r"'max_keep_ckpts'"),
    ('log_config = dict(interval=5, hooks=[dict(type="TextLoggerHook", intervall=3)])',
     r"log_config.hooks.0 \(TextLoggerHook\): unknown key 'intervall'.*'interval'"),
    ("evaluation = dict(interval=1, metrics='segm')", r"evaluation: unknown key 'metrics'.*'metric'"),
    ("evaluation = dict(interval=1, class_wise=True)", r"evaluation: .*'classwise'"),
    ("fp16 = dict(loss_scale=512., dtype='bf16')", r"fp16: unknown key 'dtype'; it takes loss_scale"),
    ("dist_params = dict(backend='gloo', port=29500)", r"dist_params: unknown key 'port'"),
])
def test_typo_is_an_error_naming_the_key_and_close_matches(tmp_path, body, match):
    with pytest.raises(ConfigError, match=match):
        load_config(_child(tmp_path, body))


def test_composition_variables_used_by_their_file_are_allowed(tmp_path):
    path = _child(tmp_path, '\n'.join([
        "data_root = 'somewhere/'",
        "my_scale = (320, 320)",
        "classes = ('a', 'b')",
        "img_norm_cfg = dict(mean=[1., 2., 3.], std=[1., 1., 1.], to_rgb=True)",
        "test_pipeline = [dict(type='LoadImageFromFile'), dict(type='MultiScaleFlipAug', "
        "img_scale=my_scale, flip=False, transforms=[dict(type='Normalize', **img_norm_cfg)])]",
        "data = dict(test=dict(classes=classes, ann_file=data_root + 'a.json', "
        "pipeline=test_pipeline))"]))
    cfg = load_config(path)
    assert cfg.data.test.classes == ('a', 'b')
    assert cfg.data.test.ann_file == 'somewhere/a.json'
    # a work dir keeps the settings only; that copy loads and passes the check again
    out = tmp_path / 'dumped.py'
    framework_keys(cfg).dump(str(out))
    dumped = load_config(str(out))
    assert set(dumped) <= set(TOP_LEVEL_KEYS) and 'img_norm_cfg' not in dumped
    assert dumped.data.test.pipeline == cfg.data.test.pipeline


def test_a_config_without_bases_keeps_only_variables_it_uses(tmp_path):
    path = tmp_path / 'c.py'
    path.write_text('total_epochs = 1\nimg_scale = [1, 2]\n')
    with pytest.raises(ConfigError, match=r"c.py: top-level 'img_scale' is read by nothing"):
        load_config(str(path))
    path.write_text('thr = 0.2\ntotal_epochs = 1\ntest_cfg = dict(score_thr=thr)\n')
    assert load_config(str(path)).test_cfg.score_thr == 0.2


def test_a_dict_config_allows_only_keys_that_are_read():
    check_config(Config(dict(total_epochs=1, seed=0)))
    with pytest.raises(ConfigError, match=r"the given dict: top-level 'epochs'"):
        check_config(Config(dict(epochs=1)))


@pytest.mark.parametrize('options, match', [
    ({'test_cfg.score_thresh': 0.3}, r"test_cfg.score_thresh: .*did you mean 'score_thr'"),
    ({'train_cfg.sync_normaliser': False}, r"'sync_normaliser' \(did you mean 'sync_normalizer'"),
    ({'img_norm_cfg.mean': [1, 2, 3]}, r"'img_norm_cfg' is a variable the config file uses"),
    ({'model.bbox_head.num_clases': 3}, r"model.bbox_head \(SOLOv2Head\): unknown key"),
    ({'evaluation.interval': 1, 'evaluation.metrics': 'segm'}, r"evaluation: unknown key 'metrics'"),
])
def test_cfg_options_are_checked_after_merging(options, match):
    with pytest.raises(ConfigError, match=match):
        load_config(BASE, options)


def test_cfg_options_that_are_read_pass():
    cfg = load_config(BASE, {'test_cfg.score_thr': 0.3, 'evaluation.interval': 2,
                             'train_cfg.sync_normalizer': False, 'optimizer.nesterov': True})
    assert cfg.test_cfg.score_thr == 0.3 and cfg.optimizer.nesterov is True


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f'{name}_tool', osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_tool_refuses_a_typo_before_anything_runs(tmp_path, capsys):
    path = _child(tmp_path, "optimzer = dict(type='SGD', lr=0.02)")
    work_dir = tmp_path / 'work'
    assert _tool('train').main([path, '--work-dir', str(work_dir)]) == 2
    assert "top-level 'optimzer' is read by nothing" in capsys.readouterr().err
    assert not work_dir.exists()


def test_init_detector_checks_the_config(tmp_path):
    from mmdet_solo.apis import init_detector
    path = _child(tmp_path, 'test_cfg = dict(score_thresh=0.3)')
    with pytest.raises(ConfigError, match='score_thresh'):
        init_detector(path, device='cpu')
    with pytest.raises(ConfigError, match='score_thresh'):
        init_detector(BASE, device='cpu', cfg_options={'test_cfg.score_thresh': 0.3})
