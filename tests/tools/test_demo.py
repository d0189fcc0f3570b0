"""The shapes demo end to end on a handful of generated images (tools/run_demo.sh: generator,
tools/train.py, tools/test_ins.py --eval segm, tools/test_ins_vis.py, tools/analyze_logs.py),
then tools/demo.py on the trained checkpoint. A couple of training iterations only: this checks
the plumbing, not the accuracy (BENCHMARKS.md has the full run)."""
from __future__ import annotations

import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import numpy as np
import pycocotools.mask as mask_utils
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'shapes', 'solov2_light_r18_shapes.py')
FINAL = re.compile(r'^demo finished: segm_mAP=(\d\.\d{3}) train_eval_seconds=(\d+) '
                   r'pictures=(\S+)$')


def _env():
    env = dict(os.environ, PY=sys.executable, OMP_NUM_THREADS='1')
    env.pop('CONFIG', None)
    return env


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('demo')
    env = _env()
    env.update(DATA_DIR=str(tmp / 'shapes'), WORK_DIR=str(tmp / 'work'), NUM_TRAIN='4',
               NUM_VAL='2',
               EXTRA_TRAIN_ARGS='--cfg-options total_epochs=1 data.imgs_per_gpu=2 '
                                'lr_config.warmup_iters=1 log_config.interval=1')
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools', 'run_demo.sh')], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-5000:]
    return tmp, proc.stdout


def test_run_demo_outputs(demo_run):
    tmp, out = demo_run
    work = tmp / 'work'
    last = out.strip().splitlines()[-1]
    m = FINAL.match(last)
    assert m, last
    assert 0.0 <= float(m.group(1)) <= 1.0
    assert int(m.group(2)) >= 0
    assert m.group(3) == f'{work}/vis'
    # every step left its output
    assert (work / 'latest.pth').is_file()
    metrics = json.loads((work / 'results.eval.json').read_text())['metrics']
    assert f"{metrics['segm_mAP']:.3f}" == m.group(1)
    assert sorted(os.listdir(work / 'vis')) == ['000000.jpg', '000001.jpg']
    assert (work / 'loss_curve.png').stat().st_size > 0
    # the dataset was generated where asked, and the training saw it
    assert (tmp / 'shapes' / 'annotations' / 'instances_train.json').is_file()
    logs = [json.loads(line) for f in work.glob('*.log.json') for line in open(f)]
    assert any('loss_ins' in r and r.get('mode') == 'train' for r in logs)
    assert 'Epoch [1][2/2]' in out  # 4 images, 2 per batch


def test_run_demo_reuses_dataset(demo_run):
    tmp, out = demo_run
    env = _env()
    proc = subprocess.run([sys.executable, 'tools/make_shapes.py', '--out', str(tmp / 'shapes'),
                           '--num-train', '4', '--num-val', '2', '--if-missing'], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and 'already' in proc.stdout


def _demo(args, cwd=ROOT):
    return subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'demo.py')] + args, cwd=cwd,
                          env=_env(), capture_output=True, text=True, timeout=300)


def test_demo_on_own_images(demo_run, tmp_path):
    tmp, _ = demo_run
    val = tmp / 'shapes' / 'val'
    other = tmp_path / 'other'
    other.mkdir()
    shutil.copy(val / '000000.jpg', other / '000000.jpg')  # same name as an input: made unique
    out = tmp_path / 'out'
    proc = _demo(['--config', CONFIG, '--checkpoint', str(tmp / 'work' / 'latest.pth'),
                  '--input', str(val / '000000.jpg'), str(val / '000001.jpg'),
                  str(other / '000000.jpg'), '--output', str(out), '--score-thr', '0.0',
                  '--device', 'cpu', '--json', '--cfg-options', 'test_cfg.max_per_img=5'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(out)) == ['000000.jpg', '000000.json', '000000_1.jpg',
                                       '000000_1.json', '000001.jpg', '000001.json']
    import cv2
    src = cv2.imread(str(val / '000001.jpg'))
    drawn = cv2.imread(str(out / '000001.jpg'))
    assert drawn.shape == src.shape
    rec = json.loads((out / '000001.json').read_text())
    assert rec['file_name'] == '000001.jpg'
    assert (rec['height'], rec['width']) == src.shape[:2]
    assert len(rec['instances']) <= 5  # --cfg-options reached the model
    for inst in rec['instances']:
        assert inst['category'] in ('circle', 'triangle', 'square', 'star', 'ring')
        assert inst['category_id'] == inst['label'] + 1
        m = mask_utils.decode(inst['segmentation'])
        assert m.shape == src.shape[:2] and int(m.sum()) == inst['area']
        assert 0.0 <= inst['score'] <= 1.0


def test_demo_folder_input_and_errors(demo_run, tmp_path):
    tmp, _ = demo_run
    ckpt = str(tmp / 'work' / 'latest.pth')
    out = tmp_path / 'o'
    proc = _demo(['--config', CONFIG, '--checkpoint', ckpt, '--input',
                  str(tmp / 'shapes' / 'val'), '--output', str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(out)) == ['000000.jpg', '000001.jpg']
    assert '2 image(s)' in proc.stdout
    bad = _demo(['--config', CONFIG, '--checkpoint', ckpt, '--input', str(tmp_path / 'nope.jpg')])
    assert bad.returncode == 2 and 'nope.jpg' in bad.stderr
    bad = _demo(['--config', CONFIG, '--checkpoint', str(tmp_path / 'x.pth'), '--input', 'a.jpg'])
    assert bad.returncode == 2 and '--checkpoint' in bad.stderr


def test_demo_refuses_to_overwrite_its_input_images(demo_run, tmp_path):
    tmp, _ = demo_run
    imgs = tmp_path / 'imgs'
    shutil.copytree(tmp / 'shapes' / 'val', imgs)
    before = {p.name: p.read_bytes() for p in imgs.iterdir()}
    proc = _demo(['--config', CONFIG, '--checkpoint', str(tmp / 'work' / 'latest.pth'),
                  '--input', str(imgs), '--output', str(imgs / '.' / '..' / 'imgs')])
    assert proc.returncode == 2 and '--output' in proc.stderr and 'overwrite' in proc.stderr
    assert {p.name: p.read_bytes() for p in imgs.iterdir()} == before


def test_demo_goes_on_past_bad_images_and_reports_them(demo_run, tmp_path):
    import cv2
    tmp, _ = demo_run
    imgs = tmp_path / 'mixed'
    imgs.mkdir()
    shutil.copy(tmp / 'shapes' / 'val' / '000000.jpg', imgs / 'a_good.jpg')
    (imgs / 'b_broken.jpg').write_bytes(b'not a jpeg at all')
    cv2.imwrite(str(imgs / 'c_thin.png'), np.zeros((2, 3000, 3), np.uint8))
    shutil.copy(tmp / 'shapes' / 'val' / '000001.jpg', imgs / 'd_good.jpg')
    out = tmp_path / 'out'
    proc = _demo(['--config', CONFIG, '--checkpoint', str(tmp / 'work' / 'latest.pth'),
                  '--input', str(imgs), '--output', str(out)])
    assert proc.returncode == 1
    assert sorted(os.listdir(out)) == ['a_good.jpg', 'c_thin.png', 'd_good.jpg']  # 3000x2 works
    assert '1 of 4 image(s) failed' in proc.stderr and 'b_broken.jpg' in proc.stderr


def test_output_names_unique():
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    try:
        import demo
    finally:
        sys.path.pop(0)
    assert demo.output_names(['a/x.jpg', 'b/x.jpg', 'c/X.JPG', 'y.png', 'z.gif']) == \
        ['x.jpg', 'x_1.jpg', 'X_2.JPG', 'y.png', 'z.jpg']


def test_shapes_configs_build():
    from mmdet_solo.config import Config
    from mmdet_solo.models import build_detector
    for name in sorted(os.listdir(osp.join(ROOT, 'configs', 'shapes'))):
        if not name.endswith('.py'):
            continue
        cfg = Config.fromfile(osp.join(ROOT, 'configs', 'shapes', name))
        model = build_detector(cfg.model, train_cfg=cfg.get('train_cfg'),
                               test_cfg=cfg.get('test_cfg'))
        assert model.bbox_head.num_classes == len(cfg.data.train.classes) == 5
        assert cfg.data.train.ann_file.startswith('data/shapes/')
        assert np.isfinite(sum(p.sum().item() for p in model.parameters()))
