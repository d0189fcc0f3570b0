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


def _put_label(img: np.ndarray, text: str, x: int, y: int, color: Color, font_scale: float) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    thick = max(1, int(round(font_scale * 2)))
    (tw, th), base = cv2.getTextSize(text, font, font_scale, thick)
    h, w = img.shape[:2]
    x = int(min(max(x, 0), max(w - tw, 0)))
    y = int(min(max(y, th + 1), h - base - 1))
    cv2.putText(img, text, (x, y), font, font_scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, (x, y), font, font_scale, color, thick, cv2.LINE_AA)


def show_result_ins(img: Union[str, np.ndarray], result: Optional[InstanceResult],
                    class_names: Optional[Sequence[str]], score_thr: float = 0.3,
                    out_file: Optional[str] = None, alpha: float = 0.5, thickness: int = 1,
                    font_scale: float = 0.5, show_text: bool = True) -> np.ndarray:
    """Draw the instances scoring above ``score_thr`` on ``img`` and return the BGR image.

    Each instance gets its own colour (by its index in ``result``): a semi-transparent
    fill, a contour, and "name score" near the top-left of its mask. Higher-scored instances
    are drawn last (on top). ``out_file`` is written (folders created) if given.

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
        texts.append((f'{name} {res.scores[idx]:.2f}', int(xs.min()), int(ys.min()) - 2, color))
    if show_text:
        for text, x, y, color in texts:
            _put_label(canvas, text, x, y, color, font_scale)
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


__all__ = ['show_result_ins', 'show_result_pyplot', 'instance_color']
