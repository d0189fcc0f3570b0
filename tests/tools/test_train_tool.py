"""End-to-end tests of tools/train.py and tools/dist_train.sh on a tiny COCO set (CPU).

A tiny SOLOv2 (light head, R18, 32 channels, small grids) trains on 96x128 images. The
uninterrupted 2-epoch run is the reference for the resume tests, which must reproduce its
final weights exactly (``--seed 0 --deterministic``).
"""
from __future__ import annotations

import glob
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from coco_fixtures import write_tiny_coco

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(ROOT, 'tools', 'train.py')
BASE = osp.join(ROOT, 'configs', 'solov2', 'solov2_light_448_r18_fpn_8gpu_3x.py')

CONFIG = '''
_base_ = {base!r}
model = dict(
    pretrained=None,
    neck=dict(out_channels=32),
    bbox_head=dict(num_classes=3, in_channels=32, seg_feat_channels=32, stacked_convs=1,
                   num_grids=[8, 6, 4, 3, 2], ins_out_channels=32,
                   scale_ranges=((1, 24), (12, 48), (24, 96), (48, 192), (96, 384))),
    mask_feat_head=dict(in_channels=32, out_channels=32, num_classes=32))
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', img_scale=(128, 96), keep_ratio=True),
    dict(type='RandomFlip', flip_ratio={flip}),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size_divisor=32),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks']),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiScaleFlipAug', img_scale=(128, 96), flip=False,
         transforms=[dict(type='Resize', keep_ratio=True), dict(type='RandomFlip'),
                     dict(type='Normalize', **img_norm_cfg), dict(type='Pad', size_divisor=32),
                     dict(type='ImageToTensor', keys=['img']), dict(type='Collect', keys=['img'])])
]
ds = dict(type='CocoDataset', ann_file={ann_file!r}, img_prefix={img_prefix!r},
          classes=('a', 'b', 'c'))
data = dict(imgs_per_gpu=2, workers_per_gpu=0,
            train=dict(ds, pipeline=train_pipeline),
            val=dict(ds, pipeline=test_pipeline), test=dict(ds, pipeline=test_pipeline))
optimizer = dict(lr=0.02)
lr_config = dict(warmup_iters=2, step=[100])
total_epochs = 2
log_config = dict(interval=1)
evaluation = dict(interval=2, metric='segm')
'''


def _env(threads: int = 2) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    return env


def train(cfg: str, work_dir: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, TRAIN, cfg, '--work-dir', work_dir, '--seed', '0', '--deterministic',
           *args]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f'{cmd} failed ({proc.returncode}):\n{proc.stderr[-5000:]}')
    return proc


def json_records(work_dir: str) -> list:
    out = []
    for path in sorted(glob.glob(osp.join(work_dir, '*.log.json'))):
        with open(path) as f:
            out += [json.loads(line) for line in f if line.strip()]
    return out


def load(path: str) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)


def assert_same_weights(a: str, b: str) -> None:
    sa, sb = load(a)['state_dict'], load(b)['state_dict']
    assert list(sa) == list(sb)
    differing = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not differing, f'{len(differing)} tensors differ, e.g. {differing[:5]}'


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('train_tool')
    info = write_tiny_coco(str(root / 'data'))
    cfg = str(root / 'tiny_solov2.py')
    with open(cfg, 'w') as f:
        f.write(CONFIG.format(base=BASE, flip=0.5, ann_file=info['ann_file'],
                              img_prefix=info['img_prefix']))
    return dict(root=root, cfg=cfg, info=info)


@pytest.fixture(scope='module')
def reference(setup):
    """The uninterrupted 2-epoch run (validation after epoch 2)."""
    work_dir = str(setup['root'] / 'ref')
    train(setup['cfg'], work_dir)
    return work_dir


def test_training_run_outputs(reference, setup):
    names = set(os.listdir(reference))
    assert {'epoch_1.pth', 'epoch_2.pth', 'latest.pth', 'tiny_solov2.py'} <= names
    assert not [n for n in names if n.endswith('.tmp')]
    assert len(glob.glob(osp.join(reference, '*.log'))) == 1
    with open(glob.glob(osp.join(reference, '*.log'))[0]) as f:
        text = f.read()
    assert 'Epoch [2][3/3]' in text and 'loss_ins' in text and 'Saved checkpoint' in text

    first = load(osp.join(reference, 'epoch_1.pth'))
    meta = first['meta']
    assert (meta['epoch'], meta['iter']) == (1, 3)  # 5 images with objects: groups of 3 + 2 -> 3 batches
    assert meta['CLASSES'] == ['a', 'b', 'c']
    assert "type='SOLOv2'" in meta['config'] and 'total_epochs = 2' in meta['config']
    import mmdet_solo
    assert meta['mmdet_solo_version'] == mmdet_solo.__version__ and meta['seed'] == 0
    assert load(osp.join(reference, 'epoch_2.pth'))['meta']['epoch'] == 2
    assert_same_weights(osp.join(reference, 'latest.pth'), osp.join(reference, 'epoch_2.pth'))

    records = json_records(reference)
    train_recs = [r for r in records if r.get('mode') == 'train']
    assert [(r['epoch'], r['iter']) for r in train_recs] == [(e, i) for e in (1, 2)
                                                             for i in range(1, 4)]
    for r in train_recs:
        assert {'lr', 'time', 'data_time', 'memory', 'loss_ins', 'loss_cate', 'loss'} <= set(r)
    # warm-up over 2 iterations from 1% (the SOLOv2 warmup_ratio), then 0.02
    assert [r['lr'] for r in train_recs[:3]] == pytest.approx([0.0002, 0.0101, 0.02])
    losses = [r['loss'] for r in train_recs]
    assert sum(losses[-2:]) / 2 < 0.85 * sum(losses[:2]) / 2, losses
    val = [r for r in records if r.get('mode') == 'val']
    assert len(val) == 1 and val[0]['epoch'] == 2 and 'segm_mAP' in val[0]


def test_resume_from_epoch_1_reaches_same_weights(reference, setup):
    work_dir = str(setup['root'] / 'resumed')
    train(setup['cfg'], work_dir, '--resume-from', osp.join(reference, 'epoch_1.pth'),
          '--no-validate')
    assert not osp.exists(osp.join(work_dir, 'epoch_1.pth'))
    train_recs = [r for r in json_records(work_dir) if r.get('mode') == 'train']
    ref_recs = [r for r in json_records(reference) if r.get('mode') == 'train']
    assert [(r['epoch'], r['iter']) for r in train_recs] == [(2, i) for i in range(1, 4)]
    assert [r['lr'] for r in train_recs] == [r['lr'] for r in ref_recs[3:]]
    assert [r['loss'] for r in train_recs] == [r['loss'] for r in ref_recs[3:]]
    assert_same_weights(osp.join(work_dir, 'epoch_2.pth'), osp.join(reference, 'epoch_2.pth'))


def test_sigkill_then_auto_resume_reaches_same_weights(reference, setup):
    work_dir = str(setup['root'] / 'killed')
    cmd = [sys.executable, TRAIN, setup['cfg'], '--work-dir', work_dir, '--seed', '0',
           '--deterministic', '--no-validate']
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if any(r.get('epoch') == 2 and r.get('iter', 0) >= 1 for r in json_records(work_dir)):
                break
            time.sleep(0.05)
        assert proc.poll() is None, 'the run ended before it could be killed mid-epoch 2'
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not osp.exists(osp.join(work_dir, 'epoch_2.pth'))
    assert load(osp.join(work_dir, 'latest.pth'))['meta']['epoch'] == 1

    train(setup['cfg'], work_dir, '--auto-resume', '--no-validate')
    assert_same_weights(osp.join(work_dir, 'epoch_2.pth'), osp.join(reference, 'epoch_2.pth'))


def write_two_image_config(info: dict, cfg_path: str, extra: str = '') -> str:
    """A training config (no flip) on two copies of the tiny set's first image, one with all its
    instances and one with the first only: one image per process in 2-process runs, the same
    two as one batch of 2 in a single process. ``extra`` is appended to the config."""
    with open(info['ann_file']) as f:
        coco = json.load(f)
    img0 = coco['images'][0]
    anns0 = [a for a in coco['annotations'] if a['image_id'] == img0['id'] and not a['iscrowd']]
    assert len(anns0) >= 2
    images, anns = [], []
    for k, subset in enumerate((anns0, anns0[:1])):
        images.append(dict(img0, id=1 + k))
        anns += [dict(a, id=len(anns) + 1, image_id=1 + k) for a in subset]
    dup_file = osp.join(osp.dirname(cfg_path), osp.basename(cfg_path)[:-3] + '_ann.json')
    with open(dup_file, 'w') as f:
        json.dump(dict(coco, images=images, annotations=anns), f)
    with open(cfg_path, 'w') as f:
        f.write(CONFIG.format(base=BASE, flip=0.0, ann_file=dup_file,
                              img_prefix=info['img_prefix']))
        f.write(extra)
    return cfg_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_two_processes_matches_single_process(setup):
    """2 processes x 1 image (gloo) vs 1 process x 2 images, one SGD step.

    Both images are the same picture, the second with only its first annotation, so the two
    ranks have different numbers of positive cells and mask targets. The heads sum those
    counts over the ranks before normalising (``loss_normalizer``), so DDP's gradient average
    equals the gradient of the 2-image batch for both the Dice and the focal loss.
    """
    root = setup['root']
    info = setup['info']
    cfg = write_two_image_config(info, str(root / 'tiny_dist.py'))
    opts = ['--no-validate', '--cfg-options', 'total_epochs=1', 'lr_config.warmup=None']

    single = str(root / 'single')
    train(cfg, single, *opts, 'data.imgs_per_gpu=2')

    dist_dir = str(root / 'dist')
    env = _env(threads=1)
    env.update(PYTHON=sys.executable, PORT=str(_free_port()))
    cmd = ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), cfg, '2', '--work-dir', dist_dir,
           '--seed', '0', '--deterministic', *opts, 'data.imgs_per_gpu=1']
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    with open(glob.glob(osp.join(dist_dir, '*.log'))[0]) as f:
        assert '2 process(es)' in f.read()

    ckpt_s, ckpt_d = load(osp.join(single, 'epoch_1.pth')), load(osp.join(dist_dir, 'epoch_1.pth'))
    assert ckpt_s['meta']['iter'] == ckpt_d['meta']['iter'] == 1
    assert ckpt_d['meta']['world_size'] == 2 and len(ckpt_d['meta']['rng_state']) == 2
    for k, v in ckpt_s['state_dict'].items():
        d = ckpt_d['state_dict'][k]
        if v.is_floating_point():
            torch.testing.assert_close(d, v, rtol=0, atol=1e-5, msg=k)
    # the step changed the weights (the comparison is not between two untouched models)
    s_loss = [r for r in json_records(single) if r.get('mode') == 'train'][0]
    d_loss = [r for r in json_records(dist_dir) if r.get('mode') == 'train'][0]
    assert s_loss['loss_ins'] == pytest.approx(d_loss['loss_ins'], rel=1e-5)
    assert s_loss['loss_cate'] == pytest.approx(d_loss['loss_cate'], rel=1e-5)
    assert s_loss['grad_norm'] == pytest.approx(d_loss['grad_norm'], rel=1e-4)
    assert s_loss['grad_norm'] > 0


def test_num_classes_different_from_the_classes_stops_before_training(setup, tmp_path):
    proc = train(setup['cfg'], str(tmp_path / 'w'), '--cfg-options',
                 'model.bbox_head.num_classes=4', check=False)
    assert proc.returncode == 2
    assert 'num_classes=4' in proc.stderr and 'has 3 classes' in proc.stderr
    assert not glob.glob(str(tmp_path / 'w' / '*.pth'))


def test_unsupported_workflow_is_refused(setup, tmp_path):
    cfg = tmp_path / 'wf.py'
    cfg.write_text(f"_base_ = {setup['cfg']!r}\nworkflow = [('train', 1), ('val', 1)]\n")
    proc = train(str(cfg), str(tmp_path / 'w'), check=False)
    assert proc.returncode == 2 and 'workflow' in proc.stderr and 'not supported' in proc.stderr


def test_save_optimizer_false_and_auto_resume_from_the_config(setup, tmp_path):
    work_dir = str(tmp_path / 'w')
    opts = ['--no-validate', '--cfg-options', 'checkpoint_config.save_optimizer=False',
            'lr_config.warmup=None']
    train(setup['cfg'], work_dir, *opts, 'total_epochs=1', 'auto_resume=True')
    log = open(glob.glob(osp.join(work_dir, '*.log'))[0]).read()
    assert '--auto-resume: no latest.pth in' in log and 'training starts fresh' in log
    ckpt = load(osp.join(work_dir, 'epoch_1.pth'))
    assert 'optimizer' not in ckpt and ckpt['meta']['epoch'] == 1
    # auto_resume=True in the config acts as --auto-resume; the missing optimizer state is said
    proc = train(setup['cfg'], work_dir, *opts, 'total_epochs=2', 'auto_resume=True')
    log = open(sorted(glob.glob(osp.join(work_dir, '*.log')))[-1]).read()
    assert 'has no optimizer state' in log and 'resumed from' in log
    assert f"--auto-resume: resuming from {osp.join(work_dir, 'latest.pth')}" in log
    assert load(osp.join(work_dir, 'epoch_2.pth'))['meta']['epoch'] == 2
    assert proc.returncode == 0


def test_unwritable_work_dir_is_named(setup, tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('x')
    proc = train(setup['cfg'], str(blocker / 'work'), check=False)
    assert proc.returncode == 2
    assert 'work_dir' in proc.stderr and 'is a file, not a folder' in proc.stderr


def test_auto_resume_never_picks_up_the_run_before_an_overwrite(setup, tmp_path):
    work_dir = str(tmp_path / 'w')
    opts = ['--no-validate', '--cfg-options', 'lr_config.warmup=None']
    train(setup['cfg'], work_dir, *opts, 'total_epochs=1')
    old = load(osp.join(work_dir, 'latest.pth'))['state_dict']
    # an --overwrite run that dies before its first save (NaN loss at its second iteration)
    proc = train(setup['cfg'], work_dir, '--overwrite', *opts, 'total_epochs=1',
                 'optimizer.lr=1e30', check=False)
    assert proc.returncode != 0 and not osp.exists(osp.join(work_dir, 'latest.pth'))
    kept = glob.glob(osp.join(work_dir, 'latest_before_overwrite_*.pth'))
    assert len(kept) == 1 and all(torch.equal(v, load(kept[0])['state_dict'][k])
                                  for k, v in old.items())
    train(setup['cfg'], work_dir, '--auto-resume', *opts, 'total_epochs=1')
    log = open(sorted(glob.glob(osp.join(work_dir, '*.log')))[-1]).read()
    assert 'training starts fresh' in log
