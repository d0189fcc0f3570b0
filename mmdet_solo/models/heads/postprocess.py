"""Post-processing shared by the SOLO heads (the original ``get_seg_single``, minus mask building)."""
from __future__ import annotations

from typing import Iterator, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ...ops import matrix_nms
from ...ops.mask_kernels import (compiled_paste, compiled_paste_available, compiled_scan,
                                 compiled_scan_available, torch_resize)
from ...structures import EncodedInstanceResult, InstanceResult, encode_rles, masks_to_boxes

Result = Union[InstanceResult, EncodedInstanceResult]
# float pixels resized at once when pasting masks with F.interpolate (128 MB of float32),
# and bool pixels encoded at once: bounds the memory of post-processing for any image size
PASTE_CHUNK_ELEMS = 2 ** 25
# float values of candidate masks made and reduced at once by the scoring pass (4 MB: the
# block stays in cache between the product, the sigmoid and the scan; the (U, h, w) float
# masks never exist, see KernelSoftMasks), in blocks of at least this many pixels (narrower
# blocks make the kernels @ features product slow)
SCAN_CHUNK_ELEMS = 2 ** 20
SCAN_MIN_COLUMNS = 1024
# fewest rows of a kernels @ features product (BLAS uses other kernels, rounding differently,
# below ~16 rows on x86; see KernelSoftMasks)
MIN_GEMM_ROWS = 16


def cfg_get(cfg, key: str, default=None):
    """``cfg[key]`` for a dict or ``cfg.key`` for an object, else ``default``."""
    if isinstance(cfg, Mapping):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


# the test_cfg keys post-processing reads (the PyTorch path and the exported graph): the
# original's default, the check, what is expected
TEST_CFG_KEYS = {
    'nms_pre': (500, lambda v: _is_int(v) and v >= 1, 'an int >= 1'),
    'score_thr': (0.1, lambda v: _is_num(v) and 0 <= v <= 1, 'a number in [0, 1]'),
    'mask_thr': (0.5, lambda v: _is_num(v) and 0 <= v < 1, 'a number in [0, 1)'),
    'update_thr': (0.05, lambda v: _is_num(v) and 0 <= v <= 1, 'a number in [0, 1]'),
    'kernel': ('gaussian', lambda v: v in ('gaussian', 'linear'), "'gaussian' or 'linear'"),
    'sigma': (2.0, lambda v: _is_num(v) and v > 0, 'a number > 0'),
    'max_per_img': (100, lambda v: _is_int(v) and v >= 1, 'an int >= 1'),
}


def read_test_cfg(cfg, key: str):
    """``test_cfg[key]``, or the original's default when the config does not set it."""
    return cfg_get(cfg, key, TEST_CFG_KEYS[key][0])


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
        _, ok, expected = TEST_CFG_KEYS[key]
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


class SoftMasks:
    """The soft masks (probabilities) of ``num`` candidate cells at 1/4 of the padded input,
    as post-processing reads them: all masks a block of pixels at a time (:meth:`columns`,
    the scoring pass) and the few kept whole (:meth:`take`). This base class holds them in
    one (U, h, w) tensor; :class:`KernelSoftMasks` makes them on demand."""

    def __init__(self, masks: torch.Tensor) -> None:
        self.masks = masks.contiguous()
        self.num, self.size = len(masks), tuple(masks.shape[-2:])
        self.device = masks.device

    def columns(self, start: int, stop: int) -> torch.Tensor:
        """(U, stop - start) soft values of the flat pixels ``start:stop`` of every mask (rows
        contiguous); valid until the next call."""
        return self.masks.reshape(self.num, -1)[:, start:stop]

    def take(self, index: torch.Tensor) -> torch.Tensor:
        """(n, h, w) soft masks of the rows ``index`` (a new tensor)."""
        return self.masks[index]


class KernelSoftMasks(SoftMasks):
    """SOLOv2's candidate masks, ``sigmoid(kernels @ feats)``, made a block of pixels at a
    time into one reused buffer, so that the (U, h, w) float masks never exist at once (at
    COCO sizes they are hundreds of MB, and allocating them costs more than computing them).
    A block of columns of the product has the bits of the whole product (x86 BLAS, blocks of
    :data:`SCAN_MIN_COLUMNS` or more; tested).

    Every product has at least :data:`MIN_GEMM_ROWS` rows (fewer are padded with the first
    one): BLAS libraries switch to other kernels for a few rows, which round differently, and
    a mask must not depend on how many others are made with it.
    """

    def __init__(self, kernels: torch.Tensor, feats: torch.Tensor) -> None:
        self.num, self.size = len(kernels), tuple(feats.shape[-2:])
        self.device = kernels.device
        self.feats = feats.flatten(1)               # (E, h * w)
        self.kernels = _pad_rows(kernels)           # (max(U, MIN_GEMM_ROWS), E)
        self._buffer = None

    def columns(self, start: int, stop: int) -> torch.Tensor:
        rows, n = len(self.kernels), stop - start
        if self._buffer is None or self._buffer.numel() < rows * n:
            self._buffer = self.feats.new_empty(rows * n)
        out = self._buffer[:rows * n].view(rows, n)
        return torch.mm(self.kernels, self.feats[:, start:stop], out=out)[:self.num].sigmoid_()

    def take(self, index: torch.Tensor) -> torch.Tensor:
        masks = (self.kernels[_pad_rows(index)] @ self.feats)[:len(index)]
        return masks.sigmoid_().view(len(index), *self.size)


def _pad_rows(x: torch.Tensor) -> torch.Tensor:
    """``x`` with its first row repeated up to :data:`MIN_GEMM_ROWS` rows."""
    if len(x) >= MIN_GEMM_ROWS or len(x) == 0:
        return x
    return torch.cat([x, x[:1].expand(MIN_GEMM_ROWS - len(x), *x.shape[1:])])


def _scan_masks(masks: SoftMasks, mask_thr: float
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass over the candidates' soft masks, a block of pixels at a time (at most
    :data:`SCAN_CHUNK_ELEMS` floats in flight, made and reduced while in cache): the binary
    masks (U, h, w) bool, their areas and the sums of the soft values inside them (float32).

    The sums are accumulated in float64 (the compiled scan: in fixed point), which for
    ``mask_thr >= 1/32`` is exact (every value above the threshold is a multiple of 2**-28, a
    mask has fewer than 2**24 pixels), so they are the exact sums rounded once, whatever the
    block size or the order of the additions.
    """
    h, w = masks.size
    num, pixels = masks.num, h * w
    bin_masks = torch.empty((num, pixels), dtype=torch.bool, device=masks.device)
    areas = torch.zeros(num, dtype=torch.int64, device=masks.device)
    soft_sums = torch.zeros(num, dtype=torch.float64, device=masks.device)
    step = max(SCAN_MIN_COLUMNS, SCAN_CHUNK_ELEMS // max(num, 1))
    fused = compiled_scan_available(masks.device)
    for start in range(0, pixels, step):
        stop = min(start + step, pixels)
        soft = masks.columns(start, stop)
        if fused:
            compiled_scan(soft, mask_thr, bin_masks[:, start:stop], areas, soft_sums)
        else:
            binary = torch.gt(soft, mask_thr, out=bin_masks[:, start:stop])
            areas += binary.sum(1)
            soft_sums += torch.where(binary, soft, 0).sum(1, dtype=torch.float64)
    return bin_masks.view(num, h, w), areas.float(), soft_sums.float()


def segm_postprocess(seg_preds: Union[torch.Tensor, SoftMasks], cate_labels: torch.Tensor,
                     cate_scores: torch.Tensor, strides: torch.Tensor, img_shape: Sequence[int],
                     ori_shape: Sequence[int], cfg, rescale: bool = True,
                     mask_inds: Optional[torch.Tensor] = None, encode: bool = False) -> Result:
    """From candidate soft masks to final instances, exactly as the original.

    Args:
        seg_preds: (U, h, w) soft masks (probabilities) at 1/4 of the padded input, or a
            :class:`SoftMasks` that makes them on demand.
        cate_labels, cate_scores, strides: (K,) label, score and level stride of each candidate.
        img_shape: (H, W, ...) of the resized image inside the padded input.
        ori_shape: (H, W, ...) of the original image.
        cfg: test_cfg with ``mask_thr, nms_pre, kernel, sigma, update_thr, max_per_img``.
        rescale: resize masks to ``ori_shape`` (else return them at ``img_shape``).
        mask_inds: (K,) row of ``seg_preds`` of each candidate (default: row k). Candidates of
            the same cell share one mask, so a head passes each cell's mask once.
        encode: return an ``EncodedInstanceResult`` (RLE masks, see :func:`paste_masks`).
    """
    masks = seg_preds if isinstance(seg_preds, SoftMasks) else SoftMasks(seg_preds)
    h, w = int(img_shape[0]), int(img_shape[1])
    out_h, out_w = (int(ori_shape[0]), int(ori_shape[1])) if rescale else (h, w)
    mask_thr = read_test_cfg(cfg, 'mask_thr')
    if len(cate_scores) == 0:
        return _empty(out_h, out_w, encode)
    if mask_inds is None:
        mask_inds = torch.arange(len(cate_scores), device=masks.device)

    # per mask: binary mask, its area and the soft sum inside it
    bin_masks, areas, soft_sums = _scan_masks(masks, mask_thr)
    # drop candidates whose mask is not larger than their level's stride
    keep = (areas[mask_inds] > strides).nonzero().flatten()
    if len(keep) == 0:
        return _empty(out_h, out_w, encode)
    mask_inds, cate_labels = mask_inds[keep], cate_labels[keep]
    # maskness: mean soft value over the binary mask
    cate_scores = cate_scores[keep] * (soft_sums[mask_inds] / areas[mask_inds])

    order = torch.argsort(cate_scores, descending=True)
    nms_pre = read_test_cfg(cfg, 'nms_pre')
    if len(order) > nms_pre:
        order = order[:nms_pre]
    cate_scores, cate_labels, mask_inds = cate_scores[order], cate_labels[order], mask_inds[order]

    cate_scores = matrix_nms(bin_masks[mask_inds], cate_labels, cate_scores,
                             kernel=read_test_cfg(cfg, 'kernel'),
                             sigma=read_test_cfg(cfg, 'sigma'), sum_masks=areas[mask_inds])
    del bin_masks
    keep = (cate_scores >= read_test_cfg(cfg, 'update_thr')).nonzero().flatten()
    if len(keep) == 0:
        return _empty(out_h, out_w, encode)
    cate_scores = cate_scores[keep]
    order = torch.argsort(cate_scores, descending=True)
    max_per_img = read_test_cfg(cfg, 'max_per_img')
    if len(order) > max_per_img:
        order = order[:max_per_img]
    sel = keep[order]
    cate_scores, cate_labels = cate_scores[order], cate_labels[sel]
    soft = masks.take(mask_inds[sel])

    return paste_masks(soft, (h, w), (out_h, out_w), mask_thr, cate_labels.cpu().numpy(),
                       cate_scores.cpu().numpy(), rescale=rescale, encode=encode)


def _chunk_size(num: int, elems_per_mask: int) -> int:
    return max(1, min(num, PASTE_CHUNK_ELEMS // max(elems_per_mask, 1)))


def _binary_chunks(soft: torch.Tensor, img_hw: Tuple[int, int], out_hw: Tuple[int, int],
                   mask_thr: float, masks_per_chunk: int) -> Iterator[torch.Tensor]:
    """The pasted binary masks, ``masks_per_chunk`` at a time (CPU bool tensors): from the
    compiled kernel where it reproduces PyTorch (``mmdet_solo.ops.mask_kernels``), else with
    ``F.interpolate`` (:func:`mmdet_solo.ops.mask_kernels.torch_resize`), at most
    :data:`PASTE_CHUNK_ELEMS` float pixels in flight."""
    step = masks_per_chunk
    if compiled_paste_available(soft, out_hw):
        for start in range(0, len(soft), step):
            yield compiled_paste(soft[start:start + step], img_hw, out_hw, mask_thr)
        return
    pad_h, pad_w = soft.shape[-2] * 4, soft.shape[-1] * 4
    elems = pad_h * pad_w + (out_hw[0] * out_hw[1] if tuple(out_hw) != tuple(img_hw) else 0)
    step = min(step, _chunk_size(len(soft), elems))
    for start in range(0, len(soft), step):
        yield (torch_resize(soft[start:start + step], img_hw, out_hw) > mask_thr).cpu()


def paste_masks(soft: torch.Tensor, img_hw: Tuple[int, int], out_hw: Tuple[int, int],
                mask_thr: float, labels, scores, rescale: bool = True,
                encode: bool = False) -> Result:
    """Soft masks at 1/4 of the padded input → binary masks at ``out_hw``, as the original:
    bilinear ×4 to the padded input size, crop to the resized image ``img_hw``, bilinear to
    the original size ``out_hw`` (if ``rescale``, else masks stay at ``img_hw``), threshold at
    ``mask_thr``.

    On a CPU a compiled kernel makes these bits without the float images, only where a mask
    can pass the threshold (``mmdet_solo.ops.mask_kernels``; it checks itself against
    ``F.interpolate`` once per process). The bool masks are returned as one array, or with
    ``encode=True`` turned into RLEs a chunk at a time (an ``EncodedInstanceResult``; no
    (N, H, W) array exists at all).
    """
    out_hw = tuple(out_hw) if rescale else tuple(img_hw)
    n = len(soft)
    step = _chunk_size(n, out_hw[0] * out_hw[1]) if encode else max(n, 1)
    chunks = _binary_chunks(soft, tuple(img_hw), out_hw, mask_thr, step)
    if not encode:
        parts = list(chunks)
        masks = (parts[0] if len(parts) == 1 else torch.cat(parts)).numpy() if parts \
            else np.zeros((0,) + out_hw, dtype=bool)
        return InstanceResult(masks, labels, scores)
    rles, boxes = [], []
    for binary in chunks:
        rles += encode_rles(binary)
        boxes.append(masks_to_boxes(binary))
    bboxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
    return EncodedInstanceResult(rles, labels, scores, bboxes, out_hw[0], out_hw[1])


def _empty(height: int, width: int, encode: bool) -> Result:
    empty = InstanceResult.empty(height, width)
    return EncodedInstanceResult.from_result(empty) if encode else empty
