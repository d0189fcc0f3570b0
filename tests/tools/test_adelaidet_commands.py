"""AdelaiDet's SOLOv2 command forms run unchanged: configs/SOLOv2/*.yaml translated at load
(the same model as configs/adelaidet/*.py), tools/train_net.py (2 CPU processes, --resume,
--eval-only) and demo/demo.py end to end on a tiny COCO-layout dataset ($DETECTRON2_DATASETS)."""
from __future__ import annotations

import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys

import cv2
import pytest

from coco_fixtures import write_tiny_coco
from mmdet_solo.apis.config_check import check_config
from mmdet_solo.config import Config, ConfigError
from mmdet_solo.config_yaml import TRAIN_IMAGES, load_d2_cfg, load_yaml_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
YAML = osp.join(ROOT, 'configs', 'SOLOv2')

TINY = '''_BASE_: "{base}"
MODEL:
  RESNETS: {{DEPTH: 18, RES2_OUT_CHANNELS: 64}}
  FPN: {{OUT_CHANNELS: 32}}
  SOLOV2:
    INSTANCE_IN_CHANNELS: 32
    INSTANCE_CHANNELS: 32
    NUM_INSTANCE_CONVS: 1
    NUM_GRIDS: [8, 6, 4, 3, 2]
    FPN_SCALE_RANGES: ((1, 24), (12, 48), (24, 96), (48, 192), (96, 384))
    MASK_IN_CHANNELS: 32
    MASK_CHANNELS: 32
    NUM_MASKS: 32
    NUM_KERNELS: 32
INPUT:
  MIN_SIZE_TRAIN: (96,)
  MAX_SIZE_TRAIN: 128
  MIN_SIZE_TEST: 96
  MAX_SIZE_TEST: 128
DATALOADER: {{NUM_WORKERS: 0}}
SOLVER:
  IMS_PER_BATCH: 2
  WARMUP_ITERS: 1
  STEPS: (100,)
  MAX_ITER: 2
'''


@pytest.mark.parametrize('depth', [50, 101])
def test_yaml_is_the_py_config(depth):
    ours = load_yaml_config(osp.join(YAML, f'R{depth}_3x.yaml'))
    check_config(ours)
    py = Config.fromfile(osp.join(ROOT, 'configs', 'adelaidet', f'solov2_r{depth}_3x.py'))
    assert ours.model == py.model and ours.model.backbone.depth == depth
    assert ours.test_cfg == py.test_cfg
    assert ours.optimizer == py.optimizer  # SGD lr 0.01, momentum 0.9, weight decay 1e-4
    for split in ('train', 'val', 'test'):
        assert ours.data[split] == py.data[split]
    assert ours.data.imgs_per_gpu == py.data.imgs_per_gpu == 2  # 16 images over 8 GPUs
    # documented differences: detectron2's DATALOADER.NUM_WORKERS default, no gradient
    # clipping in AdelaiDet (the original SOLO clips at 35), an iteration schedule
    assert (ours.data.workers_per_gpu, py.data.workers_per_gpu) == (4, 2)
    assert ours.optimizer_config.grad_clip is None and py.optimizer_config.grad_clip.max_norm == 35
    lr = ours.lr_config
    assert (lr.step, lr.by_epoch, lr.warmup_iters, lr.warmup_ratio) == \
        ([210000, 250000], False, py.lr_config.warmup_iters, py.lr_config.warmup_ratio)
    per_epoch = math.ceil(TRAIN_IMAGES['coco_2017_train'] / 16)
    assert (ours.total_epochs - 1) * per_epoch < 270000 <= ours.total_epochs * per_epoch
    assert abs(ours.total_epochs - py.total_epochs) <= 1
    assert [round(s / per_epoch) for s in lr.step] == [29, 34]  # py.lr_config.step: [27, 33]


def test_yaml_errors(tmp_path):
    r50 = osp.join(YAML, 'R50_3x.yaml')
    cases = [(['SOLVER.BASE_LRR', '0.1'], "unknown key 'SOLVER.BASE_LRR' (did you mean 'BASE_LR'"),
             (['SOLVR.BASE_LR', '0.1'], "did you mean 'SOLVER'"),
             (['MODEL.SOLOV2.NMS_TYPE', 'mask'], "NMS_TYPE='mask' is not supported"),
             (['SOLVER.MAX_ITER', 'many'], 'SOLVER.MAX_ITER'),
             (['SOLVER.BASE_LR'], 'KEY VALUE pairs'),
             (['DATASETS.TRAIN', '("coco_2071_train",)'], "did you mean 'coco_2017_train'")]
    for opts, msg in cases:
        with pytest.raises(ConfigError, match=None) as e:
            load_yaml_config(r50, opts)
        assert msg in str(e.value), (opts, str(e.value))
    bad = tmp_path / 'bad.yaml'
    bad.write_text(f'_BASE_: "{r50}"\nMODEL:\n  SOLOV2:\n    NUM_GRID: [1, 2]\n')
    with pytest.raises(ConfigError, match=r"MODEL.SOLOV2.NUM_GRID' \(did you mean 'NUM_GRIDS'"):
        Config.fromfile(str(bad))  # every tool reads yaml through Config.fromfile
    cyc = tmp_path / 'cyc.yaml'
    cyc.write_text('_BASE_: "cyc.yaml"\n')
    with pytest.raises(ConfigError, match='_BASE_ cycle'):
        load_d2_cfg(str(cyc))
    # values in detectron2's types: "(640, 672)" strings are tuples, ints become floats
    d2 = load_d2_cfg(r50, ['SOLVER.BASE_LR', '1', 'INPUT.MIN_SIZE_TRAIN', '(96, 128)'])
    assert d2['SOLVER']['BASE_LR'] == 1.0 and d2['INPUT']['MIN_SIZE_TRAIN'] == (96, 128)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A COCO-layout root for DETECTRON2_DATASETS and a tiny-model yaml on R50_3x.yaml."""
    tmp = tmp_path_factory.mktemp('adelaidet')
    os.makedirs(tmp / 'data' / 'coco' / 'annotations')
    from mmdet_solo.datasets.class_names import COCO_CLASSES as classes  # the builtin sets'
    for split in ('train2017', 'val2017'):
        write_tiny_coco(str(tmp / 'data' / 'coco'), num_images=4, size=(96, 128), classes=classes,
                        img_dir=split, ann_name=f'annotations/instances_{split}.json')
    cfg = tmp / 'tiny.yaml'
    cfg.write_text(TINY.format(base=osp.join(YAML, 'R50_3x.yaml')))
    env = dict(os.environ, DETECTRON2_DATASETS=str(tmp / 'data'), OMP_NUM_THREADS='1',
               PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return tmp, str(cfg), env


def _run(script, args, env, cwd):
    proc = subprocess.run([sys.executable, osp.join(ROOT, script)] + args, env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


@pytest.fixture(scope='module')
def trained(tiny):
    tmp, cfg, env = tiny
    proc = _run('tools/train_net.py', ['--config-file', cfg, '--num-gpus', '2',
                                       'OUTPUT_DIR', 'training_dir/tiny', 'SOLVER.BASE_LR', '0.005'],
                env, tmp)
    return tmp / 'training_dir' / 'tiny', proc


def test_train_net_two_processes(trained):
    out, proc = trained
    assert (out / 'model_final.pth').is_file() and (out / 'tiny.py').is_file()
    assert 'R-50.pkl' in proc.stderr and 'not loaded' in proc.stderr  # the ImageNet pickle
    translated = Config.fromfile(str(out / 'tiny.py'))
    assert translated.data.imgs_per_gpu == 1  # SOLVER.IMS_PER_BATCH 2 over 2 processes
    assert translated.optimizer.lr == 0.005 and translated.total_epochs == 1
    logs = [json.loads(line) for f in glob.glob(str(out / '*.log.json')) for line in open(f)]
    train = [r for r in logs if r.get('mode') == 'train']
    assert train and all(math.isfinite(r['loss']) for r in train)
    assert any('2 process(es)' in open(f).read() for f in glob.glob(str(out / '*.log')))


def _main(script, args, env, cwd, monkeypatch):
    """``script``'s main(args) in this process (faster than a subprocess), env and cwd set."""
    import importlib.util
    monkeypatch.setenv('DETECTRON2_DATASETS', env['DETECTRON2_DATASETS'])
    monkeypatch.chdir(cwd)
    spec = importlib.util.spec_from_file_location('tool', osp.join(ROOT, script))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(args) == 0


def test_train_net_resume_and_eval_only(trained, tiny, monkeypatch, capsys):
    out, _ = trained
    tmp, cfg, env = tiny
    # 60000 iterations of 2 images are 2 epochs of the COCO train set: one more epoch here
    _main('tools/train_net.py', ['--config-file', cfg, '--resume', 'OUTPUT_DIR', str(out),
                                 'SOLVER.MAX_ITER', '60000'], env, tmp, monkeypatch)
    assert (out / 'epoch_2.pth').is_file()
    logs = ''.join(open(f).read() for f in glob.glob(str(out / '*.log')))
    assert 'resumed' in logs.lower()
    _main('tools/train_net.py', ['--config-file', cfg, '--eval-only', 'OUTPUT_DIR', str(out),
                                 'MODEL.WEIGHTS', str(out / 'model_final.pth')], env, tmp,
          monkeypatch)
    metrics = json.loads((out / 'model_final.eval.json').read_text())['metrics']
    assert 'segm_mAP' in metrics and 'bbox_mAP' in metrics


def test_demo_adelaidet_options(trained, tiny, monkeypatch):
    out, _ = trained
    tmp, cfg, env = tiny
    imgs = sorted(glob.glob(str(tmp / 'data' / 'coco' / 'val2017' / '*.jpg')))[:2]
    vis = tmp / 'vis'
    vis.mkdir()
    weights = ['--opts', 'MODEL.WEIGHTS', str(out / 'model_final.pth'), 'MODEL.DEVICE', 'cpu']
    _main('demo/demo.py', ['--config-file', cfg, '--input'] + imgs + [
        '--output', str(vis), '--confidence-threshold', '0.0'] + weights, env, tmp, monkeypatch)
    assert sorted(os.listdir(vis)) == sorted(osp.basename(p) for p in imgs)
    # one glob pattern, a file as --output
    single = tmp / 'one.png'
    _main('demo/demo.py', ['--config-file', cfg, '--input', imgs[0].replace('.jpg', '.j*g'),
                           '--output', str(single)] + weights, env, tmp, monkeypatch)
    assert cv2.imread(str(single)).shape == cv2.imread(imgs[0]).shape
