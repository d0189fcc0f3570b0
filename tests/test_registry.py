"""Tests for mmdet_solo.registry: registering, building, and its error messages."""
import collections

import pytest
import torch

from mmdet_solo.config import ConfigDict, ConfigError
from mmdet_solo.registry import Registry, accepted_args, build_from_cfg


@pytest.fixture
def heads():
    registry = Registry('head')

    @registry.register_module()
    class SOLOHead:
        def __init__(self, num_classes, in_channels=256, sub=None):
            self.num_classes = num_classes
            self.in_channels = in_channels
            self.sub = sub

    @registry.register_module(name='SOLOv2Head')
    class _V2:
        def __init__(self, num_classes):
            self.num_classes = num_classes

    return registry


def test_register_and_build(heads):
    assert 'SOLOHead' in heads and 'SOLOv2Head' in heads and len(heads) == 2
    head = heads.build(dict(type='SOLOHead', num_classes=80, in_channels=128))
    assert (head.num_classes, head.in_channels) == (80, 128)
    assert heads.build(dict(type='SOLOv2Head', num_classes=3)).num_classes == 3
    assert heads.get('SOLOHead') is heads.module_dict['SOLOHead']
    assert heads.get('Nope') is None
    assert 'SOLOHead' in repr(heads)


def test_build_accepts_config_dict_and_does_not_mutate(heads):
    cfg = ConfigDict(type='SOLOHead', num_classes=80, sub=dict(a=[1]))
    head = build_from_cfg(cfg, heads)
    assert cfg == dict(type='SOLOHead', num_classes=80, sub=dict(a=[1]))
    head.sub['a'].append(2)
    assert cfg.sub.a == [1]  # the built object gets its own copy


def test_default_args(heads):
    head = heads.build(dict(type='SOLOHead'), default_args=dict(num_classes=5, in_channels=64))
    assert (head.num_classes, head.in_channels) == (5, 64)
    # the config wins over default_args
    head = heads.build(dict(type='SOLOHead', num_classes=7), default_args=dict(num_classes=5))
    assert head.num_classes == 7
    # 'type' may come from default_args
    assert heads.build(dict(num_classes=2), default_args=dict(type='SOLOv2Head')).num_classes == 2


def test_type_may_be_a_class(heads):
    head = heads.build(dict(type=collections.OrderedDict, a=1))
    assert head == {'a': 1}


def test_register_forms():
    registry = Registry('loss')

    @registry.register_module
    class Bare:
        pass

    @registry.register_module
    def bare_function(x=1):
        return x

    def plain(x=2):
        return x

    assert registry.register_module(module=plain, name='Plain') is plain
    assert registry.get('Bare') is Bare
    assert callable(bare_function) and bare_function() == 1  # the function itself is returned
    assert registry.build(dict(type='bare_function', x=4)) == 4
    assert registry.build(dict(type='Plain')) == 2


def test_register_rejects_non_callables():
    with pytest.raises(TypeError, match='only classes or functions'):
        Registry('x').register_module(module=3, name='three')


def test_duplicate_name(heads):
    with pytest.raises(KeyError, match=r"'SOLOHead' is already registered in the head registry"):
        @heads.register_module(name='SOLOHead')
        class Other:
            pass
    original = heads.get('SOLOHead')
    heads.register_module(name='SOLOHead', module=original)  # the same object again is fine

    @heads.register_module(name='SOLOHead', force=True)
    class Replacement:
        pass
    assert heads.get('SOLOHead') is Replacement


def test_unknown_type_lists_close_names(heads):
    with pytest.raises(KeyError) as info:
        heads.build(dict(type='SoloHead', num_classes=1))
    msg = str(info.value)
    assert "'SoloHead' is not in the head registry" in msg
    assert "did you mean 'SOLOHead'" in msg
    assert 'registered: SOLOHead, SOLOv2Head' in msg


def test_unknown_type_without_close_match(heads):
    with pytest.raises(KeyError, match="'Unrelated' is not in the head registry") as info:
        heads.build(dict(type='Unrelated'))
    assert 'did you mean' not in str(info.value)


def test_dotted_path_type(heads):
    built = heads.build(dict(type='collections.OrderedDict', a=1))
    assert isinstance(built, collections.OrderedDict) and built['a'] == 1
    registry = heads.build(dict(type='mmdet_solo.registry.Registry', name='tmp'))
    assert isinstance(registry, Registry) and registry.name == 'tmp'
    with pytest.raises(KeyError, match="head registry: cannot import type 'no_such_pkg.Thing'"):
        heads.build(dict(type='no_such_pkg.Thing'))
    with pytest.raises(KeyError, match="cannot import type 'collections.NoSuchThing'"):
        heads.build(dict(type='collections.NoSuchThing'))


def test_missing_type(heads):
    with pytest.raises(KeyError, match="head: the config has no 'type' key"):
        heads.build(dict(num_classes=80))


def test_cfg_must_be_a_dict(heads):
    with pytest.raises(TypeError, match='head: a config must be a dict, got list'):
        heads.build([('type', 'SOLOHead')])


def test_unknown_argument_names_the_class_and_close_matches(heads):
    with pytest.raises(ConfigError, match=r"head SOLOHead: unknown key 'bogus'; it takes "
                                          r'in_channels, num_classes, sub'):
        heads.build(dict(type='SOLOHead', num_classes=80, bogus=1))
    with pytest.raises(ConfigError, match=r"unknown key 'num_clases' \(did you mean "
                                          r"'num_classes'\?\)"):
        heads.build(dict(type='SOLOHead', num_clases=80))


def test_constructor_error_names_the_class(heads):
    with pytest.raises(TypeError, match=r'head: building SOLOHead failed: .*required'):
        heads.build(dict(type='SOLOHead'))


def test_accepted_args_follow_kwargs_to_the_base_class():
    class Base(torch.nn.Module):
        def __init__(self, depth: int = 1, frozen: bool = False):
            super().__init__()

    class Child(Base):
        def __init__(self, groups: int = 1, **kwargs):
            super().__init__(**kwargs)

    def anything(**kwargs):
        return kwargs

    assert accepted_args(Child) == {'groups', 'depth', 'frozen'}
    assert accepted_args(anything) is None
    assert accepted_args(collections.OrderedDict) is None
