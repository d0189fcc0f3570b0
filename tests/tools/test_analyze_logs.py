"""tools/analyze_logs.py: plot_curve and cal_train_time on a hand-written JSON log."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, 'tools', 'analyze_logs.py')

# epoch 1: times 0.9 (start-up), 0.2, 0.4 -> 0.3 without the first; epoch 2: 0.8, 0.5, 0.7 -> 0.6
RECORDS = [
    {'env_info': 'torch 2.x', 'config': 'model = dict()', 'seed': 0},
    {'mode': 'train', 'epoch': 1, 'iter': 50, 'lr': 0.01, 'time': 0.9, 'data_time': 0.5,
     'loss_ins': 3.0, 'loss_cate': 1.0, 'loss': 4.0},
    {'mode': 'train', 'epoch': 1, 'iter': 100, 'lr': 0.01, 'time': 0.2, 'data_time': 0.1,
     'loss_ins': 2.5, 'loss_cate': 0.9, 'loss': 3.4},
    {'mode': 'train', 'epoch': 1, 'iter': 150, 'lr': 0.01, 'time': 0.4, 'data_time': 0.1,
     'loss_ins': 2.0, 'loss_cate': 0.8, 'loss': 2.8},
    {'mode': 'val', 'epoch': 1, 'iter': 150, 'segm_mAP': 0.1},
    {'mode': 'train', 'epoch': 2, 'iter': 50, 'lr': 0.01, 'time': 0.8, 'data_time': 0.5,
     'loss_ins': 1.8, 'loss_cate': 0.7, 'loss': 2.5},
    {'mode': 'train', 'epoch': 2, 'iter': 100, 'lr': 0.01, 'time': 0.5, 'data_time': 0.1,
     'loss_ins': 1.6, 'loss_cate': 0.6, 'loss': 2.2},
    {'mode': 'train', 'epoch': 2, 'iter': 150, 'lr': 0.01, 'time': 0.7, 'data_time': 0.1,
     'loss_ins': 1.5, 'loss_cate': 0.5, 'loss': 2.0},
    {'mode': 'val', 'epoch': 2, 'iter': 300, 'segm_mAP': 0.2},
]


def _load_tool():
    spec = importlib.util.spec_from_file_location('analyze_logs_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tool():
    return _load_tool()


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / 'run.log.json'
    path.write_text('\n'.join(json.dumps(r) for r in RECORDS) + '\n\n')
    return str(path)


def _png_size(path):
    with open(path, 'rb') as f:
        head = f.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG file'
    return int.from_bytes(head[16:20], 'big'), int.from_bytes(head[20:24], 'big')


def test_load_skips_metadata(tool, log_file):
    records = tool.load_json_log(log_file)
    assert len(records) == len(RECORDS) - 1
    assert all('mode' in r for r in records)


def test_curve_values(tool, log_file):
    records = tool.load_json_log(log_file)
    xs, ys, unit = tool.curve(records, 'loss_ins')
    assert unit == 'iter'
    np.testing.assert_array_equal(xs, [50, 100, 150, 200, 250, 300])
    np.testing.assert_allclose(ys, [3.0, 2.5, 2.0, 1.8, 1.6, 1.5])
    xs, ys, unit = tool.curve(records, 'segm_mAP')
    assert unit == 'epoch'
    np.testing.assert_array_equal(xs, [1, 2])
    np.testing.assert_allclose(ys, [0.1, 0.2])
    with pytest.raises(KeyError, match=r"no 'loss_mask' values.*loss_cate"):
        tool.curve(records, 'loss_mask')


def test_plot_curve_cli_writes_png(log_file, tmp_path):
    out = tmp_path / 'curve.png'
    proc = subprocess.run([sys.executable, TOOL, 'plot_curve', log_file, log_file,
                           '--keys', 'loss_ins', 'loss_cate', '--legend', 'a_ins', 'a_cate',
                           'b_ins', 'b_cate', '--title', 'losses', '--out', str(out)],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, MPLBACKEND='Agg'))
    assert proc.returncode == 0, proc.stderr
    w, h = _png_size(out)
    assert w >= 200 and h >= 200
    assert 'saved to' in proc.stdout


def test_plot_curve_mixed_and_errors(tool, log_file, tmp_path):
    out = str(tmp_path / 'mixed.png')
    logs = [(log_file, tool.load_json_log(log_file))]
    assert tool.plot_curve(logs, ['loss', 'segm_mAP'], None, out, title='t') == out
    _png_size(out)
    with pytest.raises(ValueError, match=r'1 labels for 1 log\(s\) x 2 key\(s\)'):
        tool.plot_curve(logs, ['loss', 'segm_mAP'], ['only_one'], out)
    proc = subprocess.run([sys.executable, TOOL, 'plot_curve', log_file, '--keys', 'nope',
                           '--out', str(tmp_path / 'x.png')], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1 and "no 'nope' values" in proc.stderr
    assert not (tmp_path / 'x.png').exists()


def test_cal_train_time(tool, log_file, capsys):
    stats = tool.cal_train_time(tool.load_json_log(log_file))
    assert stats['average'] == pytest.approx((0.2 + 0.4 + 0.5 + 0.7) / 4)
    assert (stats['slowest_epoch'], stats['fastest_epoch']) == (2, 1)
    assert stats['slowest_time'] == pytest.approx(0.6)
    assert stats['fastest_time'] == pytest.approx(0.3)
    assert stats['std_over_epochs'] == pytest.approx(0.15)
    with_outliers = tool.cal_train_time(tool.load_json_log(log_file), include_outliers=True)
    assert with_outliers['average'] == pytest.approx(3.5 / 6)

    assert tool.main(['cal_train_time', log_file]) == 0
    out = capsys.readouterr().out
    assert 'average iter time: 0.4500 s/iter' in out
    assert 'slowest epoch 2, average time is 0.6000' in out
    assert 'fastest epoch 1, average time is 0.3000' in out


def test_bad_log_lines(tool, tmp_path):
    bad = tmp_path / 'bad.log.json'
    bad.write_text(json.dumps(RECORDS[1]) + '\n{not json\n')
    with pytest.raises(ValueError, match=r'bad.log.json:2: not a JSON object'):
        tool.load_json_log(str(bad))
    meta_only = tmp_path / 'meta.log.json'
    meta_only.write_text(json.dumps(RECORDS[0]) + '\n')
    with pytest.raises(ValueError, match='no log records'):
        tool.load_json_log(str(meta_only))
