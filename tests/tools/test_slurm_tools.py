"""tools/slurm_train.sh / slurm_test.sh and ``--launcher slurm``, on a simulated SLURM job.

A fake ``srun`` on the PATH starts the tasks as local CPU processes with the variables SLURM
sets (``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``, ``SLURM_NODELIST``); a fake
``scontrol`` expands the node list. 2 tasks x 1 image (gloo) must train like 1 process x 2
images (as tools/dist_train.sh does, tests/tools/test_train_tool.py), here with
``--auto-scale-lr`` halving a doubled lr, and an EMAHook whose average lands in the checkpoint.
"""
from __future__ import annotations

import glob
import os
import os.path as osp
import pickle
import stat
import subprocess
import sys

import pytest
import torch

from coco_fixtures import write_tiny_coco
from mmdet_solo.engine.dist import first_slurm_host, parse_first_host, slurm_env
from test_train_tool import (ROOT, _env, _free_port, json_records, load, train,
                             write_two_image_config)

FAKE_SRUN = r'''#!/usr/bin/env bash
# fake srun: log the options, start --ntasks local tasks with SLURM's variables
echo "$@" > "$FAKE_SRUN_LOG"
ntasks=1
while [ $# -gt 0 ]; do
    case "$1" in
        -p) shift 2 ;;
        --ntasks=*) ntasks=${1#*=}; shift ;;
        -*) shift ;;
        *) break ;;
    esac
done
pids=()
for ((i = 0; i < ntasks; i++)); do
    SLURM_PROCID=$i SLURM_NTASKS=$ntasks SLURM_LOCALID=$i SLURM_NODELIST='fakenode[1-2]' "$@" &
    pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
exit $rc
'''
# the fake node names do not resolve: training only works if scontrol's answer is used
FAKE_SCONTROL = '''#!/bin/sh
[ "$1 $2 $3" = "show hostnames fakenode[1-2]" ] || exit 1
echo 127.0.0.1
echo 127.0.0.2
'''


def _write_exe(path: str, text: str) -> None:
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


@pytest.mark.parametrize('nodelist, first', [
    ('node1', 'node1'), ('node[01-04,07],gpu5', 'node01'), ('r[1-2]-n[3-4]', 'r1-n3'),
    ('a,b', 'a'), ('host-1.example.com', 'host-1.example.com'), ('gpu[7]', 'gpu7')])
def test_parse_first_host(nodelist, first):
    assert parse_first_host(nodelist) == first


@pytest.mark.parametrize('nodelist', ['bad[x-y]', '[', 'node[1-2', ''])
def test_unreadable_nodelist_is_a_clear_error(nodelist):
    with pytest.raises(RuntimeError, match='set MASTER_ADDR'):
        parse_first_host(nodelist)


def test_slurm_env(tmp_path, monkeypatch):
    env = dict(SLURM_PROCID='3', SLURM_NTASKS='4', SLURM_LOCALID='1',
               SLURM_NODELIST='fakenode[1-2]')
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
    _write_exe(str(bin_dir / 'scontrol'), FAKE_SCONTROL)
    assert first_slurm_host('fakenode[1-2]') == '127.0.0.1'
    assert slurm_env(env) == dict(RANK='3', WORLD_SIZE='4', LOCAL_RANK='1',
                                  MASTER_ADDR='127.0.0.1', MASTER_PORT='29500')
    assert slurm_env(dict(env, MASTER_PORT='1234', MASTER_ADDR='h0'))['MASTER_PORT'] == '1234'
    with pytest.warns(UserWarning, match='parsing SLURM_NODELIST itself'):  # scontrol fails
        assert first_slurm_host('n[5-6]') == 'n5'
    with pytest.raises(RuntimeError, match='SLURM_LOCALID'):
        slurm_env({k: v for k, v in env.items() if k != 'SLURM_LOCALID'})
    with pytest.raises(RuntimeError, match='not below SLURM_NTASKS'):
        slurm_env(dict(env, SLURM_PROCID='4'))


def test_slurm_scripts_usage():
    for script in ('slurm_train.sh', 'slurm_test.sh'):
        proc = subprocess.run(['bash', osp.join(ROOT, 'tools', script), 'p', 'j'],
                              capture_output=True, text=True)
        assert proc.returncode == 2 and 'usage' in proc.stderr


def test_slurm_train_and_test_two_tasks_match_one_process(tmp_path):
    """2 SLURM tasks x 1 image, lr 0.04 auto-scaled by 2/4, vs 1 process x 2 images, lr 0.02:
    the same weights (raw and EMA) after one SGD step; then slurm_test.sh with 2 tasks."""
    info = write_tiny_coco(str(tmp_path / 'data'))
    cfg = write_two_image_config(info, str(tmp_path / 'tiny_slurm.py'),
                                 extra="custom_hooks = [dict(type='EMAHook', momentum=0.01)]\n")
    opts = ['--no-validate', '--cfg-options', 'total_epochs=1', 'lr_config.warmup=None']

    single = str(tmp_path / 'single')
    train(cfg, single, *opts, 'data.imgs_per_gpu=2')

    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    _write_exe(str(bin_dir / 'srun'), FAKE_SRUN)
    _write_exe(str(bin_dir / 'scontrol'), FAKE_SCONTROL)
    env = _env(threads=1)
    env.update(PYTHON=sys.executable, MASTER_PORT=str(_free_port()),
               PATH=f'{bin_dir}{os.pathsep}{env["PATH"]}', FAKE_SRUN_LOG=str(tmp_path / 'srun'))
    env.pop('GPUS', None)
    slurm_dir = str(tmp_path / 'slurm')
    cmd = ['bash', osp.join(ROOT, 'tools', 'slurm_train.sh'), 'debug', 'solo', cfg, slurm_dir,
           '2', '--seed', '0', '--deterministic', '--auto-scale-lr', *opts,
           'data.imgs_per_gpu=1', 'optimizer.lr=0.04', 'auto_scale_lr.base_batch_size=4']
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    with open(tmp_path / 'srun') as f:
        srun_args = f.read()
    for part in ('-p debug', '--job-name=solo', '--gres=gpu:2', '--ntasks=2',
                 '--ntasks-per-node=2', '--cpus-per-task=5', '--launcher=slurm'):
        assert part in srun_args
    with open(glob.glob(osp.join(slurm_dir, '*.log'))[0]) as f:
        log = f.read()
    assert '2 process(es)' in log and 'optimizer.lr 0.04 -> 0.02' in log

    ckpt_s, ckpt_d = load(osp.join(single, 'epoch_1.pth')), load(osp.join(slurm_dir, 'epoch_1.pth'))
    assert ckpt_d['meta']['world_size'] == 2 and ckpt_d['meta']['iter'] == 1
    for key in ('state_dict', 'ema_state_dict'):
        for k, v in ckpt_s[key].items():
            if v.is_floating_point():
                torch.testing.assert_close(ckpt_d[key][k], v, rtol=0, atol=1e-5, msg=k)
    s_rec = [r for r in json_records(single) if r.get('mode') == 'train'][0]
    d_rec = [r for r in json_records(slurm_dir) if r.get('mode') == 'train'][0]
    assert s_rec['lr'] == pytest.approx(d_rec['lr']) == pytest.approx(0.02)
    assert s_rec['grad_norm'] == pytest.approx(d_rec['grad_norm'], rel=1e-4)
    assert s_rec['grad_norm'] > 0

    # slurm_test.sh: 2 tasks, results gathered in dataset order
    out = str(tmp_path / 'res.pkl')
    env['MASTER_PORT'] = str(_free_port())
    cmd = ['bash', osp.join(ROOT, 'tools', 'slurm_test.sh'), 'debug', 'solo-test', cfg,
           osp.join(slurm_dir, 'epoch_1.pth'), '2', '--out', out, '--cfg-options',
           'data.workers_per_gpu=0']
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    with open(out, 'rb') as f:
        results = pickle.load(f)['results']
    assert [r['image_id'] for r in results] == [1, 2]
