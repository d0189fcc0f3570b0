"""Tests of the result drawing helpers (matplotlib on the Agg backend)."""
import matplotlib

matplotlib.use('Agg')

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mmdet_solo.structures.results import InstanceResult  # noqa: E402
from mmdet_solo.utils.visualization import (instance_color, show_result_ins,  # noqa: E402
                                            show_result_pyplot)

CLASSES = ('person', 'bench', 'car')


def _result():
    masks = np.zeros((3, 60, 80), bool)
    masks[0, 30:50, 40:70] = True   # drawn
    masks[1, 5:15, 5:15] = True     # below score_thr: not drawn
    masks[2, 35:55, 5:25] = True    # drawn
    return InstanceResult(masks, np.array([2, 0, 1]), np.array([0.9, 0.1, 0.5], np.float32))


def test_draws_inside_masks_only():
    img = np.full((60, 80, 3), 100, np.uint8)
    before = img.copy()
    out = show_result_ins(img, _result(), CLASSES, score_thr=0.3)
    assert np.array_equal(img, before), 'the input image must not be modified'
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.all(np.any(out[40:48, 45:65] != 100, axis=-1))   # interior of instance 0
    assert np.all(np.any(out[40:50, 8:22] != 100, axis=-1))    # interior of instance 2
    assert np.all(out[5:15, 5:15] == 100)                       # low score: untouched
    assert np.all(out[56:, 30:] == 100)                        # below everything
    # without text (contours lie on the mask border) nothing outside the drawn masks changes
    res = _result()
    bare = show_result_ins(img, res, CLASSES, score_thr=0.3, show_text=False)
    outside = ~(res.masks[0] | res.masks[2])
    assert np.all(bare[outside] == 100)
    # each instance has its own colour
    assert not np.array_equal(out[45, 55], out[45, 15])


def test_text_uses_class_names_and_empty_result(tmp_path):
    img = np.full((60, 80, 3), 100, np.uint8)
    with_text = show_result_ins(img, _result(), CLASSES, show_text=True)
    no_text = show_result_ins(img, _result(), CLASSES, show_text=False)
    assert np.any(with_text != no_text)
    empty = show_result_ins(img, InstanceResult.empty(60, 80), CLASSES)
    assert np.array_equal(empty, img)
    assert np.array_equal(show_result_ins(img, None, CLASSES), img)


def test_writes_out_file_and_reads_paths(tmp_path):
    src = tmp_path / 'in.png'
    cv2.imwrite(str(src), np.full((60, 80, 3), 100, np.uint8))
    out_file = tmp_path / 'a' / 'b' / 'vis.png'
    drawn = show_result_ins(str(src), _result(), CLASSES, out_file=str(out_file))
    assert out_file.is_file()
    assert np.array_equal(cv2.imread(str(out_file)), drawn)
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        show_result_ins(str(tmp_path / 'missing.jpg'), None, CLASSES)


def test_clear_errors():
    img = np.zeros((60, 80, 3), np.uint8)
    with pytest.raises(IndexError, match='label 2 is outside class_names'):
        show_result_ins(img, _result(), ('person', 'bench'))
    with pytest.raises(ValueError, match='masks are'):
        show_result_ins(np.zeros((30, 40, 3), np.uint8), _result(), CLASSES)


def test_colors_are_deterministic_and_distinct():
    colors = [instance_color(i) for i in range(10)]
    assert colors == [instance_color(i) for i in range(10)]
    assert len(set(colors)) == 10


def test_show_result_pyplot():
    import matplotlib.pyplot as plt
    fig = show_result_pyplot(np.full((60, 80, 3), 100, np.uint8), _result(), CLASSES,
                             fig_size=(4, 3), title='demo', show=False)
    assert fig.axes[0].get_title() == 'demo'
    plt.close(fig)
