"""tools/demo.py on videos: a small generated video in, an annotated video of the same frame
count, size and fps out; --camera without a window is refused before the model loads."""
from __future__ import annotations

import importlib.util
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'shapes', 'solov2_light_r18_shapes.py')


def _demo_module():
    spec = importlib.util.spec_from_file_location('demo_tool', osp.join(ROOT, 'tools', 'demo.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """The shapes model with its initial weights (random, but a complete checkpoint)."""
    from mmdet_solo.config import Config
    from mmdet_solo.models import build_detector
    torch.manual_seed(0)
    cfg = Config.fromfile(CONFIG)
    model = build_detector(cfg.model, test_cfg=cfg.test_cfg)
    path = tmp_path_factory.mktemp('ckpt') / 'init.pth'
    torch.save({'meta': {}, 'state_dict': model.state_dict()}, path)
    return str(path)


def _write_video(path, frames=5, size=(80, 64), fps=7.0, codec='mp4v'):
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (w, h))
    assert writer.isOpened(), f'{codec} not writable here'
    rng = np.random.default_rng(0)
    for i in range(frames):
        img = np.full((h, w, 3), 40, np.uint8)
        cv2.circle(img, (10 + 8 * i, 30), 12, tuple(int(c) for c in rng.integers(80, 255, 3)), -1)
        writer.write(img)
    writer.release()


def _probe(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    out = (n, int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
           cap.get(cv2.CAP_PROP_FPS))
    cap.release()
    return out


def test_video_in_annotated_video_out(checkpoint, tmp_path, capsys):
    # an .avi in (Motion-JPEG), an .mp4 out (mp4v): both codecs of opencv-python-headless
    src, out = tmp_path / 'in.avi', tmp_path / 'res' / 'out.mp4'
    out_name = 'out.mp4'
    _write_video(src, frames=4, codec='MJPG')
    rc = _demo_module().main(['--config', CONFIG, '--checkpoint', checkpoint, '--input',
                              str(src), '--output', str(out), '--device', 'cpu',
                              '--score-thr', '0.0', '--cfg-options', 'test_cfg.score_thr=0.0',
                              'test_cfg.max_per_img=5', 'test_cfg.nms_pre=10',
                              'test_cfg.update_thr=0.0'])
    assert rc == 0
    assert _probe(out) == (4, 80, 64, pytest.approx(7.0))
    assert sorted(p.name for p in out.parent.iterdir()) == [out_name]  # no partial file left
    assert f'4 frame(s) of {src}' in capsys.readouterr().out


def test_video_errors(checkpoint, tmp_path, capsys):
    demo = _demo_module()
    src = tmp_path / 'in.mp4'
    _write_video(src, frames=2)
    base = ['--config', CONFIG, '--checkpoint', checkpoint, '--device', 'cpu']
    for args, msg in [(['--input', str(src), str(src)], 'only --input'),
                      (['--input', str(src), '--output', str(tmp_path / 'o.gif')], 'extensions'),
                      (['--input', str(src), '--output', str(src)], 'is the input video'),
                      (['--input', str(src), '--json'], '--json'),
                      (['--input', str(src), '--camera', '0'], 'not allowed with')]:
        with pytest.raises(SystemExit) as e:
            demo.main(base + args)
        assert e.value.code == 2, args
        assert msg in capsys.readouterr().err, args


def test_camera_without_window_is_refused_before_loading(monkeypatch, capsys, tmp_path):
    import mmdet_solo.utils.display as display
    monkeypatch.setattr(display, 'open_window', lambda: (None, 'there is no display (test)'))
    with pytest.raises(SystemExit):
        # a missing checkpoint would fail later: the window check comes first
        _demo_module().main(['--config', CONFIG, '--checkpoint', CONFIG, '--camera', '0'])
    err = capsys.readouterr().err
    assert 'no window can open here: there is no display (test)' in err


def test_images_still_go_to_a_folder_and_show_needs_a_window(checkpoint, tmp_path, monkeypatch,
                                                              capsys):
    img = tmp_path / 'a.png'
    cv2.imwrite(str(img), np.full((48, 64, 3), 90, np.uint8))
    demo = _demo_module()
    base = ['--config', CONFIG, '--checkpoint', checkpoint, '--input', str(img), '--device', 'cpu']
    assert demo.main(base + ['--output', str(tmp_path / 'out')]) == 0
    assert cv2.imread(str(tmp_path / 'out' / 'a.png')).shape == (48, 64, 3)
    import mmdet_solo.utils.display as display
    monkeypatch.setattr(display, 'open_window', lambda: (None, 'no display (test)'))
    with pytest.raises(SystemExit):
        demo.main(base + ['--show'])
    assert '--show: no window can open here: no display (test)' in capsys.readouterr().err
