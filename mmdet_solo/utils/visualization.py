"""Draw instance-segmentation results: ``show_result_ins`` (OpenCV) and ``show_result_pyplot``."""
from __future__ import annotations

import colorsys
import os
import os.path as osp
from typing import Any, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..structures.results import EncodedInstanceResult, InstanceResult

Color = Tuple[int, int, int]


def instance_color(index: int) -> Color:
    """A bright BGR colour for instance ``index``; deterministic, neighbours far apart in hue."""
    hue = (index * 0.618033988749895) % 1.0
    sat = 0.85 if index % 2 == 0 else 0.65
    r, g, b = colorsys.hsv_to_rgb(hue, sat, 1.0)
    return int(round(b * 255)), int(round(g * 255)), int(round(r * 255))


def _load_image(img: Union[str, np.ndarray]) -> np.ndarray:
    if isinstance(img, (str, os.PathLike)):
        path = os.fspath(img)
        if not osp.isfile(path):
            raise FileNotFoundError(f'show_result_ins: image file not found: {path!r}')
        out = cv2.imread(path, cv2.IMREAD_COLOR)
        if out is None:
            raise OSError(f'show_result_ins: cannot decode image file {path!r}')
        return out
    if not isinstance(img, np.ndarray):
        raise TypeError(f'show_result_ins: img must be a path or a BGR ndarray, got {type(img).__name__}')
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'show_result_ins: img must be (H, W, 3) BGR, got shape {img.shape}')
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return img.copy()


def _as_result(result: Any, hw: Tuple[int, int]) -> InstanceResult:
    if result is None:
        return InstanceResult.empty(*hw)
    if isinstance(result, InstanceResult):
        return result
    if isinstance(result, EncodedInstanceResult):  # decode once, not per instance
        return result.to_instance_result()
    if isinstance(result, (tuple, list)) and len(result) == 3:  # (masks, labels, scores)
        masks, labels, scores = result
        return InstanceResult(_np(masks), _np(labels), _np(scores))
    raise TypeError(f'show_result_ins: result must be an InstanceResult, None or (masks, labels, '
                    f'scores), got {type(result).__name__}')


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, 'detach') else np.asarray(x)


def _check_labels(labels: np.ndarray, class_names: Optional[Sequence[str]]) -> None:
    if class_names is None or len(labels) == 0:
        return
    bad = labels[(labels < 0) | (labels >= len(class_names))]
    if len(bad):
        raise IndexError(f'show_result_ins: label {int(bad[0])} is outside class_names '
                         f'({len(class_names)} names, valid labels 0..{len(class_names) - 1}); '
                         f'are the labels 0-based and the class names those of the model?')


LABEL_PAD = 2  # pixels between a label's text and its box
LABEL_GAP = 2  # pixels kept free between two label boxes


def _overlap(box: np.ndarray, placed: np.ndarray) -> float:
    """Total area of ``box`` (x0, y0, x1, y1; exclusive ends) covered by ``placed`` (M, 4), each
    grown by ``LABEL_GAP`` so that neighbours stay apart."""
    if not len(placed):
        return 0.0
    iw = np.minimum(box[2], placed[:, 2] + LABEL_GAP) - np.maximum(box[0], placed[:, 0] - LABEL_GAP)
    ih = np.minimum(box[3], placed[:, 3] + LABEL_GAP) - np.maximum(box[1], placed[:, 1] - LABEL_GAP)
    return float((np.clip(iw, 0, None) * np.clip(ih, 0, None)).sum())


def place_labels(sizes: np.ndarray, anchors: np.ndarray, img_hw: Tuple[int, int],
                 max_shifts: int = 12) -> np.ndarray:
    """Boxes (N, 4) ``x0, y0, x1, y1`` (exclusive ends) for N labels of ``sizes`` (N, 2:
    width, height) that avoid each other, placed in the given order (most important first).

    A label's preferred place is just above its ``anchor`` (x, y: the top-left of its
    instance), then just below that point (inside the instance's top edge), then stacked
    further down or up by whole label heights; the first place inside the image that overlaps
    no earlier label is taken (else the least-overlapping one), as detectron2's Visualizer moves
    labels that would cover each other.
    """
    h, w = img_hw
    boxes = np.zeros((len(sizes), 4), dtype=np.int64)
    for i, ((bw, bh), (ax, ay)) in enumerate(zip(np.asarray(sizes), np.asarray(anchors))):
        bw, bh = int(min(bw, w)), int(min(bh, h))
        x0 = int(min(max(ax, 0), w - bw))
        step = bh + LABEL_GAP
        ys = [ay - bh, ay]
        for k in range(1, max_shifts + 1):
            ys += [ay + k * step, ay - bh - k * step]
        best, best_cost = None, None
        for y0 in ys:
            y0 = int(min(max(y0, 0), h - bh))
            box = np.array([x0, y0, x0 + bw, y0 + bh])
            cost = _overlap(box, boxes[:i])
            if cost == 0:
                best = box
                break
            if best_cost is None or cost < best_cost:
                best, best_cost = box, cost
        boxes[i] = best
    return boxes


def _draw_label(img: np.ndarray, text: str, box: np.ndarray, color: Color, font_scale: float,
                thick: int) -> None:
    """Text in the instance's colour on a dark translucent box with a border of that colour."""
    x0, y0, x1, y1 = (int(v) for v in box)
    roi = img[y0:y1, x0:x1]
    roi[:] = (roi.astype(np.float32) * 0.25 + 0.5).astype(np.uint8)  # 75 % black
    cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), color, 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    (_, th), _ = cv2.getTextSize(text, font, font_scale, thick)
    cv2.putText(img, text, (x0 + LABEL_PAD, y0 + LABEL_PAD + th), font, font_scale, color, thick,
                cv2.LINE_AA)


def _label_boxes(texts: Sequence[str], anchors: Sequence[Tuple[int, int]], img_hw: Tuple[int, int],
                 font_scale: float, thick: int) -> np.ndarray:
    sizes = []
    for text in texts:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
        sizes.append((tw + 2 * LABEL_PAD, th + base + 2 * LABEL_PAD))
    return place_labels(np.asarray(sizes).reshape(-1, 2), np.asarray(anchors).reshape(-1, 2),
                        img_hw)


def show_result_ins(img: Union[str, np.ndarray], result: Optional[InstanceResult],
                    class_names: Optional[Sequence[str]], score_thr: float = 0.3,
                    out_file: Optional[str] = None, alpha: float = 0.5, thickness: int = 1,
                    font_scale: float = 0.5, show_text: bool = True) -> np.ndarray:
    """Draw the instances scoring above ``score_thr`` on ``img`` and return the BGR image.

    Each instance gets its own colour (by its index in ``result``): a semi-transparent
    fill, a contour, and a "name score" label (text in that colour on a dark box) near the
    top-left of its mask, moved where it would cover another label (:func:`place_labels`;
    higher scores keep the preferred places). Higher-scored instances are drawn last (on top).
    ``out_file`` is written (folders created) if given.

    Args:
        img: an image path or an (H, W, 3) BGR uint8 array (not modified).
        result: an ``InstanceResult`` with masks at the image size, ``None`` for nothing,
            or a ``(masks, labels, scores)`` tuple.
        class_names: names indexed by the 0-based labels; ``None`` writes the label number.
    """
    canvas = _load_image(img)
    h, w = canvas.shape[:2]
    res = _as_result(result, (h, w))
    if len(res) and res.masks.shape[1:] != (h, w):
        raise ValueError(f'show_result_ins: masks are {res.masks.shape[1:]} but the image is {(h, w)}; '
                         f'pass the original image (results are at ori_shape)')
    _check_labels(res.labels, class_names)
    keep = np.nonzero(res.scores > score_thr)[0]
    order = keep[np.argsort(res.scores[keep], kind='stable')]  # ascending: best drawn last
    texts: List[Tuple[str, int, int, Color]] = []
    for idx in order:
        mask = res.masks[idx]
        if not mask.any():
            continue
        color = instance_color(int(idx))
        blended = canvas[mask].astype(np.float32) * (1 - alpha) + np.array(color, np.float32) * alpha
        canvas[mask] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(canvas, contours, -1, color, thickness)
        label = int(res.labels[idx])
        name = class_names[label] if class_names is not None else f'class {label}'
        ys, xs = np.nonzero(mask)
        texts.append((f'{name} {res.scores[idx]:.2f}', int(xs.min()), int(ys.min()), color))
    if show_text and texts:
        thick = max(1, int(round(font_scale * 2)))
        texts = texts[::-1]  # best first: it keeps its preferred place
        boxes = _label_boxes([t[0] for t in texts], [t[1:3] for t in texts], (h, w),
                             font_scale, thick)
        for (text, _, _, color), box in zip(texts[::-1], boxes[::-1]):  # best drawn last
            _draw_label(canvas, text, box, color, font_scale, thick)
    if out_file is not None:
        folder = osp.dirname(osp.abspath(out_file))
        os.makedirs(folder, exist_ok=True)
        if not cv2.imwrite(out_file, canvas):
            raise OSError(f'show_result_ins: cannot write {out_file!r} (unknown image extension?)')
    return canvas


def show_result_pyplot(img: Union[str, np.ndarray], result: Optional[InstanceResult],
                       class_names: Optional[Sequence[str]], score_thr: float = 0.3,
                       fig_size: Tuple[float, float] = (15, 10), title: Optional[str] = None,
                       show: bool = True, **kwargs: Any):
    """Draw with :func:`show_result_ins` and display it with matplotlib; returns the figure."""
    import matplotlib.pyplot as plt

    drawn = show_result_ins(img, result, class_names, score_thr=score_thr, **kwargs)
    fig = plt.figure(figsize=fig_size)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(cv2.cvtColor(drawn, cv2.COLOR_BGR2RGB))
    ax.axis('off')
    if title is not None:
        ax.set_title(title)
    fig.tight_layout()
    if show:
        plt.show()
    return fig


__all__ = ['show_result_ins', 'show_result_pyplot', 'instance_color', 'place_labels']
