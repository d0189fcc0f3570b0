"""Compiled post-processing kernels for masks on the CPU, and when they are used.

* ``mask_scan`` (``ops/csrc/mask_scan.cpp``): binary masks, areas and soft sums of a block of
  candidate masks in one pass (:func:`compiled_scan`); exact, so it needs no check.
* ``paste_masks`` (``ops/csrc/paste_masks.cpp``): soft masks to binary masks at the image
  size (:func:`compiled_paste`), checked against ``F.interpolate`` as below.

``paste_masks_torch`` in ``models/heads/postprocess.py`` resizes soft masks with two
``F.interpolate`` calls and thresholds them: two float images per mask. The compiled kernel
makes the same bits directly as bool, and only inside the window where a mask can pass the
threshold. It reproduces ATen's bilinear arithmetic, which depends on how PyTorch was compiled
(whether the source index and the blends are fused multiply-adds), so :func:`paste_variant`
finds, once per process, the variant of the kernel that gives ``F.interpolate``'s float values
bit for bit on a few resizes (and the same bools where a mask is concentrated, for the
windows). If none does, or the extension is missing, :func:`compiled_paste_available` says
no and the caller keeps the PyTorch path. ``MMDET_SOLO_MASK_KERNELS=torch`` (read at import) or
:func:`set_mask_kernels` ``('torch')`` turns both kernels off (PyTorch ops give the same
results).
"""
from __future__ import annotations

import logging
import os
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from . import _ext_loader

PASTE_OP = 'paste_masks'
NUM_VARIANTS = 6
# ATen resizes an image whose output height + width is at most this with its channels-last
# kernel (other rounding; ``_use_vectorized_kernel_cond_2d``): such masks keep F.interpolate
SMALL_OUTPUT = 128
ENV_VAR = 'MMDET_SOLO_MASK_KERNELS'
_backend = [os.environ.get(ENV_VAR, 'auto').strip().lower() or 'auto']
_variant: list = []   # [] not checked yet; [None] no variant matches; [v] the variant to use
logger = logging.getLogger(__name__)


def set_mask_kernels(name: str) -> None:
    """``'auto'`` (the compiled kernels where they can run) or ``'torch'`` (PyTorch ops)."""
    if name not in ('auto', 'torch'):
        raise ValueError(f"set_mask_kernels: name must be 'auto' or 'torch', got {name!r}")
    _backend[0] = name


def _use_compiled() -> bool:
    if _backend[0] not in ('auto', 'torch'):
        raise ValueError(f"{ENV_VAR}={_backend[0]!r}: expected 'auto' or 'torch'")
    return _backend[0] == 'auto' and _ext_loader.load()


def compiled_scan_available(device: torch.device) -> bool:
    """Whether :func:`compiled_scan` runs on ``device`` (the CPU, with the extension)."""
    return (torch.device(device).type == 'cpu' and _use_compiled()
            and hasattr(torch.ops.mmdet_solo, 'mask_scan'))


def compiled_scan(soft: torch.Tensor, mask_thr: float, binary: torch.Tensor,
                  areas: torch.Tensor, sums: torch.Tensor) -> None:
    """``binary[:] = soft > mask_thr``; ``areas += binary.sum(1)``; ``sums += (soft *
    binary).sum(1)`` in float64: (U, n) float32 soft values, (U, n) bool, (U,) int64 and
    float64 accumulators, in one pass."""
    torch.ops.mmdet_solo.mask_scan(soft, float(mask_thr), binary, areas, sums)


def torch_resize(soft: torch.Tensor, img_hw: Tuple[int, int],
                 out_hw: Tuple[int, int]) -> torch.Tensor:
    """The float masks of the PyTorch path: bilinear x4, crop to ``img_hw``, bilinear to
    ``out_hw`` (skipped when it equals ``img_hw``)."""
    h, w = img_hw
    up = F.interpolate(soft[None], size=(soft.shape[-2] * 4, soft.shape[-1] * 4),
                       mode='bilinear')[:, :, :h, :w]
    if tuple(out_hw) != (h, w):
        up = F.interpolate(up, size=tuple(out_hw), mode='bilinear')
    return up[0]


def _op():
    return getattr(torch.ops.mmdet_solo, PASTE_OP)


def _self_check_cases():
    """(soft, img_hw, out_hw) resizes that cover what the kernel computes: up- and
    down-scaling, crops, one axis unchanged, no second resize; random masks (every pixel
    compared as a float) and concentrated blobs (the windows, compared as bools). Every
    output is larger than :data:`SMALL_OUTPUT`."""
    gen = torch.Generator().manual_seed(0)
    shapes = [((2, 20, 30), (77, 118), (100, 151)), ((2, 28, 42), (112, 161), (75, 107)),
              ((2, 24, 40), (90, 160), (90, 213)), ((2, 17, 23), (66, 90), (66, 90)),
              ((1, 112, 168), (448, 597), (600, 800))]
    for shape, img_hw, out_hw in shapes:
        yield torch.rand(shape, generator=gen), img_hw, out_hw
        blob = torch.zeros(shape)
        n, h, w = shape
        for i in range(n):
            y, x = int(torch.randint(0, h, (1,), generator=gen)), int(
                torch.randint(0, w, (1,), generator=gen))
            blob[i, max(0, y - 2):y + 2, max(0, x - 3):x + 2] = torch.rand(
                blob[i, max(0, y - 2):y + 2, max(0, x - 3):x + 2].shape, generator=gen) + 0.3
        yield blob.clamp(max=1.0), img_hw, out_hw


def _self_check_references():
    """Each self-check case with F.interpolate's float values (computed once for all
    variants)."""
    return [(soft, img_hw, out_hw, torch_resize(soft, img_hw, out_hw).contiguous())
            for soft, img_hw, out_hw in _self_check_cases()]


def _matches(variant: int, references) -> bool:
    op = _op()
    for soft, img_hw, out_hw, ref in references:
        values = op(soft, *img_hw, *out_hw, 0.5, variant, True)
        if not torch.equal(values.view(torch.int32), ref.view(torch.int32)):
            return False
        if not torch.equal(op(soft, *img_hw, *out_hw, 0.5, variant, False), ref > 0.5):
            return False
    return True


def paste_variant() -> Optional[int]:
    """The kernel variant that reproduces ``F.interpolate`` on this machine (checked once per
    process), or None (no extension, or no variant matches)."""
    if not _variant:
        found = None
        if _ext_loader.load() and hasattr(torch.ops.mmdet_solo, PASTE_OP):
            with torch.no_grad():
                fma = bool(torch.ops.mmdet_solo.paste_masks_has_fma())
                references = _self_check_references()
                for variant in range(NUM_VARIANTS):
                    if (variant >> 1) and not fma:
                        continue
                    if _matches(variant, references):
                        found = variant
                        break
            if found is None:
                logger.info('the compiled mask paste does not reproduce F.interpolate with this '
                            'PyTorch build; masks are pasted with F.interpolate')
        _variant.append(found)
    return _variant[0]


def compiled_paste_available(soft: torch.Tensor, out_hw: Tuple[int, int]) -> bool:
    """Whether :func:`compiled_paste` takes ``soft``: float32 CPU masks (N, h, w) without
    grad, both resizes larger than :data:`SMALL_OUTPUT` (ATen resizes smaller images with
    another kernel), the backend ``'auto'``, and a kernel variant that reproduces PyTorch."""
    return (_use_compiled() and soft.device.type == 'cpu' and soft.dtype == torch.float32
            and soft.dim() == 3 and not (torch.is_grad_enabled() and soft.requires_grad)
            and 4 * (soft.shape[-2] + soft.shape[-1]) > SMALL_OUTPUT
            and out_hw[0] + out_hw[1] > SMALL_OUTPUT and paste_variant() is not None)


def compiled_paste(soft: torch.Tensor, img_hw: Tuple[int, int], out_hw: Tuple[int, int],
                   mask_thr: float) -> torch.Tensor:
    """(N, out_h, out_w) bool masks, ``torch_resize(soft, img_hw, out_hw) > mask_thr`` bit for
    bit, from the compiled kernel (only where :func:`compiled_paste_available`)."""
    return _op()(soft, int(img_hw[0]), int(img_hw[1]), int(out_hw[0]), int(out_hw[1]),
                 float(mask_thr), paste_variant(), False)
