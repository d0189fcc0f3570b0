"""``tools/convert_checkpoint.py`` and ``tools/publish_model.py``: success, bad files, safety."""
from __future__ import annotations

import os
import pickle
import sys

import pytest
import torch

from conftest import ROOT, mmdet3_case, weights_for_spec

sys.path.insert(0, os.path.join(ROOT, 'tools'))
import convert_checkpoint  # noqa: E402
import publish_model  # noqa: E402

R18_CFG = os.path.join(ROOT, 'configs/mmdet/solov2-light_r18_fpn_ms-3x_coco.py')


@pytest.fixture(scope='module')
def mmdet_ckpt(tmp_path_factory):
    case = mmdet3_case('solov2-light_r18_fpn_ms-3x_coco')
    path = str(tmp_path_factory.mktemp('ckpt') / 'solov2_light_r18_mmdet.pth')
    torch.save({'meta': {'CLASSES': ['c'] * 80},
                'state_dict': weights_for_spec(case['spec'], salt='tool:')}, path)
    return path


def _run(*args):
    return convert_checkpoint.main([str(a) for a in args])


def test_convert_and_round_trip(mmdet_ckpt, tmp_path):
    ours = tmp_path / 'ours.pth'
    assert _run(mmdet_ckpt, ours, '--config', R18_CFG) == 0
    ckpt = torch.load(ours, weights_only=True)
    assert ckpt['meta']['converted_from'] == 'mmdet'
    for fmt, ext in (('mmdet', 'pth'), ('adelaidet', 'pth'), ('paddle', 'pdparams')):
        theirs = tmp_path / f'theirs_{fmt}.{ext}'
        back = tmp_path / f'back_{fmt}.pth'
        assert _run(ours, theirs, '--to', fmt) == 0
        assert _run(theirs, back, '--from', fmt) == 0
        sd_back = torch.load(back, weights_only=True)['state_dict']
        for k, v in ckpt['state_dict'].items():
            if k.endswith('num_batches_tracked') and fmt != 'mmdet':
                continue
            assert torch.equal(sd_back[k], v), (fmt, k)


def test_output_equal_to_input_is_refused(mmdet_ckpt, tmp_path, capsys):
    src = tmp_path / 'ckpt.pth'
    src.write_bytes(open(mmdet_ckpt, 'rb').read())
    link = tmp_path / 'link.pth'
    link.symlink_to(src)
    before = src.read_bytes()
    for dst in (src, link, tmp_path / '.' / 'ckpt.pth'):
        assert _run(src, dst) == 1
        assert 'is the input checkpoint' in capsys.readouterr().err
    assert src.read_bytes() == before


def test_not_a_checkpoint(tmp_path, capsys):
    src, dst = tmp_path / 'notes.pth', tmp_path / 'out.pth'
    src.write_text('hello, not a checkpoint')
    assert _run(src, dst) == 1
    assert 'is not a checkpoint: it is a text file' in capsys.readouterr().err
    assert not dst.exists()


def test_truncated(mmdet_ckpt, tmp_path, capsys):
    src, dst = tmp_path / 'cut.pth', tmp_path / 'out.pth'
    data = open(mmdet_ckpt, 'rb').read()
    src.write_bytes(data[:len(data) // 2])
    assert _run(src, dst) == 1
    assert 'truncated' in capsys.readouterr().err
    assert not dst.exists()


def test_wrong_model(mmdet_ckpt, tmp_path, capsys):
    dst = tmp_path / 'out.pth'
    wrong = os.path.join(ROOT, 'configs/mmdet/solov2-light_r50_fpn_ms-3x_coco.py')
    assert _run(mmdet_ckpt, dst, '--config', wrong) == 1
    err = capsys.readouterr().err
    assert 'shape mismatches' in err and 'nothing was written' in err
    assert not dst.exists()
    assert _run(mmdet_ckpt, dst, '--config', wrong, '--allow-partial') == 0
    assert dst.exists()


def test_unknown_keys(tmp_path, capsys):
    src, dst = tmp_path / 'x.pth', tmp_path / 'out.pth'
    torch.save({'state_dict': {'encoder.w': torch.zeros(2)}}, src)
    assert _run(src, dst) == 1
    assert 'none of the key names' in capsys.readouterr().err
    assert not dst.exists()


class _Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_code_in_torch_pickle_is_refused(tmp_path, capsys):
    src, dst = tmp_path / 'evil.pth', tmp_path / 'out.pth'
    torch.save({'state_dict': {'a': torch.zeros(1)}, 'x': _Evil()}, src)
    assert _run(src, dst) == 1
    assert 'need code to unpickle' in capsys.readouterr().err
    assert not dst.exists()


def test_code_in_pdparams_is_refused(tmp_path, capsys):
    src, dst = tmp_path / 'evil.pdparams', tmp_path / 'out.pth'
    with open(src, 'wb') as f:
        pickle.dump({'w': _Evil()}, f, protocol=4)
    assert _run(src, dst) == 1
    assert 'arbitrary code' in capsys.readouterr().err
    assert not dst.exists()


def test_publish_model(mmdet_ckpt, tmp_path):
    src = tmp_path / 'trained.pth'
    ckpt = torch.load(mmdet_ckpt, weights_only=True)
    ckpt['optimizer'] = {'state': {0: {'momentum_buffer': torch.zeros(3)}}, 'param_groups': []}
    ckpt['meta']['config'] = 'model = dict()'
    torch.save(ckpt, src)
    final = publish_model.publish(str(src), str(tmp_path / 'solov2_light_r18.pth'))
    name = os.path.basename(final)
    assert name.startswith('solov2_light_r18-') and len(name) == len('solov2_light_r18-') + 12
    assert publish_model.sha256_of(final)[:8] == name[-12:-4]
    out = torch.load(final, weights_only=True)
    assert set(out) == {'meta', 'state_dict'}
    assert out['meta']['config'] == 'model = dict()' and len(out['meta']['CLASSES']) == 80
