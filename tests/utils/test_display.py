"""mmdet_solo.utils.display and ``--show``: a window where one can open, a clear word where not."""
from __future__ import annotations

import numpy as np
import pytest

from mmdet_solo.apis import test as test_api
from mmdet_solo.utils import display


def test_no_display_is_named(monkeypatch):
    monkeypatch.setattr(display.sys, 'platform', 'linux')
    monkeypatch.delenv('DISPLAY', raising=False)
    monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    window, why = display.open_window()
    assert window is None and 'DISPLAY' in why


def test_headless_opencv_without_matplotlib_gui_is_named(monkeypatch):
    monkeypatch.setenv('DISPLAY', ':0')
    monkeypatch.setattr(display, 'opencv_has_gui', lambda: False)
    monkeypatch.setattr(display, 'matplotlib_gui_backend', lambda: None)
    window, why = display.open_window()
    assert window is None
    assert 'opencv-python-headless' in why and 'matplotlib' in why


def test_the_headless_opencv_is_recognised():
    # opencv-python-headless (our requirement) has no GUI
    import importlib.metadata as md
    names = {d.metadata['Name'].lower() for d in md.distributions() if d.metadata['Name']}
    if 'opencv-python-headless' in names and 'opencv-python' not in names:
        assert display.opencv_has_gui() is False


def test_matplotlib_is_used_when_opencv_has_no_gui(monkeypatch):
    monkeypatch.setenv('DISPLAY', ':0')
    monkeypatch.setattr(display, 'opencv_has_gui', lambda: False)
    monkeypatch.setattr(display, 'matplotlib_gui_backend', lambda: 'TkAgg')
    window, why = display.open_window()
    assert window.backend == 'matplotlib' and why == ''
    import matplotlib.pyplot as plt
    shown = []
    monkeypatch.setattr(plt, 'show', lambda: shown.append(plt.gcf().axes[0].images[0].get_array()))
    img = np.zeros((4, 6, 3), np.uint8)
    img[..., 0] = 255                                   # blue in BGR
    window.show(img, 'a.jpg')
    assert len(shown) == 1 and shown[0].shape == (4, 6, 3)
    assert (np.asarray(shown[0])[..., 2] == 255).all()  # shown as RGB


def test_opencv_window_when_it_has_a_gui(monkeypatch):
    import cv2
    monkeypatch.setenv('DISPLAY', ':0')
    monkeypatch.setattr(display, 'opencv_has_gui', lambda: True)
    calls = []
    monkeypatch.setattr(cv2, 'imshow', lambda title, img: calls.append(('imshow', title)),
                        raising=False)
    monkeypatch.setattr(cv2, 'waitKey', lambda delay: calls.append(('waitKey', delay)) or -1,
                        raising=False)
    monkeypatch.setattr(cv2, 'destroyWindow', lambda title: calls.append(('destroy', title)),
                        raising=False)
    window, _ = display.open_window()
    window.show(np.zeros((2, 2, 3), np.uint8), 'b.jpg')
    assert calls == [('imshow', 'b.jpg'), ('waitKey', 0), ('destroy', 'b.jpg')]


def test_check_show_without_window(monkeypatch, capsys):
    monkeypatch.setattr(test_api, 'open_window', lambda: (None, 'there is no display'))
    assert test_api.check_show(False) is False
    assert test_api.check_show(True, drawn_to='--show-dir vis') is False
    err = capsys.readouterr().err
    assert 'no window can open here: there is no display' in err and 'only written to --show-dir vis' in err
    assert test_api.check_show(True, more_to_do=True) is False
    assert 'going on without showing' in capsys.readouterr().err
    with pytest.raises(ValueError, match='--show: no window can open here.*--show-dir DIR'):
        test_api.check_show(True)


def test_check_show_with_window(monkeypatch):
    monkeypatch.setattr(test_api, 'open_window', lambda: (display.ImageWindow('matplotlib'), ''))
    assert test_api.check_show(True) is True
