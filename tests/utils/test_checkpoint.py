"""Checkpoint loading (safe, three layouts), reporting, offline model zoo and atomic saving."""
import logging
import os
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn

from mmdet_solo.utils import checkpoint as ckpt_mod
from mmdet_solo.utils.checkpoint import (CheckpointError, load_checkpoint, load_state_dict_file,
                                         resolve_model_zoo, save_checkpoint)


def _net(out: int = 3) -> nn.Module:
    torch.manual_seed(out)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, out))


class _Opaque:  # a pickled class: needs code to unpickle
    pass


def _assert_same(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ---------------------------------------------------------------------------------- save / load

def test_save_then_load_roundtrip(tmp_path):
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 2, 3, 3)).sum().backward()
    opt.step()
    path = tmp_path / 'new' / 'dir' / 'epoch_1.pth'
    save_checkpoint(model, str(path), optimizer=opt, meta=dict(epoch=1, CLASSES=('a', 'b')))
    assert sorted(os.listdir(path.parent)) == ['epoch_1.pth']  # no temp file left behind
    raw = torch.load(path, weights_only=True)  # independent reader, mmcv layout
    assert set(raw) == {'meta', 'state_dict', 'optimizer'}
    assert raw['meta']['epoch'] == 1 and raw['meta']['CLASSES'] == ('a', 'b')
    assert 'momentum_buffer' in raw['optimizer']['state'][0]

    fresh = _net(3)
    torch.nn.init.zeros_(fresh[0].weight)
    meta = load_checkpoint(fresh, str(path), strict=True)
    assert meta['epoch'] == 1
    _assert_same(fresh, model)


def test_save_is_atomic_on_failure(tmp_path, monkeypatch):
    path = tmp_path / 'latest.pth'
    save_checkpoint(_net(), str(path), meta=dict(epoch=1))

    def broken_save(obj, f, *a, **k):
        f.write(b'partial')
        raise OSError('disk full')
    monkeypatch.setattr(ckpt_mod.torch, 'save', broken_save)
    with pytest.raises(OSError, match='disk full'):
        save_checkpoint(_net(), str(path), meta=dict(epoch=2))
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ['latest.pth']
    assert load_state_dict_file(str(path))[1]['epoch'] == 1  # old file intact


def test_save_unwraps_dataparallel_and_moves_to_cpu(tmp_path):
    model = _net()
    wrapped = nn.DataParallel(model)
    path = tmp_path / 'dp.pth'
    save_checkpoint(wrapped, str(path))
    sd = torch.load(path, weights_only=True)['state_dict']
    assert list(sd) == list(model.state_dict()) and all(v.device.type == 'cpu' for v in sd.values())


@pytest.mark.parametrize('layout', ['mmdet', 'detectron2', 'bare', 'dataparallel'])
def test_load_layouts(tmp_path, layout):
    model = _net()
    sd = model.state_dict()
    obj = {'mmdet': {'meta': {'epoch': 7}, 'state_dict': sd},
           'detectron2': {'model': sd, 'iteration': 5},
           'bare': sd,
           'dataparallel': OrderedDict(('module.' + k, v) for k, v in sd.items())}[layout]
    path = tmp_path / f'{layout}.pth'
    torch.save(obj, path)
    loaded, meta = load_state_dict_file(str(path))
    assert list(loaded) == list(sd)
    assert meta == ({'epoch': 7} if layout == 'mmdet' else {})
    fresh = _net(3)
    load_checkpoint(fresh, str(path), strict=True)
    _assert_same(fresh, model)


# ------------------------------------------------------------------------------------ reporting

def test_mismatch_report_and_skip(tmp_path, caplog):
    src = _net(out=5)                 # Linear(4, 5): shape differs from Linear(4, 3)
    sd = src.state_dict()
    sd['extra.weight'] = torch.zeros(1)
    del sd['1.running_var']
    path = tmp_path / 'm.pth'
    torch.save({'state_dict': sd}, path)
    dst = _net(out=3)
    before = dst[3].weight.clone()
    with caplog.at_level(logging.WARNING):
        load_checkpoint(dst, str(path))
    text = caplog.text
    assert 'missing keys in the checkpoint (1)' in text and '1.running_var' in text
    assert 'unexpected keys in the checkpoint (1)' in text and 'extra.weight' in text
    assert 'shape mismatch, not loaded (2)' in text
    assert '3.weight: checkpoint (5, 4) vs model (3, 4)' in text
    assert torch.equal(dst[3].weight, before)            # skipped
    assert torch.equal(dst[0].weight, src[0].weight)     # the rest is loaded

    with pytest.raises(RuntimeError) as e:
        load_checkpoint(_net(out=3), str(path), strict=True)
    for piece in ('1.running_var', 'extra.weight', '3.bias: checkpoint (5,) vs model (3,)'):
        assert piece in str(e.value)


# --------------------------------------------------------------------------------- bad files

def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_state_dict_file(str(tmp_path / 'nope.pth'))


def test_truncated(tmp_path):
    path = tmp_path / 'cut.pth'
    torch.save({'state_dict': _net().state_dict()}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match='cut.pth.*truncated or corrupted'):
        load_state_dict_file(str(path))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': _net().state_dict(), 'meta': {'obj': _Opaque()}}, path)
    with pytest.raises(CheckpointError) as e:
        load_state_dict_file(str(path))
    msg = str(e.value)
    assert 'evil.pth' in msg and 'need code to unpickle' in msg and 'refused for safety' in msg
    assert '_Opaque' in msg


def test_no_state_dict_inside(tmp_path):
    path = tmp_path / 'list.pth'
    torch.save({'epoch': 3, 'lr': [0.1]}, path)
    with pytest.raises(CheckpointError, match="list.pth.*holds no state dict.*'epoch'"):
        load_state_dict_file(str(path))


# ------------------------------------------------------------------------- offline model zoo

def test_torchvision_name_resolved_from_hub_cache(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    cache = tmp_path / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    model = _net()
    sd = dict(model.state_dict(), **{'fc.weight': torch.zeros(2, 2), 'fc.bias': torch.zeros(2)})
    torch.save(sd, cache / 'tinynet-deadbeef.pth')
    assert resolve_model_zoo('torchvision://tinynet') == str(cache / 'tinynet-deadbeef.pth')
    fresh = _net(3)
    torch.nn.init.zeros_(fresh[0].weight)
    with caplog.at_level(logging.WARNING):
        load_checkpoint(fresh, 'torchvision://tinynet')
    assert not caplog.records      # fc.* dropped silently for torchvision weights
    _assert_same(fresh, model)


def test_torchvision_name_absent(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        load_checkpoint(_net(), 'torchvision://resnet50')
    msg = str(e.value)
    assert str(tmp_path / 'hub' / 'checkpoints') in msg and 'resnet50-' in msg
    assert 'network' in msg and 'pretrained=None' in msg


def test_bad_zoo_name():
    with pytest.raises(ValueError, match='not a valid model name'):
        resolve_model_zoo('torchvision://../etc/passwd')


def test_saved_checkpoint_has_umask_permissions(tmp_path):
    import stat
    from mmdet_solo.utils.checkpoint import save_checkpoint
    umask = os.umask(0o022)
    try:
        path = tmp_path / 'perm.pth'
        save_checkpoint(torch.nn.Linear(2, 2), str(path))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    finally:
        os.umask(umask)


@pytest.mark.parametrize('data, kind', [
    (b'\xff\xd8\xff\xe0\x00\x10JFIF' + bytes(100), 'a JPEG image'),
    (b'\x89PNG\r\n\x1a\n' + bytes(100), 'a PNG image'),
    (b'epoch 12, mAP 0.39\n', 'a text file'),
    (bytes([7, 200, 13, 99, 1, 2, 3, 4]) * 50, 'unknown data (starts with 07 c8 0d 63'),
    (b'', 'an empty file'),
])
def test_files_that_are_no_checkpoint_are_named_so(tmp_path, data, kind):
    path = tmp_path / 'model.pth'
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as e:
        load_state_dict_file(str(path))
    assert f"'{path}' is not a checkpoint: it is {kind}" in str(e.value)
    assert 'refused for safety' not in str(e.value)


def test_full_disk_is_named(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    import mmdet_solo.utils.checkpoint as ckpt_mod

    def failing_save(obj, f, *a, **k):
        raise RuntimeError('[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0'
                           '\nfile write failed')

    usage = namedtuple('usage', 'total used free')
    monkeypatch.setattr(ckpt_mod.torch, 'save', failing_save)
    monkeypatch.setattr(shutil, 'disk_usage', lambda p: usage(10, 10, 0))
    with pytest.raises(OSError, match=r"cannot write checkpoint .*epoch_1.pth.*no space left"):
        ckpt_mod.save_checkpoint(_net(), str(tmp_path / 'epoch_1.pth'))
    assert os.listdir(tmp_path) == []  # no temporary file left behind
