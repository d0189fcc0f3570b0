"""Matrix NMS (SOLOv2, Wang et al. 2020): parallel, class-aware soft suppression of masks.

:func:`matrix_nms_torch` is the PyTorch reference implementation; it follows the original release
exactly for well-formed input. :func:`matrix_nms` is the entry point: it runs the compiled
operator ``torch.ops.mmdet_solo.matrix_nms`` (``mmdet_solo/ops/csrc``, CPU and CUDA kernels)
when it is available, and the reference otherwise; both give the same result (bit-identical
decay factors on binary masks). ``MMDET_SOLO_MATRIX_NMS=torch|ext|auto`` (read at import) or
:func:`set_matrix_nms_backend` forces a choice; ``python -m mmdet_solo.ops`` reports what is
available. Two degenerate cases that make the original produce NaN are defined here:

* a mask of zero area has IoU 0 with every mask (the original divides 0 by 0);
* with ``kernel='linear'`` a mask that duplicates a higher-scored one of its class (its
  compensation IoU is 1) no longer suppresses anything (the original divides by zero).
"""
from __future__ import annotations

import os
import warnings
from typing import Optional

import torch

from . import _ext_loader


def _check_inputs(seg_masks: torch.Tensor, cate_labels: torch.Tensor, cate_scores: torch.Tensor,
                  kernel: str, sum_masks: Optional[torch.Tensor]) -> None:
    if kernel not in ('gaussian', 'linear'):
        raise ValueError(f"matrix_nms: kernel must be 'gaussian' or 'linear', got {kernel!r}")
    if seg_masks.dim() != 3:
        raise ValueError(f'matrix_nms: seg_masks must be (N, H, W), got shape {tuple(seg_masks.shape)}')
    n = seg_masks.shape[0]
    for name, t in (('cate_labels', cate_labels), ('cate_scores', cate_scores), ('sum_masks', sum_masks)):
        if t is None:
            continue
        if t.dim() != 1 or t.shape[0] != n:
            raise ValueError(f'matrix_nms: {name} must have shape ({n},) to match seg_masks, '
                             f'got {tuple(t.shape)}')
        if t.device != seg_masks.device:
            raise ValueError(f'matrix_nms: {name} is on {t.device} but seg_masks is on {seg_masks.device}')
    if cate_scores.is_floating_point() is False:
        raise TypeError(f'matrix_nms: cate_scores must be floating point, got {cate_scores.dtype}')


def matrix_nms_torch(seg_masks: torch.Tensor, cate_labels: torch.Tensor,
                     cate_scores: torch.Tensor, kernel: str = 'gaussian', sigma: float = 2.0,
                     sum_masks: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The PyTorch reference of :func:`matrix_nms` (same arguments, same result).

    Decay the scores of masks that overlap higher-scored masks of the same class.

    Args:
        seg_masks: (N, H, W) binary masks (bool, uint8 or float 0/1), sorted by descending score.
        cate_labels: (N,) class of each mask.
        cate_scores: (N,) scores, descending.
        kernel: ``'gaussian'`` (decay ``exp(-sigma * iou**2)``) or ``'linear'`` (``1 - iou``).
        sigma: the gaussian kernel's coefficient (it multiplies, as in the original).
        sum_masks: (N,) mask areas, computed when not given.

    Returns:
        (N,) decayed scores, same order and dtype as ``cate_scores``.
    """
    _check_inputs(seg_masks, cate_labels, cate_scores, kernel, sum_masks)
    n = seg_masks.shape[0]
    if n == 0:
        return cate_scores.new_zeros((0,))
    flat = seg_masks.reshape(n, -1).float()
    if sum_masks is None:
        sum_masks = flat.sum(1)
    sum_masks = sum_masks.float()
    inter = flat @ flat.t()                                     # (N, N)
    union = sum_masks[:, None] + sum_masks[None, :] - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))
    same_class = cate_labels[:, None] == cate_labels[None, :]
    # decay_iou[i, j]: IoU of a lower-scored mask j with a higher-scored mask i (i < j) of its class
    decay_iou = (iou * same_class).triu(diagonal=1)
    # compensation of i: its own largest IoU with any higher-scored mask of its class
    compensate_iou = decay_iou.max(0).values[:, None]            # (N, 1), indexed by row i
    if kernel == 'gaussian':
        ratio = torch.exp(-sigma * decay_iou ** 2) / torch.exp(-sigma * compensate_iou ** 2)
    else:
        ratio = (1 - decay_iou) / (1 - compensate_iou)
        ratio = torch.nan_to_num(ratio, nan=float('inf'))
    decay = ratio.min(0).values
    return cate_scores * decay.to(cate_scores.dtype)


# ------------------------------------------------------------------------------------------------
# Dispatch between the compiled operator and the reference.

BACKENDS = ('auto', 'torch', 'ext')
ENV_VAR = 'MMDET_SOLO_MATRIX_NMS'
_EXT_MASK_DTYPES = (torch.bool, torch.uint8, torch.float16, torch.bfloat16, torch.float32,
                    torch.float64)


def _normalise_backend(name: str, source: str) -> str:
    value = (name or 'auto').strip().lower()
    if value not in BACKENDS:
        raise ValueError(f'{source} must be one of {BACKENDS}, got {name!r}')
    return value


_backend = [os.environ.get(ENV_VAR, 'auto')]    # validated on first use, so a typo fails loudly
_warned = [False]
_ext_loaded = _ext_loader.load()                 # loading never raises; see _ext_loader.load_error


def set_matrix_nms_backend(name: str) -> None:
    """``'auto'`` (extension when it can run the input, else the reference), ``'torch'`` or
    ``'ext'`` (the extension or an error); overrides ``MMDET_SOLO_MATRIX_NMS``."""
    _backend[0] = _normalise_backend(name, 'set_matrix_nms_backend(name)')


def get_matrix_nms_backend() -> str:
    return _normalise_backend(_backend[0], ENV_VAR)


def _ext_unsupported(seg_masks: torch.Tensor, cate_labels: torch.Tensor,
                     sum_masks: Optional[torch.Tensor]) -> Optional[str]:
    """Why the compiled operator cannot run this input (None when it can)."""
    if not _ext_loaded:
        return f'the extension {_ext_loader.EXT_MODULE} is not available ({_ext_loader.load_error()})'
    if not _ext_loader.has_kernel(seg_masks.device.type):
        return (f'the extension has no kernel for {seg_masks.device.type} tensors '
                f'(built without it)')
    if seg_masks.dtype not in _EXT_MASK_DTYPES:
        return f'the extension takes bool, uint8 or floating point masks, got {seg_masks.dtype}'
    if cate_labels.is_floating_point() or cate_labels.is_complex():
        return f'the extension takes integer labels, got {cate_labels.dtype}'
    if torch.is_grad_enabled() and (seg_masks.requires_grad or
                                    (sum_masks is not None and sum_masks.requires_grad)):
        return 'the extension does not differentiate through seg_masks or sum_masks'
    return None


def _use_ext(seg_masks, cate_labels, sum_masks) -> bool:
    backend = get_matrix_nms_backend()
    if backend == 'torch':
        return False
    reason = _ext_unsupported(seg_masks, cate_labels, sum_masks)
    if reason is None:
        return True
    if backend == 'ext':
        raise RuntimeError(f'matrix_nms: {ENV_VAR}=ext was requested but {reason}')
    if (not _ext_loaded or 'no kernel' in reason) and not _warned[0]:
        _warned[0] = True
        warnings.warn(f'mmdet_solo.ops.matrix_nms: {reason}; using the PyTorch reference '
                      f'(same results, slower). Rebuild with `pip install --no-build-isolation '
                      f'-e .`, or set {ENV_VAR}=torch to silence this warning.', stacklevel=3)
    return False


def matrix_nms(seg_masks: torch.Tensor, cate_labels: torch.Tensor, cate_scores: torch.Tensor,
               kernel: str = 'gaussian', sigma: float = 2.0,
               sum_masks: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Decay the scores of masks that overlap higher-scored masks of the same class.

    Runs the compiled operator when available (see the module docstring), else
    :func:`matrix_nms_torch`; the two agree exactly on binary masks.

    Args:
        seg_masks: (N, H, W) binary masks (bool, uint8 or float 0/1), sorted by descending score.
            The compiled operator raises ``ValueError`` on a value other than 0 and 1.
        cate_labels: (N,) class of each mask (integer).
        cate_scores: (N,) scores, descending.
        kernel: ``'gaussian'`` (decay ``exp(-sigma * iou**2)``) or ``'linear'`` (``1 - iou``).
        sigma: the gaussian kernel's coefficient (it multiplies, as in the original).
        sum_masks: (N,) mask areas, computed when not given; when given they are used as they
            are (as float32) in the unions ``sum_i + sum_j - inter``.

    Returns:
        (N,) decayed scores, same order and dtype as ``cate_scores``. A mask of zero area has
        IoU 0 with every mask (it neither decays nor is decayed); with ``kernel='linear'`` an
        exact duplicate of a higher-scored mask of its class gets score 0 and suppresses nothing.
    """
    _check_inputs(seg_masks, cate_labels, cate_scores, kernel, sum_masks)
    if not _use_ext(seg_masks, cate_labels, sum_masks):
        return matrix_nms_torch(seg_masks, cate_labels, cate_scores, kernel, sigma, sum_masks)
    op = torch.ops.mmdet_solo.matrix_nms
    if torch.is_grad_enabled() and cate_scores.requires_grad:
        # the operator has no autograd formula: take the decay (scores of 1) and multiply here,
        # exactly as the reference does, so that gradients reach cate_scores.
        ones = torch.ones(cate_scores.shape, dtype=torch.float32, device=cate_scores.device)
        decay = op(seg_masks, cate_labels, ones, kernel, float(sigma), sum_masks)
        return cate_scores * decay.to(cate_scores.dtype)
    return op(seg_masks, cate_labels, cate_scores, kernel, float(sigma), sum_masks)
