"""Readable result labels: boxed text placed so that labels do not cover each other."""
import cv2
import numpy as np

from mmdet_solo.structures.results import InstanceResult
from mmdet_solo.utils.visualization import LABEL_GAP, instance_color, place_labels, show_result_ins


def _disjoint(a, b, gap=0):
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def test_place_labels_moves_a_duplicate():
    boxes = place_labels(np.array([[60, 14], [60, 14]]), np.array([[20, 50], [21, 51]]), (120, 160))
    assert boxes[0].tolist() == [20, 36, 80, 50]          # preferred: right above its anchor
    assert _disjoint(boxes[0], boxes[1], LABEL_GAP), boxes
    # near the top edge and the right edge: inside the image, still apart
    boxes = place_labels(np.array([[60, 14]] * 3), np.array([[150, 0]] * 3), (120, 160))
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 160).all() and (boxes[:, 3] <= 120).all()
    assert all(_disjoint(boxes[i], boxes[j], LABEL_GAP) for i in range(3) for j in range(i))
    # more labels than fit: every box stays inside the image
    boxes = place_labels(np.array([[50, 20]] * 40), np.zeros((40, 2)), (60, 80))
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 80).all() and (boxes[:, 3] <= 60).all()


def _dark_components(img):
    dark = (img.max(axis=-1) < 80).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    return [s for s in stats[1:] if s[cv2.CC_STAT_AREA] > 20]


def test_near_duplicate_detections_get_separate_readable_labels():
    img = np.full((120, 160, 3), 255, np.uint8)
    masks = np.zeros((2, 120, 160), bool)
    masks[0, 60:110, 30:120] = True
    masks[1, 61:110, 31:121] = True               # the same object found twice
    res = InstanceResult(masks, np.array([0, 0]), np.array([0.9, 0.8], np.float32))
    out = show_result_ins(img, res, ('person',), score_thr=0.3)
    labels = _dark_components(out)                # only the label boxes are dark
    assert len(labels) == 2, [s.tolist() for s in labels]
    a, b = ([s[0], s[1], s[0] + s[2], s[1] + s[3]] for s in labels)
    assert _disjoint(a, b), (a, b)
    # each box holds text in its instance's colour on the dark background
    for s, idx in zip(sorted(labels, key=lambda s: s[1]), (0, 1)):    # the best is above
        x, y, w, h = s[:4]
        roi = out[y:y + h, x:x + w].reshape(-1, 3).astype(int)
        color = np.array(instance_color(idx))
        assert (np.abs(roi - color).max(axis=1) <= 40).sum() > 10, idx
