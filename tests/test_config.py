"""Tests for mmdet_solo.config: loading, _base_ merging, overrides, DictAction, dumping."""
import argparse
import copy
import pickle
import textwrap

import pytest

from mmdet_solo.config import (Config, ConfigDict, ConfigError, ConfigNotFoundError,
                               DictAction, parse_value)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


BASE_MODEL = """
    import os
    from math import sqrt

    model = dict(
        type='SOLOv2',
        backbone=dict(type='ResNet', depth=50, out_indices=(0, 1, 2, 3)),
        bbox_head=dict(type='SOLOv2Head', num_grids=[40, 36, 24, 16, 12], sigma=0.2,
                       loss_cate=dict(type='FocalLoss', gamma=2.0)))
    test_cfg = dict(score_thr=0.1, mask_thr=0.5)

    def helper(x):
        return x
    __private = 1
"""


# ----------------------------------------------------------------------------- loading
def test_fromfile_plain(tmp_path):
    path = write(tmp_path, 'model.py', BASE_MODEL)
    cfg = Config.fromfile(str(path))
    assert set(cfg) == {'model', 'test_cfg'}  # no modules, functions or dunder names
    assert cfg.filename == str(path)
    assert cfg.model.bbox_head.num_grids == [40, 36, 24, 16, 12]
    assert cfg['model']['backbone']['out_indices'] == (0, 1, 2, 3)
    assert isinstance(cfg.model.bbox_head.loss_cate, ConfigDict)
    assert 'model' in cfg and 'missing' not in cfg
    assert cfg.get('missing', 3) == 3
    assert len(cfg) == 2
    assert "score_thr=0.1" in cfg.text


def test_json_configs_are_refused(tmp_path):
    path = tmp_path / 'child.json'
    path.write_text('{"a": 1}')
    with pytest.raises(ConfigError, match=r"unsupported config file type '\.json'.*\.py"):
        Config.fromfile(str(path))


def test_single_base_override_and_list_replacement(tmp_path):
    write(tmp_path, 'base/model.py', BASE_MODEL)
    path = write(tmp_path, 'child.py', """
        _base_ = './base/model.py'
        model = dict(backbone=dict(depth=101),
                     bbox_head=dict(num_grids=[10, 20], loss_cate=dict(gamma=1.0)))
        test_cfg = dict(score_thr=0.3)
        extra = 'new'
    """)
    cfg = Config.fromfile(str(path))
    assert cfg.model.type == 'SOLOv2'                      # from the base
    assert cfg.model.backbone.depth == 101                 # overridden
    assert cfg.model.backbone.type == 'ResNet'             # kept by the dict merge
    assert cfg.model.bbox_head.num_grids == [10, 20]       # lists are replaced, not merged
    assert cfg.model.bbox_head.sigma == 0.2
    assert cfg.model.bbox_head.loss_cate == dict(type='FocalLoss', gamma=1.0)
    assert cfg.test_cfg == dict(score_thr=0.3, mask_thr=0.5)
    assert cfg.extra == 'new'
    assert '_base_' not in cfg
    # text holds the base first, then the child
    assert cfg.text.index('base/model.py') < cfg.text.index('child.py')


def test_list_of_bases_and_nested_bases(tmp_path):
    write(tmp_path, '_base_/root.py', "runtime = dict(log_level='INFO', interval=50)\n")
    write(tmp_path, '_base_/runtime.py', """
        _base_ = './root.py'
        runtime = dict(interval=10)
        workflow = [('train', 1)]
    """)
    write(tmp_path, '_base_/model.py', BASE_MODEL)
    path = write(tmp_path, 'configs/leaf.py', """
        _base_ = ['../_base_/model.py', '../_base_/runtime.py']
        runtime = dict(log_level='DEBUG')
    """)
    cfg = Config.fromfile(str(path))
    assert cfg.runtime == dict(log_level='DEBUG', interval=10)
    assert cfg.workflow == [('train', 1)]
    assert cfg.model.backbone.depth == 50
    for name in ('root.py', 'runtime.py', 'model.py', 'leaf.py'):
        assert name in cfg.text


def test_grandchild_of_leaf(tmp_path):
    write(tmp_path, 'a.py', "model = dict(depth=50, dcn=None)\n")
    write(tmp_path, 'b.py', "_base_ = './a.py'\nmodel = dict(depth=101)\n")
    path = write(tmp_path, 'c.py',
                 "_base_ = 'b.py'\nmodel = dict(dcn=dict(type='DCN'))\n")
    assert Config.fromfile(str(path)).model == dict(depth=101, dcn=dict(type='DCN'))


def test_delete_replaces_base_dict(tmp_path):
    write(tmp_path, 'base.py', BASE_MODEL)
    path = write(tmp_path, 'child.py', """
        _base_ = './base.py'
        model = dict(backbone=dict(_delete_=True, type='ResNeXt', groups=64))
    """)
    cfg = Config.fromfile(str(path))
    assert cfg.model.backbone == dict(type='ResNeXt', groups=64)
    assert cfg.model.bbox_head.sigma == 0.2


def test_delete_key_removed_without_base(tmp_path):
    path = write(tmp_path, 'a.py', "x = dict(_delete_=True, y=dict(_delete_=True, z=1))\n")
    assert Config.fromfile(str(path)).to_dict() == {'x': {'y': {'z': 1}}}


def test_dict_over_scalar_needs_delete(tmp_path):
    write(tmp_path, 'base.py', "x = [1, 2]\n")
    path = write(tmp_path, 'child.py', "_base_ = './base.py'\nx = dict(a=1)\n")
    with pytest.raises(ConfigError, match=r"key 'x'.*_delete_=True"):
        Config.fromfile(str(path))


# ----------------------------------------------------------------------------- errors
def test_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, 'bad.py', "a = 1\nb = dict(x=1,\nc = ]\n")
    with pytest.raises(ConfigError, match=r'syntax error in config .*bad\.py, line 3'):
        Config.fromfile(str(path))


def test_runtime_error_names_file_and_line(tmp_path):
    path = write(tmp_path, 'bad.py', "a = 1\nb = undefined_name\n")
    with pytest.raises(ConfigError, match=r"bad\.py, line 2: NameError"):
        Config.fromfile(str(path))


def test_missing_base_names_referencing_file(tmp_path):
    path = write(tmp_path, 'child.py', "_base_ = ['./nothere.py']\n")
    with pytest.raises(ConfigNotFoundError, match=r'child\.py references _base_ .*nothere\.py'):
        Config.fromfile(str(path))
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError
        Config.fromfile(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='config file not found'):
        Config.fromfile(str(tmp_path / 'none.py'))


def test_base_cycle_shows_chain(tmp_path):
    write(tmp_path, 'a.py', "_base_ = './b.py'\nx = 1\n")
    write(tmp_path, 'b.py', "_base_ = './c.py'\ny = 1\n")
    write(tmp_path, 'c.py', "_base_ = './a.py'\nz = 1\n")
    with pytest.raises(ConfigError, match=r'cycle: .*a\.py -> .*b\.py -> .*c\.py -> .*a\.py'):
        Config.fromfile(str(tmp_path / 'a.py'))


def test_self_reference_is_a_cycle(tmp_path):
    path = write(tmp_path, 'a.py', "_base_ = './a.py'\n")
    with pytest.raises(ConfigError, match='cycle'):
        Config.fromfile(str(path))


def test_duplicate_key_between_bases(tmp_path):
    write(tmp_path, 'one.py', "model = dict(a=1)\nx = 1\n")
    write(tmp_path, 'two.py', "model = dict(b=2)\n")
    path = write(tmp_path, 'child.py', "_base_ = ['./one.py', './two.py']\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'model'.*one\.py and .*two\.py"):
        Config.fromfile(str(path))


def test_unsupported_extension(tmp_path):
    path = write(tmp_path, 'cfg.json', '{"a": 1}\n')
    with pytest.raises(ConfigError, match=r"unsupported config file type '\.json'"):
        Config.fromfile(str(path))
    child = write(tmp_path, 'child.py', "_base_ = './cfg.json'\n")
    with pytest.raises(ConfigError, match=r'referenced as _base_ by .*child\.py'):
        Config.fromfile(str(child))
    # .yaml is an AdelaiDet config (mmdet_solo/config_yaml.py), whose keys are checked
    path = write(tmp_path, 'cfg.yaml', 'a: 1\n')
    with pytest.raises(ConfigError, match=r"cfg\.yaml: unknown key 'a'"):
        Config.fromfile(str(path))


def test_bad_base_value(tmp_path):
    path = write(tmp_path, 'a.py', "_base_ = 3\n")
    with pytest.raises(ConfigError, match='must be a path or a list of paths'):
        Config.fromfile(str(path))


def test_missing_attribute_names_key(tmp_path):
    cfg = Config.fromfile(str(write(tmp_path, 'm.py', BASE_MODEL)))
    with pytest.raises(AttributeError, match="no key 'neck'"):
        cfg.model.neck
    with pytest.raises(AttributeError, match="no key 'nothing'"):
        cfg.nothing
    assert getattr(cfg.model, 'neck', None) is None


def test_reserved_keys():
    with pytest.raises(ConfigError, match="'filename' is reserved"):
        Config(dict(filename='x'))


# ----------------------------------------------------------------------------- ConfigDict / Config
def test_config_dict_conversion_and_attributes():
    d = ConfigDict(a=dict(b=[dict(c=1), 2, (dict(d=3),)]))
    assert isinstance(d.a.b[0], ConfigDict) and d.a.b[0].c == 1
    assert isinstance(d.a.b[2], tuple) and d.a.b[2][0].d == 3
    d.x = dict(y=1)
    assert isinstance(d['x'], ConfigDict) and d.x.y == 1
    d.update(z=dict(w=2))
    assert d.z.w == 2
    del d.x
    assert 'x' not in d
    plain = d.to_dict()
    assert type(plain['a']) is dict and type(plain['a']['b'][0]) is dict


def test_config_copy_pickle_and_setters(tmp_path):
    cfg = Config.fromfile(str(write(tmp_path, 'm.py', BASE_MODEL)))
    dup = copy.deepcopy(cfg)
    dup.model.backbone.depth = 18
    assert cfg.model.backbone.depth == 50 and dup.filename == cfg.filename
    assert isinstance(dup.model, ConfigDict)
    restored = pickle.loads(pickle.dumps(cfg))
    assert restored == cfg and restored.text == cfg.text
    cfg.new_key = dict(a=1)
    cfg['other'] = 2
    assert cfg.new_key.a == 1 and cfg.other == 2
    assert list(cfg)[-2:] == ['new_key', 'other']
    assert type(cfg.to_dict()['model']) is dict


def test_config_is_a_config_dict_with_file_attributes(tmp_path):
    write(tmp_path, 'base.py', "a = dict(x=1)\nb = 2\n")
    cfg = Config.fromfile(str(write(tmp_path, 'c.py', "_base_ = 'base.py'\na = dict(y=2)\n")))
    assert isinstance(cfg, ConfigDict) and cfg == dict(a=dict(x=1, y=2), b=2)
    assert 'filename' not in cfg and 'text' not in cfg and 'unread_names' not in cfg
    assert cfg.unread_names == (('a', str(tmp_path / 'base.py')), ('b', str(tmp_path / 'base.py')),
                                ('a', str(tmp_path / 'c.py')))
    assert Config(dict(a=1)).unread_names is None and Config(dict(a=1)).filename is None
    with pytest.raises(AttributeError, match="'filename' is read-only"):
        cfg.filename = 'x'
    shallow = copy.copy(cfg)
    assert type(shallow) is Config and shallow.text == cfg.text and shallow.a is cfg.a
    assert type(cfg.a.copy()) is ConfigDict
    restored = pickle.loads(pickle.dumps(cfg))
    assert restored.unread_names == cfg.unread_names and restored.filename == cfg.filename
    assert repr(cfg).startswith(f'Config (path: {cfg.filename}): ')


# ----------------------------------------------------------------------------- merge_from_dict
def test_merge_from_dict(tmp_path):
    cfg = Config.fromfile(str(write(tmp_path, 'd.py', """
        model = dict(bbox_head=dict(num_grids=[40, 36], sigma=0.2))
        data = dict(imgs_per_gpu=2, train=dict(pipeline=[
            dict(type='Load'), dict(type='Flip'), dict(type='Resize', img_scale=(1333, 800))]))
    """)))
    cfg.merge_from_dict({
        'model.bbox_head.num_grids': [12],
        'data.imgs_per_gpu': 4,
        'data.train.pipeline.2.img_scale': (640, 480),
        'data.train.pipeline.-1.keep_ratio': True,
        'optimizer.lr': 0.02,                          # missing intermediates are created
        'model.bbox_head': dict(loss=dict(type='Dice')),  # a dict value merges
    })
    assert cfg.model.bbox_head == dict(num_grids=[12], sigma=0.2, loss=dict(type='Dice'))
    assert cfg.data.imgs_per_gpu == 4
    assert cfg.data.train.pipeline[2] == dict(type='Resize', img_scale=(640, 480),
                                              keep_ratio=True)
    assert isinstance(cfg.optimizer, ConfigDict) and cfg.optimizer.lr == 0.02
    cfg.merge_from_dict({'model.bbox_head': dict(_delete_=True, type='X')})
    assert cfg.model.bbox_head == dict(type='X')
    cfg.merge_from_dict({'data.train.pipeline.0': dict(type='LoadImage')})
    assert cfg.data.train.pipeline[0] == dict(type='LoadImage')


def test_merge_from_dict_errors(tmp_path):
    cfg = Config(dict(a=dict(b=[1, 2]), s=3))
    with pytest.raises(ConfigError, match=r"'a\.b' is a list, so 'x' must be an integer"):
        cfg.merge_from_dict({'a.b.x': 1})
    with pytest.raises(ConfigError, match='index 5 is out of range'):
        cfg.merge_from_dict({'a.b.5': 1})
    with pytest.raises(ConfigError, match=r"'s' holds a int"):
        cfg.merge_from_dict({'s.t': 1})
    with pytest.raises(ConfigError, match=r"'a\.b\.0' holds a int \(1\), not a dict or list"):
        cfg.merge_from_dict({'a.b.0.c': 1})
    with pytest.raises(ConfigError, match=r"'a\.b' is a list, so 'x' must be an integer"):
        cfg.merge_from_dict({'a.b.x.y': 1})
    assert cfg == dict(a=dict(b=[1, 2]), s=3)  # nothing changed


# ----------------------------------------------------------------------------- DictAction
@pytest.mark.parametrize('text,expected', [
    ('1', 1), ('-3', -3), ('1.5', 1.5), ('1e-3', 1e-3),
    ('True', True), ('true', True), ('False', False), ('false', False), ('None', None),
    ('none', 'none'), ('abc', 'abc'), ("'1'", '1'), ('"a,b"', 'a,b'), ('', ''),
    ('(1,2)', (1, 2)), ('(1,)', (1,)), ('()', ()), ('[1,2]', [1, 2]), ('[]', []),
    ('[1,[2,3],(4,5)]', [1, [2, 3], (4, 5)]), ('[(640,480),(1333,800)]', [(640, 480), (1333, 800)]),
    ('a,b', ['a', 'b']), ('1,2.5,x', [1, 2.5, 'x']), ("['a', 'b c']", ['a', 'b c']),
])
def test_parse_value(text, expected):
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)


def test_dict_action():
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args([
        '--cfg-options', 'model.bbox_head.num_grids=[40,36,24]', 'data.imgs_per_gpu=4',
        'data.train.pipeline.2.img_scale=(640,480)', 'work_dir=/tmp/x', 'flag=false',
        'names=a,b', '--cfg-options', 'extra=None'])
    assert args.cfg_options == {
        'model.bbox_head.num_grids': [40, 36, 24], 'data.imgs_per_gpu': 4,
        'data.train.pipeline.2.img_scale': (640, 480), 'work_dir': '/tmp/x', 'flag': False,
        'names': ['a', 'b'], 'extra': None}
    with pytest.raises(SystemExit):
        parser.parse_args(['--cfg-options', 'novalue'])
    with pytest.raises(SystemExit):
        parser.parse_args(['--cfg-options', 'a=[1,2'])
    cfg = Config(dict(model=dict(bbox_head=dict(num_grids=[1]))))
    cfg.merge_from_dict(args.cfg_options)
    assert cfg.model.bbox_head.num_grids == [40, 36, 24]


# ----------------------------------------------------------------------------- dumping
def test_pretty_text_and_dump_round_trip(tmp_path):
    write(tmp_path, 'base.py', BASE_MODEL)
    cfg = Config.fromfile(str(write(tmp_path, 'child.py', """
        _base_ = './base.py'
        data = dict(train=dict(pipeline=[dict(type='Resize', img_scale=[(1333, 800), (1333, 640)],
                                              multiscale_mode='value', keep_ratio=True)]))
        odd = {1: 'int key', 'not an id': (1,), 'class': None, 'f': 1.0 / 3, 'inf': float('inf')}
        workflow = [('train', 1)]
        empty = dict(a=[], b=(), c={})
    """)))
    text = cfg.pretty_text
    compile(text, 'pretty', 'exec')  # valid Python
    out = tmp_path / 'work' / 'dumped.py'
    assert cfg.dump(str(out)) is None
    assert out.read_text() == text
    again = Config.fromfile(str(out))
    assert again.pretty_text == text  # stable
    assert again.to_dict() == cfg.to_dict()
    assert again.model.backbone.out_indices == (0, 1, 2, 3)  # tuples stay tuples
    assert again.odd['not an id'] == (1,)
    assert [p.name for p in out.parent.iterdir()] == ['dumped.py']  # no temp file left over


def test_dump_bad_extension(tmp_path):
    cfg = Config(dict(a=dict(b=[1, 2], c='x')))
    for name in ('c.yaml', 'c.json'):
        with pytest.raises(ConfigError, match=r"unsupported extension '\.[a-z]+', expected \.py"):
            cfg.dump(str(tmp_path / name))
    assert list(tmp_path.iterdir()) == []


def test_pretty_text_rejects_objects():
    with pytest.raises(ConfigError, match=r"at 'a\.b': objects of type object"):
        Config(dict(a=dict(b=object()))).pretty_text
