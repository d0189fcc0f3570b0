"""tools/test_ins.py, tools/dist_test.sh, tools/test_ins_vis.py and mmdet_solo.apis.test.

A tiny SOLOv2 (R18, 128x96 test scale) with random weights and the category bias raised by 5,
so that every image gets detections, on a 5-image COCO set (odd: the 2-rank sampler pads).
"""
import importlib.util
import json
import os
import pickle
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from coco_fixtures import write_tiny_coco

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, 'tools')
BASE_CONFIG = os.path.join(ROOT, 'configs', 'solov2', 'solov2_light_448_r18_fpn_8gpu_3x.py')
CLASSES = ('disc', 'tri', 'box')
NUM_IMAGES = 5
AP_LINE = 'Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]'
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', MPLBACKEND='Agg',
           PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))

CONFIG_TEXT = '''_base_ = {base!r}
model = dict(pretrained=None, bbox_head=dict(num_classes={n}))
test_cfg = dict(nms_pre=30, max_per_img=10)
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiScaleFlipAug', img_scale=(128, 96), flip=False, transforms=[
        dict(type='Resize', keep_ratio=True),
        dict(type='RandomFlip'),
        dict(type='Normalize', **img_norm_cfg),
        dict(type='Pad', size_divisor=32),
        dict(type='ImageToTensor', keys=['img']),
        dict(type='Collect', keys=['img'])])]
data = dict(workers_per_gpu=0, test=dict(type='CocoDataset', ann_file={ann!r},
            img_prefix={prefix!r}, classes={classes!r}, pipeline=test_pipeline))
'''


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(f'tool_{name}', os.path.join(TOOLS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _run(args, timeout=300):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=ENV)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Tiny dataset, config and checkpoints (meta CLASSES = the dataset's, and renamed ones)."""
    from mmdet_solo.config import Config
    from mmdet_solo.models import build_detector
    from mmdet_solo.utils.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp('test_tools')
    info = write_tiny_coco(str(root / 'data'), num_images=NUM_IMAGES, classes=CLASSES)
    config = str(root / 'tiny_solov2.py')
    with open(config, 'w') as f:
        f.write(CONFIG_TEXT.format(base=BASE_CONFIG, n=len(CLASSES), ann=info['ann_file'],
                                   prefix=info['img_prefix'], classes=CLASSES))
    cfg = Config.fromfile(config)
    torch.manual_seed(0)
    model = build_detector(cfg.model, test_cfg=cfg.get('test_cfg'))
    with torch.no_grad():
        model.bbox_head.solo_cate.bias.add_(5.0)
    ckpt = str(root / 'ckpt.pth')
    save_checkpoint(model, ckpt, meta={'CLASSES': CLASSES})
    renamed = tuple(c.upper() + '_ckpt' for c in CLASSES)
    ckpt_renamed = str(root / 'ckpt_renamed.pth')
    save_checkpoint(model, ckpt_renamed, meta={'CLASSES': renamed})
    ckpt_permuted = str(root / 'ckpt_permuted.pth')
    save_checkpoint(model, ckpt_permuted, meta={'CLASSES': CLASSES[::-1]})
    return dict(root=root, info=info, config=config, ckpt=ckpt, ckpt_renamed=ckpt_renamed,
                renamed=renamed, ckpt_permuted=ckpt_permuted)


@pytest.fixture(scope='module')
def single_run(setup):
    """``test_ins.py --out r.pkl --eval segm bbox --show-dir vis`` in a subprocess."""
    root = setup['root']
    out, vis = str(root / 'single' / 'r.pkl'), str(root / 'single' / 'vis')
    proc = _run([sys.executable, os.path.join(TOOLS, 'test_ins.py'), setup['config'],
                 setup['ckpt'], '--out', out, '--eval', 'segm', 'bbox', '--classwise',
                 '--show-dir', vis])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(proc=proc, out=out, vis=vis)


def _load_pickle_without_package(path):
    """Load the --out pickle in a fresh interpreter where importing mmdet_solo fails."""
    code = ('import pickle, sys; sys.modules["mmdet_solo"] = None\n'
            f'd = pickle.load(open({path!r}, "rb"))\n'
            'r = d["results"]\n'
            'print(len(r), sum(len(e["labels"]) for e in r), type(r[0]["labels"]).__name__)')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120, cwd='/', env=dict(os.environ, PYTHONPATH=''))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


# --------------------------------------------------------------------------- tools/test_ins.py
def test_eval_out_and_show_dir(setup, single_run):
    stdout = single_run['proc'].stdout
    assert stdout.count(AP_LINE) == 2, stdout          # segm and bbox tables
    assert 'Per-class segm AP' in stdout and '| disc ' in stdout
    assert 'inference' in single_run['proc'].stderr    # the progress bar

    n, n_inst, label_type = _load_pickle_without_package(single_run['out'])
    assert (int(n), label_type) == (NUM_IMAGES, 'ndarray')
    assert int(n_inst) > 0, 'the raised category bias should give detections'

    with open(single_run['out'], 'rb') as f:
        data = pickle.load(f)
    assert data['format'] == 'mmdet_solo.instance_results/1'
    assert data['classes'] == list(CLASSES)
    coco = COCO(setup['info']['ann_file'])
    assert [e['image_id'] for e in data['results']] == coco.getImgIds()
    for e in data['results']:
        n = len(e['labels'])
        assert len(e['masks']) == len(e['scores']) == len(e['bboxes']) == n
        assert e['labels'].dtype == np.int64 and e['bboxes'].shape == (n, 4)
        assert all(m['size'] == [e['height'], e['width']] and isinstance(m['counts'], str)
                   for m in e['masks'])

    metrics_path = single_run['out'][:-len('.pkl')] + '.eval.json'
    assert f'metrics written to {metrics_path}' in stdout
    with open(metrics_path) as f:
        metrics = json.load(f)
    assert metrics['classes'] == list(CLASSES) and metrics['eval'] == ['segm', 'bbox']
    for key in ('segm_mAP', 'segm_mAP_50', 'bbox_mAP', 'bbox_mAP_l', 'segm_AP_disc'):
        assert key in metrics['metrics'], key

    drawn = sorted(os.listdir(single_run['vis']))
    assert drawn == sorted(os.path.basename(p) for p in setup['info']['image_files'])


def test_results_match_inference_detector(setup, single_run):
    """The pickle holds the model's own output for each image, in dataset order."""
    import pycocotools.mask as mask_utils

    from mmdet_solo.apis import inference_detector, init_detector
    model = init_detector(setup['config'], setup['ckpt'], device='cpu')
    with open(single_run['out'], 'rb') as f:
        entries = pickle.load(f)['results']
    for i in (0, 3):
        expected = inference_detector(model, setup['info']['image_files'][i])
        e = entries[i]
        np.testing.assert_array_equal(e['labels'], expected.labels)
        np.testing.assert_allclose(e['scores'], expected.scores, atol=1e-5)
        np.testing.assert_allclose(e['bboxes'], expected.bboxes)
        masks = mask_utils.decode(e['masks']).transpose(2, 0, 1).astype(bool)
        np.testing.assert_array_equal(masks, expected.masks)


def test_format_only_writes_loadable_coco_json(setup, single_run, tmp_path):
    tool = _load_tool('test_ins')
    prefix = str(tmp_path / 'sub' / 'p')
    assert tool.main([setup['config'], setup['ckpt'], '--format-only',
                      '--jsonfile_prefix', prefix]) == 0
    with open(single_run['out'], 'rb') as f:
        n_inst = sum(len(e['labels']) for e in pickle.load(f)['results'])
    coco = COCO(setup['info']['ann_file'])
    for kind in ('segm', 'bbox'):
        dets = coco.loadRes(f'{prefix}.{kind}.json')
        assert len(dets.getAnnIds()) == n_inst
        assert {a['category_id'] for a in dets.anns.values()} <= set(setup['info']['cat_ids'])
    assert 'segmentation' in coco.loadRes(f'{prefix}.segm.json').anns[1]
    assert not (tmp_path / 'sub' / 'p.eval.json').exists()


def test_unknown_metric_fails_before_inference(setup, tmp_path):
    out = str(tmp_path / 'r.pkl')
    proc = _run([sys.executable, os.path.join(TOOLS, 'test_ins.py'), setup['config'],
                 setup['ckpt'], '--out', out, '--eval', 'segm', 'foo'], timeout=120)
    assert proc.returncode == 2
    assert "--eval: unknown metric(s) ['foo']; allowed: segm, bbox, cityscapes" in proc.stderr
    assert 'inference' not in proc.stderr and not os.path.exists(out)


@pytest.mark.parametrize('argv, message', [
    (['--out', 'r.json'], '--out must end with .pkl or .pickle'),
    (['--format-only'], '--format-only needs --jsonfile_prefix'),
    (['--format-only', '--jsonfile-prefix', 'p', '--eval', 'segm'], 'cannot be used together'),
    ([], 'nothing to do'),
    (['--show-dir', 'v', '--launcher', 'pytorch'], 'single-process options'),
])
def test_argument_errors(setup, argv, message, capsys):
    tool = _load_tool('test_ins')
    with pytest.raises(SystemExit) as exc:
        tool.main([setup['config'], setup['ckpt']] + argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_unwritable_outputs_are_found_before_inference(setup, tmp_path, capsys, monkeypatch):
    tool = _load_tool('test_ins')
    blocker = tmp_path / 'a_file'
    blocker.write_text('x')
    for flag, value in (('--out', blocker / 'sub' / 'r.pkl'), ('--show-dir', blocker / 'vis')):
        with pytest.raises(SystemExit) as exc:
            tool.main([setup['config'], setup['ckpt'], flag, str(value)])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert flag in err and 'is a file, not a folder' in err
    import mmdet_solo.utils.misc as misc
    monkeypatch.setattr(misc.os, 'access', lambda path, mode: False)  # root can write anywhere
    with pytest.raises(SystemExit):
        tool.main([setup['config'], setup['ckpt'], '--out', str(tmp_path / 'new' / 'r.pkl')])
    assert f"the folder {str(tmp_path)!r} is not writable" in capsys.readouterr().err


def test_class_count_mismatch_is_an_error(setup, tmp_path):
    tool = _load_tool('test_ins')
    with pytest.raises(ValueError, match=r'has 3 classes .* test dataset has 2'):
        tool.main([setup['config'], setup['ckpt'], '--out', str(tmp_path / 'r.pkl'),
                   '--cfg-options', "data.test.classes=['disc','tri']"])
    assert not (tmp_path / 'r.pkl').exists()


def test_permuted_checkpoint_classes_reorder_the_dataset(setup):
    from mmdet_solo.apis.test import prepare_test
    with pytest.warns(UserWarning, match='in another order'):
        _, model, dataset, _ = prepare_test(setup['config'], setup['ckpt_permuted'], device='cpu')
    assert model.CLASSES == dataset.CLASSES == CLASSES[::-1]
    assert dataset.cat_ids == setup['info']['cat_ids'][::-1]  # label i -> category named CLASSES[i]


def test_existing_outputs_are_reported(setup, single_run, tmp_path, capsys):
    tool = _load_tool('test_ins')
    args = tool.build_parser().parse_args([setup['config'], setup['ckpt'], '--out',
                                           single_run['out'], '--eval', 'segm'])
    tool.warn_existing(args)
    err = capsys.readouterr().err
    assert f"{single_run['out']} exists and will be overwritten" in err
    assert 'r.eval.json exists and will be overwritten' in err
    args = tool.build_parser().parse_args([setup['config'], setup['ckpt'], '--eval', 'segm'])
    assert tool.metrics_json_path(args.out, args.checkpoint) == setup['ckpt'][:-4] + '.eval.json'


# --------------------------------------------------------------------------- tools/dist_test.sh
def test_dist_test_matches_single_process(setup, single_run):
    out = str(setup['root'] / 'dist' / 'r2.pkl')
    env = dict(ENV, PYTHON=sys.executable, MASTER_PORT=str(_free_port()))
    env.pop('PORT', None)
    proc = subprocess.run(['bash', os.path.join(TOOLS, 'dist_test.sh'), setup['config'],
                           setup['ckpt'], '2', '--out', out], capture_output=True, text=True,
                          timeout=400, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(single_run['out'], 'rb') as f:
        single = pickle.load(f)['results']
    with open(out, 'rb') as f:
        multi = pickle.load(f)['results']
    assert len(multi) == NUM_IMAGES                    # padding duplicate dropped
    assert [e['image_id'] for e in multi] == [e['image_id'] for e in single]
    for a, b in zip(single, multi):
        np.testing.assert_array_equal(a['labels'], b['labels'])
        np.testing.assert_allclose(a['scores'], b['scores'], atol=1e-5)
        assert a['masks'] == b['masks']


_GATHER_SCRIPT = '''
import pickle, sys
import numpy as np, torch, torch.nn as nn
from torch.utils.data import Dataset
from mmdet_solo.apis.test import multi_gpu_test
from mmdet_solo.datasets import build_dataloader
from mmdet_solo.engine.dist import init_dist, get_dist_info
from mmdet_solo.structures import InstanceResult

class Toy(Dataset):
    def __len__(self):
        return 5
    def __getitem__(self, i):
        return dict(img=torch.full((3, 4, 4), float(i)), img_metas=dict(filename=f'{i}.jpg'))

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
    def forward(self, img, img_metas, return_loss=False, rescale=True, **kwargs):
        out = []
        for x in img:
            i = int(x[0, 0, 0])
            m = np.zeros((1, 4, 4), bool); m[0, :i] = True
            out.append(InstanceResult(m, [i % 3], [i / 10]))
        return out

init_dist('pytorch')
rank, _ = get_dist_info()
loader = build_dataloader(Toy(), imgs_per_gpu=2, workers_per_gpu=0, dist=True, shuffle=False)
res = {}
for mode, tmpdir in (('memory', None), ('tmpdir', sys.argv[2])):
    r = multi_gpu_test(Model(), loader, tmpdir=tmpdir,
                       progress=False)
    assert (r is None) == (rank != 0), (rank, r)
    if rank == 0:
        res[mode] = [(float(x.scores[0]), int(x.masks.sum())) for x in r]
if rank == 0:
    pickle.dump(res, open(sys.argv[1], 'wb'))
'''


def test_multi_gpu_test_gathers_in_dataset_order(tmp_path):
    script = tmp_path / 'gather.py'
    script.write_text(_GATHER_SCRIPT)
    out = tmp_path / 'gathered.pkl'
    proc = _run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
                 '--master_addr=127.0.0.1', f'--master_port={_free_port()}', str(script),
                 str(out), str(tmp_path / 'shared')], timeout=200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out, 'rb') as f:
        res = pickle.load(f)
    expected = [(pytest.approx(i / 10), 4 * i) for i in range(5)]
    assert res['memory'] == expected
    assert res['tmpdir'] == expected
    assert not os.listdir(tmp_path / 'shared')          # part files removed


# --------------------------------------------------------------------------- tools/test_ins_vis.py
@pytest.mark.parametrize('tool_name,flag', [('test_ins', '--show-dir'), ('test_ins_vis', '--save_dir')])
def test_drawing_into_the_image_folder_is_refused(setup, tool_name, flag, capsys):
    tool = _load_tool(tool_name)
    prefix = setup['info']['img_prefix']
    before = {n: open(os.path.join(prefix, n), 'rb').read() for n in os.listdir(prefix)}
    args = [setup['config'], setup['ckpt'], flag, os.path.join(prefix, '..', os.path.basename(prefix))]
    with pytest.raises(SystemExit) as e:
        tool.main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and 'overwrite' in err
    assert {n: open(os.path.join(prefix, n), 'rb').read() for n in os.listdir(prefix)} == before


def test_vis_uses_checkpoint_class_names(setup, tmp_path, monkeypatch):
    import mmdet_solo.apis.test as test_api
    calls = []
    real = test_api.show_result_ins

    def recording(img, result, class_names, score_thr=0.3, out_file=None, **kw):
        calls.append(dict(img=img, class_names=class_names, score_thr=score_thr,
                          out_file=out_file, n=len(result)))
        return real(img, result, class_names, score_thr=score_thr, out_file=out_file, **kw)

    monkeypatch.setattr(test_api, 'show_result_ins', recording)
    tool = _load_tool('test_ins_vis')
    save_dir = tmp_path / 'vis'
    with pytest.warns(UserWarning, match='CLASSES differ from the test dataset'):
        assert tool.main([setup['config'], setup['ckpt_renamed'], '--save_dir', str(save_dir),
                          '--score_thr', '0.2']) == 0
    assert len(calls) == NUM_IMAGES
    assert all(tuple(c['class_names']) == setup['renamed'] for c in calls)
    assert all(c['score_thr'] == 0.2 for c in calls)
    assert [os.path.basename(c['img']) for c in calls] == \
        [os.path.basename(p) for p in setup['info']['image_files']]
    assert sorted(os.listdir(save_dir)) == sorted(os.path.basename(p)
                                                  for p in setup['info']['image_files'])
    assert sum(c['n'] for c in calls) > 0


def test_show_without_a_display_still_writes_the_images(setup, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv('DISPLAY', raising=False)
    monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    save_dir = tmp_path / 'vis'
    assert _load_tool('test_ins_vis').main([setup['config'], setup['ckpt'], '--save_dir',
                                            str(save_dir), '--show']) == 0
    err = capsys.readouterr().err
    assert '--show: no window can open here: there is no display' in err
    assert f'only written to --save_dir {save_dir}' in err
    assert len(os.listdir(save_dir)) == NUM_IMAGES
    # with nothing else to do, test_ins.py --show stops before loading anything
    with pytest.raises(SystemExit) as e:
        _load_tool('test_ins').main([setup['config'], setup['ckpt'], '--show'])
    assert e.value.code == 2
    assert 'use --show-dir DIR' in capsys.readouterr().err
