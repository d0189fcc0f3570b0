"""Post-processing shared by the SOLO heads (the original ``get_seg_single``, minus mask building)."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ...ops import matrix_nms
from ...structures import EncodedInstanceResult, InstanceResult, encode_rles, masks_to_boxes

Result = Union[InstanceResult, EncodedInstanceResult]
# float pixels resized at once when pasting masks (128 MB of float32): bounds the memory of
# post-processing for any image size; a 640x480 image pastes ~100 masks in one call
PASTE_CHUNK_ELEMS = 2 ** 25
# float32 counts every integer below 2**24 exactly, so a float32 sum of up to that many 0/1
# values is the exact count whatever the order of the additions
EXACT_FLOAT_COUNT = 2 ** 24


def cfg_get(cfg, key: str, default=None):
    """``cfg[key]`` for a dict or ``cfg.key`` for an object, else ``default``."""
    if isinstance(cfg, Mapping):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


# the test_cfg keys post-processing reads, with their check and what is expected
TEST_CFG_KEYS = {
    'nms_pre': (lambda v: _is_int(v) and v >= 1, 'an int >= 1'),
    'score_thr': (lambda v: _is_num(v) and 0 <= v <= 1, 'a number in [0, 1]'),
    'mask_thr': (lambda v: _is_num(v) and 0 <= v < 1, 'a number in [0, 1)'),
    'update_thr': (lambda v: _is_num(v) and 0 <= v <= 1, 'a number in [0, 1]'),
    'kernel': (lambda v: v in ('gaussian', 'linear'), "'gaussian' or 'linear'"),
    'sigma': (lambda v: _is_num(v) and v > 0, 'a number > 0'),
    'max_per_img': (lambda v: _is_int(v) and v >= 1, 'an int >= 1'),
}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_test_cfg(cfg) -> None:
    """Refuse a ``test_cfg`` with a key post-processing does not read (a typo would be a
    silent no-op: the default would apply) or a value out of range, naming it."""
    import difflib

    from ...config import ConfigError
    if cfg is None:
        return
    if not isinstance(cfg, Mapping):
        raise ConfigError(f'test_cfg must be a dict, got {type(cfg).__name__}: {cfg!r}')
    for key, value in cfg.items():
        if key not in TEST_CFG_KEYS:
            close = difflib.get_close_matches(str(key), TEST_CFG_KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ''
            raise ConfigError(f"test_cfg.{key}: unknown key{hint}; the SOLO heads read "
                              f"{', '.join(TEST_CFG_KEYS)}")
        ok, expected = TEST_CFG_KEYS[key]
        if not ok(value):
            raise ConfigError(f'test_cfg.{key}={value!r}: expected {expected}')


def select_candidates(cate_scores: torch.Tensor, score_thr: float
                      ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(cell index, label, score) of every (cell, class) with score > ``score_thr``.

    ``cate_scores`` is (num_cells, C) after sigmoid and points-NMS; the order is row-major,
    as the original's ``nonzero``.
    """
    inds = (cate_scores > score_thr).nonzero()
    return inds[:, 0], inds[:, 1], cate_scores[inds[:, 0], inds[:, 1]]


def segm_postprocess(seg_preds: torch.Tensor, cate_labels: torch.Tensor, cate_scores: torch.Tensor,
                     strides: torch.Tensor, img_shape: Sequence[int], ori_shape: Sequence[int],
                     cfg, rescale: bool = True, mask_inds: Optional[torch.Tensor] = None,
                     encode: bool = False) -> Result:
    """From candidate soft masks to final instances, exactly as the original.

    Args:
        seg_preds: (U, h, w) soft masks (probabilities) at 1/4 of the padded input.
        cate_labels, cate_scores, strides: (K,) label, score and level stride of each candidate.
        img_shape: (H, W, ...) of the resized image inside the padded input.
        ori_shape: (H, W, ...) of the original image.
        cfg: test_cfg with ``mask_thr, nms_pre, kernel, sigma, update_thr, max_per_img``.
        rescale: resize masks to ``ori_shape`` (else return them at ``img_shape``).
        mask_inds: (K,) row of ``seg_preds`` of each candidate (default: row k). Candidates of
            the same cell share one mask, so a head passes each cell's mask once.
        encode: return an ``EncodedInstanceResult`` (RLE masks, see :func:`paste_masks`).
    """
    h, w = int(img_shape[0]), int(img_shape[1])
    out_h, out_w = (int(ori_shape[0]), int(ori_shape[1])) if rescale else (h, w)
    mask_thr = cfg_get(cfg, 'mask_thr', 0.5)
    if len(cate_scores) == 0:
        return _empty(out_h, out_w, encode)
    if mask_inds is None:
        mask_inds = torch.arange(len(cate_scores), device=seg_preds.device)

    # per mask: binary area and soft sum inside the binary mask
    bin_masks = seg_preds > mask_thr
    bin_float = bin_masks.float()
    if seg_preds[0].numel() < EXACT_FLOAT_COUNT:  # a float sum of 0/1 is exact: one pass less
        areas = bin_float.sum((1, 2))
    else:
        areas = bin_masks.flatten(1).sum(1, dtype=torch.int64).float()
    soft_sums = (seg_preds * bin_float).sum((1, 2))
    del bin_float
    # drop candidates whose mask is not larger than their level's stride
    keep = (areas[mask_inds] > strides).nonzero().flatten()
    if len(keep) == 0:
        return _empty(out_h, out_w, encode)
    mask_inds, cate_labels = mask_inds[keep], cate_labels[keep]
    # maskness: mean soft value over the binary mask
    cate_scores = cate_scores[keep] * (soft_sums[mask_inds] / areas[mask_inds])

    order = torch.argsort(cate_scores, descending=True)
    nms_pre = cfg_get(cfg, 'nms_pre', 500)
    if len(order) > nms_pre:
        order = order[:nms_pre]
    cate_scores, cate_labels, mask_inds = cate_scores[order], cate_labels[order], mask_inds[order]

    cate_scores = matrix_nms(bin_masks[mask_inds], cate_labels, cate_scores,
                             kernel=cfg_get(cfg, 'kernel', 'gaussian'),
                             sigma=cfg_get(cfg, 'sigma', 2.0), sum_masks=areas[mask_inds])
    keep = (cate_scores >= cfg_get(cfg, 'update_thr', 0.05)).nonzero().flatten()
    if len(keep) == 0:
        return _empty(out_h, out_w, encode)
    cate_scores = cate_scores[keep]
    order = torch.argsort(cate_scores, descending=True)
    max_per_img = cfg_get(cfg, 'max_per_img', 100)
    if len(order) > max_per_img:
        order = order[:max_per_img]
    sel = keep[order]
    cate_scores, cate_labels = cate_scores[order], cate_labels[sel]
    soft = seg_preds[mask_inds[sel]]

    return paste_masks(soft, (h, w), (out_h, out_w), mask_thr, cate_labels.cpu().numpy(),
                       cate_scores.cpu().numpy(), rescale=rescale, encode=encode)


def _chunk_size(num: int, elems_per_mask: int) -> int:
    return max(1, min(num, PASTE_CHUNK_ELEMS // max(elems_per_mask, 1)))


def paste_masks(soft: torch.Tensor, img_hw: Tuple[int, int], out_hw: Tuple[int, int],
                mask_thr: float, labels, scores, rescale: bool = True,
                encode: bool = False) -> Result:
    """Soft masks at 1/4 of the padded input → binary masks at ``out_hw``, as the original:
    bilinear ×4 to the padded input size, crop to the resized image ``img_hw``, bilinear to
    the original size ``out_hw`` (if ``rescale``, else masks stay at ``img_hw``), threshold at
    ``mask_thr``.

    Masks are pasted a few at a time (at most :data:`PASTE_CHUNK_ELEMS` float pixels in
    flight), so the float intermediates stay bounded whatever the image size: bilinear
    resizing treats every mask separately, so the result is the one of a single call. The
    bool masks are written into one preallocated array, or with ``encode=True`` turned into
    RLEs chunk by chunk (an ``EncodedInstanceResult``; no (N, H, W) array exists at all).
    """
    h, w = img_hw
    out_h, out_w = out_hw if rescale else img_hw
    pad_h, pad_w = soft.shape[-2] * 4, soft.shape[-1] * 4
    n = len(soft)
    step = _chunk_size(n, pad_h * pad_w + (out_h * out_w if rescale else 0))
    masks = None if encode else np.zeros((n, out_h, out_w), dtype=bool)
    rles, boxes = [], []
    for start in range(0, n, step):
        chunk = F.interpolate(soft[None, start:start + step], size=(pad_h, pad_w),
                              mode='bilinear')[:, :, :h, :w]
        if rescale and (out_h, out_w) != (h, w):  # a same-size bilinear resize is the identity
            chunk = F.interpolate(chunk, size=(out_h, out_w), mode='bilinear')
        binary = (chunk[0] > mask_thr).cpu()
        del chunk
        if encode:
            rles += encode_rles(binary)
            boxes.append(masks_to_boxes(binary))
        else:
            torch.from_numpy(masks)[start:start + len(binary)] = binary
    if encode:
        bboxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
        return EncodedInstanceResult(rles, labels, scores, bboxes, out_h, out_w)
    return InstanceResult(masks, labels, scores)


def _empty(height: int, width: int, encode: bool) -> Result:
    empty = InstanceResult.empty(height, width)
    return EncodedInstanceResult.from_result(empty) if encode else empty
