"""mmdet_solo.utils.io.atomic_write: whole files or nothing, no temporary file left behind."""
import json
import os
import stat

import pytest

from mmdet_solo.utils.checkpoint import remove_stale_temp_checkpoints
from mmdet_solo.utils.io import atomic_write


def test_bytes_text_and_callbacks_are_written(tmp_path):
    atomic_write(str(tmp_path / 'a.bin'), b'\x00\xff')
    atomic_write(str(tmp_path / 'b.txt'), 'é ✓\n')
    atomic_write(str(tmp_path / 'c.bin'), lambda f: f.write(b'raw'))
    atomic_write(str(tmp_path / 'd.json'), lambda f: json.dump({'k': 'é'}, f), text=True)
    assert (tmp_path / 'a.bin').read_bytes() == b'\x00\xff'
    assert (tmp_path / 'b.txt').read_bytes() == 'é ✓\n'.encode('utf-8')
    assert (tmp_path / 'c.bin').read_bytes() == b'raw'
    assert json.loads((tmp_path / 'd.json').read_text(encoding='utf-8')) == {'k': 'é'}
    assert sorted(os.listdir(tmp_path)) == ['a.bin', 'b.txt', 'c.bin', 'd.json']


def test_replaces_an_existing_file_and_creates_the_folder(tmp_path):
    path = tmp_path / 'new' / 'dir' / 'out.txt'
    atomic_write(str(path), 'old')
    atomic_write(path, 'new')  # a PathLike works too
    assert path.read_text() == 'new'
    assert os.listdir(path.parent) == ['out.txt']


@pytest.mark.parametrize('error', [ValueError('bad value'), KeyboardInterrupt()])
def test_failing_callback_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, error):
    path = tmp_path / 'results.pkl'
    path.write_bytes(b'old content')

    def write(f):
        f.write(b'partial')
        f.flush()
        raise error
    with pytest.raises(type(error)):
        atomic_write(str(path), write)
    assert path.read_bytes() == b'old content'
    assert os.listdir(tmp_path) == ['results.pkl']


def test_failing_replace_leaves_no_temp_file(tmp_path):
    target = tmp_path / 'target'
    target.mkdir()
    (target / 'keep').write_text('x')
    with pytest.raises(OSError):
        atomic_write(str(target), b'data')  # a non-empty folder cannot be replaced by a file
    assert sorted(os.listdir(tmp_path)) == ['target'] and os.listdir(target) == ['keep']


def test_temp_file_is_hidden_next_to_the_target_and_found_by_the_stale_cleanup(tmp_path):
    seen = []

    def write(f):
        seen.append(f.name)  # for writers that only take a path
        with open(f.name, 'wb') as other:
            other.write(b'by path')
    atomic_write(str(tmp_path / 'epoch_1.pth'), write)
    assert (tmp_path / 'epoch_1.pth').read_bytes() == b'by path'
    tmp = seen[0]
    assert os.path.dirname(tmp) == str(tmp_path)
    name = os.path.basename(tmp)
    assert name.startswith('.epoch_1.pth.') and name.endswith('.tmp')
    # what a killed process would leave: the trainer's cleanup removes it, and only it
    open(tmp, 'wb').close()
    assert remove_stale_temp_checkpoints(str(tmp_path)) == [name]
    assert os.listdir(tmp_path) == ['epoch_1.pth']


def test_permissions_follow_the_umask_or_mode(tmp_path):
    umask = os.umask(0o027)
    try:
        atomic_write(str(tmp_path / 'a'), b'x')
        atomic_write(str(tmp_path / 'b'), b'x', mode=0o600)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / 'a').st_mode) == 0o640
    assert stat.S_IMODE(os.stat(tmp_path / 'b').st_mode) == 0o600
