"""Pictures of training samples: ground truth as the network gets it, and its grid assignment.

:func:`draw_training_sample` makes one BGR image: the sample at its input size (after resize,
flip, padding) with the GT masks, boxes and class names, and, given the head's assignment,
one panel per FPN level with its S x S grid, the positive cells filled in the colour of the
instance whose label they learn (cells claimed by several instances crossed out in white:
the later instance wins), and a legend (level, S, scale range, instances assigned).
Used by ``tools/browse_dataset.py``; colours are :func:`~.visualization.instance_color` of
the instance index, the same in every panel.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .visualization import instance_color

FONT = cv2.FONT_HERSHEY_SIMPLEX
RED = (60, 60, 255)
WHITE = (255, 255, 255)
GREY = (150, 150, 150)


def denormalize(img: np.ndarray, norm_cfg: Optional[dict]) -> np.ndarray:
    """A pipeline image ((C, H, W) or (H, W, C), normalised by ``norm_cfg`` if given) as
    (H, W, 3) BGR uint8."""
    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[2] not in (1, 3):
        img = img.transpose(1, 2, 0)
    if img.ndim == 2:
        img = img[:, :, None]
    if norm_cfg is not None:
        img = img * np.asarray(norm_cfg['std'], np.float32) + np.asarray(norm_cfg['mean'],
                                                                         np.float32)
        if norm_cfg.get('to_rgb', False):
            img = img[:, :, ::-1]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(np.clip(img + 0.5, 0, 255).astype(np.uint8))


def _resample(masks: np.ndarray, out_hw: Tuple[int, int], factor: float) -> np.ndarray:
    """Nearest-neighbour resampling of (K, H, W) masks to (K, h, w) by pixel centres."""
    rows = np.minimum(((np.arange(out_hw[0]) + 0.5) / factor).astype(np.int64), masks.shape[1] - 1)
    cols = np.minimum(((np.arange(out_hw[1]) + 0.5) / factor).astype(np.int64), masks.shape[2] - 1)
    return masks[:, rows][:, :, cols]


def _top_index(masks: np.ndarray) -> np.ndarray:
    """(h, w) index of the last mask covering each pixel, -1 where none does."""
    if len(masks) == 0:
        return np.full(masks.shape[1:], -1, np.int64)
    weighted = masks.astype(np.int64) * np.arange(1, len(masks) + 1)[:, None, None]
    return weighted.max(0) - 1


def _colors(k: int) -> np.ndarray:
    return np.array([instance_color(i) for i in range(k)], np.float32).reshape(-1, 3)


def _blend(canvas: np.ndarray, index: np.ndarray, colors: np.ndarray, alpha: float) -> None:
    on = index >= 0
    canvas[on] = np.clip(canvas[on] * (1 - alpha) + colors[index[on]] * alpha + 0.5, 0,
                         255).astype(np.uint8)


def _text(img: np.ndarray, text: str, x: int, y: int, color, scale: float = 0.42,
          outline: bool = True) -> int:
    """Text (outlined in black, for image backgrounds) with its baseline at y; returns its
    width."""
    (tw, _), _ = cv2.getTextSize(text, FONT, scale, 1)
    if outline:
        cv2.putText(img, text, (x, y), FONT, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (x, y), FONT, scale, color, 1, cv2.LINE_AA)
    return tw


Line = List[Tuple[str, Tuple[int, int, int]]]


def _wrap(tokens: Line, width: int, scale: float = 0.42, max_lines: int = 6) -> List[Line]:
    """Coloured words into lines of at most ``width`` px; '+N more' past ``max_lines``."""
    lines: List[Line] = [[]]
    used = 0
    space = _space(scale)
    width -= 10  # the legend's margins
    for i, (text, color) in enumerate(tokens):
        tw = cv2.getTextSize(text, FONT, scale, 1)[0][0]
        if lines[-1] and used + space + tw > width:
            if len(lines) == max_lines:
                lines[-1].append((f'+{len(tokens) - i} more', GREY))
                break
            lines.append([])
            used = 0
        lines[-1].append((text, color))
        used += tw + space
    return lines


def _space(scale: float) -> int:
    return cv2.getTextSize(' ', FONT, scale, 1)[0][0] + 2


def _legend(lines: List[Line], width: int, scale: float = 0.42) -> np.ndarray:
    step = int(round(28 * scale + 6))
    strip = np.full((step * len(lines) + 8, width, 3), 32, np.uint8)
    for row, line in enumerate(lines):
        x = 5
        for text, color in line:
            x += _text(strip, text, x, step * (row + 1), color, scale, outline=False)
            x += _space(scale)
    return strip


def draw_ground_truth(base: np.ndarray, masks: np.ndarray, bboxes: np.ndarray,
                      labels: np.ndarray, class_names: Optional[Sequence[str]],
                      factor: float, img_hw: Optional[Tuple[int, int]] = None,
                      alpha: float = 0.45) -> np.ndarray:
    """``base`` (the input image resized by ``factor``) with the masks (input size), boxes
    and ``#index name`` labels; ``img_hw`` outlines the unpadded image."""
    canvas = base.copy()
    h, w = canvas.shape[:2]
    small = _resample(masks, (h, w), factor) if len(masks) else np.zeros((0, h, w), np.uint8)
    colors = _colors(len(masks))
    _blend(canvas, _top_index(small), colors, alpha)
    if img_hw is not None:
        cv2.rectangle(canvas, (0, 0), (int(img_hw[1] * factor) - 1, int(img_hw[0] * factor) - 1),
                      GREY, 1)
    for i, (mask, box, label) in enumerate(zip(small, bboxes, labels)):
        color = tuple(int(c) for c in colors[i])
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, color, 1)
        x1, y1, x2, y2 = (np.asarray(box, np.float64) * factor).round().astype(int)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 1)
        name = _name(int(label), class_names)
        _text(canvas, f'#{i} {name}', max(x1, 0), max(y1 - 3, 10), color)
    return canvas


def _name(label: int, class_names: Optional[Sequence[str]]) -> str:
    if class_names is not None and 0 <= label < len(class_names):
        return str(class_names[label])
    return f'class {label}'


def cell_instances(level) -> np.ndarray:
    """(S*S,) the instance whose label each cell of a ``LevelAssignment`` learns (the last to
    claim it, by the head's own ``cell_owner``), -1 for background."""
    owner = level.cell_owner().cpu().numpy()
    inst = level.inst_inds.cpu().numpy()
    return np.where(owner >= 0, inst[np.maximum(owner, 0)] if len(inst) else -1, -1)


def draw_level(base: np.ndarray, level, input_hw: Tuple[int, int], masks: np.ndarray,
               factor: float, alpha: float = 0.6) -> np.ndarray:
    """One level's grid (a ``LevelAssignment``) over the dimmed ``base``: each positive cell
    filled with the colour of the instance that keeps its label, cells claimed more than once
    crossed out, and the contours of the level's instances."""
    canvas = (base.astype(np.float32) * 0.45).astype(np.uint8)
    h, w = canvas.shape[:2]
    num_grid = level.num_grid
    inst_inds = level.inst_inds.cpu().numpy()
    cells = level.cells.cpu().numpy()
    owner = cell_instances(level)
    ys = np.minimum(((np.arange(h) + 0.5) / factor * num_grid / input_hw[0]).astype(np.int64),
                    num_grid - 1)
    xs = np.minimum(((np.arange(w) + 0.5) / factor * num_grid / input_hw[1]).astype(np.int64),
                    num_grid - 1)
    colors = _colors(len(masks))
    _blend(canvas, owner.reshape(num_grid, num_grid)[ys[:, None], xs[None, :]], colors, alpha)
    for j in range(1, num_grid):
        x = int(round(j * input_hw[1] / num_grid * factor))
        y = int(round(j * input_hw[0] / num_grid * factor))
        cv2.line(canvas, (x, 0), (x, h - 1), (90, 90, 90), 1)
        cv2.line(canvas, (0, y), (w - 1, y), (90, 90, 90), 1)
    shared = np.flatnonzero(np.bincount(cells, minlength=num_grid ** 2) > 1)
    cell_w, cell_h = input_hw[1] / num_grid * factor, input_hw[0] / num_grid * factor
    for cell in shared:
        r, c = divmod(int(cell), num_grid)
        p1 = (int(c * cell_w) + 2, int(r * cell_h) + 2)
        p2 = (int((c + 1) * cell_w) - 2, int((r + 1) * cell_h) - 2)
        cv2.line(canvas, p1, p2, WHITE, 1)
        cv2.line(canvas, (p1[0], p2[1]), (p2[0], p1[1]), WHITE, 1)
    here = np.unique(inst_inds)
    if len(here):
        small = _resample(masks[here], (h, w), factor)
        for i, mask in zip(here, small):
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(canvas, contours, -1, tuple(int(c) for c in colors[i]), 1)
    return canvas


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f'{v:g}'


def draw_training_sample(img: np.ndarray, masks: np.ndarray, bboxes: np.ndarray,
                         labels: np.ndarray, class_names: Optional[Sequence[str]],
                         input_hw: Tuple[int, int], img_hw: Tuple[int, int],
                         levels: Optional[Sequence] = None,
                         scale_ranges: Optional[Sequence[Sequence[float]]] = None,
                         title: str = '', max_size: int = 480) -> np.ndarray:
    """The GT panel, then (with ``levels``: the head's ``LevelAssignment`` s) one panel per
    level, side by side with legends below; panels are ``max_size`` px on their long side.

    Args:
        img: (H, W, 3) BGR uint8 input image (padded), masks (K, H', W') 0/1 at the input
            size, bboxes (K, 4) and labels (K,) as the training pipeline delivers them.
        input_hw: the (H, W) the grid spans (the padded input); img_hw: the unpadded image.
    """
    canvas = np.zeros(tuple(input_hw) + (3,), np.uint8)
    ch, cw = min(img.shape[0], input_hw[0]), min(img.shape[1], input_hw[1])
    canvas[:ch, :cw] = img[:ch, :cw]
    factor = max_size / max(input_hw)
    size = (max(1, int(round(input_hw[1] * factor))), max(1, int(round(input_hw[0] * factor))))
    base = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA if factor < 1
                      else cv2.INTER_LINEAR)
    masks = np.asarray(masks, np.uint8)
    if masks.shape[1:] != tuple(input_hw):
        padded = np.zeros((len(masks),) + tuple(input_hw), np.uint8)
        mh, mw = min(masks.shape[1], input_hw[0]), min(masks.shape[2], input_hw[1])
        padded[:, :mh, :mw] = masks[:, :mh, :mw]
        masks = padded
    labels = np.asarray(labels).reshape(-1)
    bboxes = np.asarray(bboxes, np.float64).reshape(-1, 4)
    panels = [draw_ground_truth(base, masks, bboxes, labels, class_names, factor, img_hw)]
    width = panels[0].shape[1]
    colors = _colors(len(labels))

    def tok(i: int) -> Tuple[str, Tuple[int, int, int]]:
        return f'#{i} {_name(int(labels[i]), class_names)}', tuple(int(c) for c in colors[i])

    def words(text: str, color=WHITE) -> List[Line]:
        return _wrap([(word, color) for word in text.split()], width)

    legends = [(words(title) if title else [])
               + words(f'input {input_hw[1]}x{input_hw[0]}, image {img_hw[1]}x{img_hw[0]}, '
                       f'{len(labels)} instances')]
    if levels is not None:
        assigned = np.zeros(len(labels), bool)
        for li, lvl in enumerate(levels):
            inst = lvl.inst_inds.cpu().numpy()
            cells = lvl.cells.cpu().numpy()
            assigned[inst] = True
            panels.append(draw_level(base, lvl, input_hw, masks, factor))
            shared = int((np.bincount(cells, minlength=lvl.num_grid ** 2) > 1).sum())
            rng = scale_ranges[li] if scale_ranges is not None else None
            here = np.unique(inst)
            lines = words(f'level {li}  S={lvl.num_grid}'
                          + (f'  range [{_fmt(rng[0])}, {_fmt(rng[1])}]' if rng else ''))
            lines += words(f'{len(here)} instances, {len(np.unique(cells))} positive cells, '
                           f'{shared} shared')
            lines += _wrap([tok(int(i)) for i in here], width)
            legends.append(lines)
        missing = np.flatnonzero(~assigned)
        if len(missing):
            scale = np.sqrt((bboxes[:, 2] - bboxes[:, 0]) * (bboxes[:, 3] - bboxes[:, 1]))
            legends[0] += _wrap([('never assigned:', RED)]
                                + [(f'#{i} ({scale[i]:.1f} px)', RED) for i in missing], width)
        else:
            legends[0] += words('every instance assigned', GREY)
    legends[0] += _wrap([tok(i) for i in range(len(labels))], width)
    n_lines = max(len(lines) for lines in legends)
    columns = []
    for panel, lines in zip(panels, legends):
        lines = [line for line in lines if line]
        strip = _legend(lines + [[] for _ in range(n_lines - len(lines))], width)
        columns.append(np.concatenate([panel, strip], axis=0))
    sep = np.full((columns[0].shape[0], 4, 3), 255, np.uint8)
    out: List[np.ndarray] = []
    for col in columns:
        out += [col, sep]
    return np.concatenate(out[:-1], axis=1)


__all__ = ['draw_training_sample', 'draw_ground_truth', 'draw_level', 'cell_instances',
           'denormalize']
