"""tools/train.py argument handling: option spellings, --cfg-options checks, clobber refusal."""
from __future__ import annotations

import importlib.util
import os.path as osp

import pytest

from mmdet_solo.apis.config_check import check_cfg_options
from mmdet_solo.config import Config, ConfigError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'solov2', 'solov2_light_448_r18_fpn_8gpu_3x.py')


def _train_tool():
    spec = importlib.util.spec_from_file_location('train_tool', osp.join(ROOT, 'tools', 'train.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def cfg():
    return Config.fromfile(CONFIG)


def test_option_spellings():
    tool = _train_tool()
    a = tool.parse_args([CONFIG, '--work_dir', 'w', '--resume_from', 'r.pth', '--auto_resume',
                         '--cfg_options', 'total_epochs=2'])
    b = tool.parse_args([CONFIG, '--work-dir', 'w', '--resume-from', 'r.pth', '--auto-resume',
                         '--cfg-options', 'total_epochs=2'])
    for args in (a, b):
        assert (args.work_dir, args.resume_from, args.auto_resume) == ('w', 'r.pth', True)
        assert args.cfg_options == {'total_epochs': 2}
    assert tool.parse_args([CONFIG, '--no-validate']).validate is False
    assert tool.parse_args([CONFIG, '--validate']).validate is True
    assert tool.parse_args([CONFIG]).validate is None


@pytest.mark.parametrize('options', [
    {'total_epochs': 2}, {'optimizer.lr': 0.1}, {'optimizer.nesterov': True},
    {'model.bbox_head.num_grids': [4, 4, 4, 4, 4]}, {'data.train.pipeline.2.img_scale': (64, 64)},
    {'evaluation.interval': 1}, {'seed': 3}, {'channels_last': True}])
def test_cfg_options_accepted(cfg, options):
    check_cfg_options(cfg, options)


@pytest.mark.parametrize('options, match', [
    ({'total_epoch': 2}, "no key 'total_epoch'.*did you mean 'total_epochs'"),
    ({'model.bakbone.depth': 50}, "'model' has no key 'bakbone'.*'backbone'"),
    ({'optimzer.lr': 0.1}, "the config has no key 'optimzer'"),
    ({'data.train.pipeline.x': 1}, 'must be an integer index'),
    ({'data.train.pipeline.99.a': 1}, 'out of range'),
    ({'optimizer.lr.x': 1}, 'holds a float'),
])
def test_cfg_options_unknown_key(cfg, options, match):
    with pytest.raises(ConfigError, match=f'(?i){match}'):
        check_cfg_options(cfg, options)


def test_cfg_options_error_from_tool(capsys):
    rc = _train_tool().main([CONFIG, '--cfg-options', 'total_epoch=2'])
    assert rc == 2
    err = capsys.readouterr().err
    assert "no key 'total_epoch'" in err and 'Rule:' in err


def test_refuses_work_dir_with_checkpoints(tmp_path, capsys):
    (tmp_path / 'epoch_1.pth').write_bytes(b'x')
    (tmp_path / 'latest.pth').write_bytes(b'x')
    rc = _train_tool().main([CONFIG, '--work-dir', str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert 'already holds checkpoints' in err and 'epoch_1.pth' in err
    assert '--auto-resume' in err and '--overwrite' in err
    assert (tmp_path / 'epoch_1.pth').read_bytes() == b'x'


def test_missing_resume_file_is_an_error(tmp_path, capsys):
    rc = _train_tool().main([CONFIG, '--work-dir', str(tmp_path), '--resume-from',
                             str(tmp_path / 'nope.pth')])
    assert rc == 2 and 'does not exist' in capsys.readouterr().err
