"""Geometry of mask test-time augmentation (``MultiScaleFlipAug`` views), for
:meth:`BaseGridHead.predict_aug`.

A *view* is one augmentation of a batch: its inputs were resized by a per-image
``scale_factor`` and, if ``flip``, mirrored horizontally before padding at the bottom/right.
Two operations relate views:

- :func:`mirror_columns`: the grid column that sees the mirror image of each column, per image
  and level (``S - 1 - j`` when the image fills the padded width, else the nearest column);
- :func:`warp_masks`: soft masks at 1/4 of one view's input resampled (bilinear, separable)
  into another view's 1/4 map, undoing the flip and the scale in between; where a view maps
  pixel centres onto pixel centres (same scale, width a multiple of 4) the values are copied
  exactly.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch


def _scale_xy(meta: dict) -> Tuple[float, float]:
    """(x, y) resize factor of a view's image (``scale_factor``, else img/ori shape)."""
    sf = meta.get('scale_factor')
    if sf is None:
        return (meta['img_shape'][1] / meta['ori_shape'][1],
                meta['img_shape'][0] / meta['ori_shape'][0])
    if isinstance(sf, (int, float)):
        return float(sf), float(sf)
    sf = [float(v) for v in sf]
    return (sf[0], sf[1]) if len(sf) >= 2 else (sf[0], sf[0])


def is_flipped(meta: dict) -> bool:
    """Whether a view is mirrored; only horizontal flips are merged."""
    if not meta.get('flip', False):
        return False
    direction = meta.get('flip_direction', 'horizontal')
    if direction != 'horizontal':
        raise NotImplementedError(f"test-time augmentation merges horizontal flips only, got "
                                  f"flip_direction={direction!r}")
    return True


def plan_views(aug_metas: Sequence[Sequence[dict]]) -> List[Tuple[int, Optional[int]]]:
    """Group the views into ``(anchor, flipped partner or None)``: each unflipped view with the
    flipped view of the same image sizes (``MultiScaleFlipAug(flip=True)`` gives one per
    scale); a flipped view without partner is its own anchor."""
    num_imgs = len(aug_metas[0])
    for a, metas in enumerate(aug_metas):
        if len(metas) != num_imgs:
            raise ValueError(f'test-time augmentation: view {a} has {len(metas)} img_metas, '
                             f'view 0 has {num_imgs}')
    flips = [[is_flipped(m) for m in metas] for metas in aug_metas]
    for a, f in enumerate(flips):
        if len(set(f)) > 1:
            raise ValueError(f'test-time augmentation: view {a} flips some images of the batch '
                             'and not others')
    shapes = [tuple(tuple(m['img_shape'][:2]) for m in metas) for metas in aug_metas]
    flipped = [a for a, f in enumerate(flips) if f[0]]
    groups = []
    for a, f in enumerate(flips):
        if f[0]:
            continue
        partner = next((p for p in flipped if shapes[p] == shapes[a]), None)
        if partner is not None:
            flipped.remove(partner)
        groups.append((a, partner))
    return groups + [(p, None) for p in flipped]


def mirror_columns(img_widths: Sequence[int], input_width: int, num_grids: Sequence[int],
                   device=None) -> List[torch.Tensor]:
    """Per level a (B, S) long tensor: the column of a flipped view's grid that covers the
    mirror image of column j of the unflipped view, per image (its width in ``img_widths``; the
    grid spans the padded ``input_width``): ``round(W * S / W_in - 1 - j)``, clamped."""
    widths = torch.tensor([float(w) for w in img_widths], dtype=torch.float64, device=device)
    cols = []
    for s in num_grids:
        j = torch.arange(s, dtype=torch.float64, device=device)
        mirrored = torch.round(widths[:, None] * s / input_width - 1 - j[None])
        cols.append(mirrored.clamp(0, s - 1).long())
    return cols


def mirror_cells(cols: Sequence[torch.Tensor], img_id: int) -> torch.Tensor:
    """(sum S², ) flat cell index of the mirror cell of every cell of image ``img_id``
    (rows unchanged, columns from :func:`mirror_columns`)."""
    flat, start = [], 0
    for col in cols:
        s = col.shape[1]
        rows = torch.arange(s, device=col.device)[:, None] * s
        flat.append((rows + col[img_id][None]).flatten() + start)
        start += s * s
    return torch.cat(flat)


def _axis_index(n_out: int, ratio: float, dst_len: float, dst_flip: bool, src_len: float,
                src_flip: bool, device) -> torch.Tensor:
    """Fractional source index (1/4 map) of each destination index of one axis: the pixel
    centre ``4u + 2`` of the destination input, unflipped, rescaled by ``ratio`` (source over
    destination resize factor), flipped into the source, back to 1/4-map units."""
    x = torch.arange(n_out, dtype=torch.float64, device=device) * 4 + 2
    if dst_flip:
        x = dst_len - x
    x = x * ratio
    if src_flip:
        x = src_len - x
    return x / 4 - 0.5


def _resample(masks: torch.Tensor, dim: int, index: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``masks`` along ``dim`` at fractional ``index`` (clamped to the
    map): an integer index copies the value exactly."""
    n_in = masks.shape[dim]
    index = index.clamp(0, n_in - 1)
    i0 = index.floor()
    frac = (index - i0).to(masks.dtype)
    i0 = i0.long()
    i1 = (i0 + 1).clamp(max=n_in - 1)
    shape = [1] * masks.dim()
    shape[dim] = -1
    frac = frac.view(shape)
    return masks.index_select(dim, i0) * (1 - frac) + masks.index_select(dim, i1) * frac


def warp_masks(masks: torch.Tensor, src_meta: dict, dst_meta: dict,
               dst_size: Tuple[int, int]) -> torch.Tensor:
    """(K, h, w) soft masks at 1/4 of the source view's input → (K, *dst_size) at 1/4 of the
    destination view's input (same original image), bilinear per axis; an axis that maps
    onto itself is left untouched."""
    (sx, sy), (dx, dy) = _scale_xy(src_meta), _scale_xy(dst_meta)
    sflip, dflip = is_flipped(src_meta), is_flipped(dst_meta)
    if (sy, masks.shape[1]) != (dy, dst_size[0]):
        masks = _resample(masks, 1, _axis_index(dst_size[0], sy / dy, 0, False, 0, False,
                                                masks.device))
    if (sx, sflip, masks.shape[2]) != (dx, dflip, dst_size[1]):
        masks = _resample(masks, 2, _axis_index(dst_size[1], sx / dx, dst_meta['img_shape'][1],
                                                dflip, src_meta['img_shape'][1], sflip,
                                                masks.device))
    return masks


def area_ratio(src_meta: dict, dst_meta: dict) -> float:
    """How many times larger an object's area is in the destination view than in the source."""
    (sx, sy), (dx, dy) = _scale_xy(src_meta), _scale_xy(dst_meta)
    return (dx * dy) / (sx * sy)
