"""Image helpers of mmcv 0.2.16, re-implemented as small functions (``imrescale``,
``imresize``, ``imflip``, ``impad``, ``impad_to_multiple``, ``imnormalize``) with the same
arithmetic, bit for bit. Resizing has a ``backend``, as in mmcv: ``'cv2'`` (default, the
original's arithmetic) or ``'pillow'`` (``PIL.Image.resize``, as detectron2/AdelaiDet).

Used by the data pipeline (``datasets.pipelines.transforms``) and the heads' target assignment.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple, Union

import cv2
import numpy as np
from PIL import Image

Scale = Tuple[int, int]

INTERPOLATIONS = {
    'nearest': cv2.INTER_NEAREST,
    'bilinear': cv2.INTER_LINEAR,
    'bicubic': cv2.INTER_CUBIC,
    'area': cv2.INTER_AREA,
    'lanczos': cv2.INTER_LANCZOS4,
}
# mmcv's names for PIL's filters (PIL has no 'area'; cv2 no 'box' or 'hamming')
PILLOW_INTERPOLATIONS = {
    'nearest': Image.Resampling.NEAREST,
    'bilinear': Image.Resampling.BILINEAR,
    'bicubic': Image.Resampling.BICUBIC,
    'box': Image.Resampling.BOX,
    'lanczos': Image.Resampling.LANCZOS,
    'hamming': Image.Resampling.HAMMING,
}
RESIZE_BACKENDS = ('cv2', 'pillow')


def _interp(name: str, backend: str = 'cv2') -> int:
    table = PILLOW_INTERPOLATIONS if backend == 'pillow' else INTERPOLATIONS
    if name not in table:
        raise ValueError(f'interpolation must be one of {sorted(table)} with backend {backend!r}, '
                         f'got {name!r}')
    return table[name]


def check_resize_backend(backend: str, where: str = 'imresize') -> str:
    """``backend`` if it is 'cv2' or 'pillow', else a ValueError naming it."""
    if backend not in RESIZE_BACKENDS:
        raise ValueError(f'{where}: backend must be one of {RESIZE_BACKENDS}, got {backend!r}')
    return backend


def rescale_factor(hw: Tuple[int, int], scale: Union[float, int, Scale]) -> float:
    """The keep-ratio factor of mmcv: a number as is, or ``min(long/long_side, short/short_side)``."""
    h, w = hw
    if isinstance(scale, (float, int)) and not isinstance(scale, bool):
        if scale <= 0:
            raise ValueError(f'rescale factor must be positive, got {scale}')
        return scale
    if isinstance(scale, tuple) and len(scale) == 2:
        long_edge, short_edge = max(scale), min(scale)
        return min(long_edge / max(h, w), short_edge / min(h, w))
    raise TypeError(f'scale must be a positive number or a (long, short) tuple, got {scale!r}')


def scaled_size(w: int, h: int, factor: float) -> Tuple[int, int]:
    """``(int(w * s + 0.5), int(h * s + 0.5))``: the (width, height) rule of mmcv, at least 1
    pixel each (mmcv gave 0 for a side of extreme images, e.g. 3000x2, and OpenCV failed)."""
    return max(1, int(w * float(factor) + 0.5)), max(1, int(h * float(factor) + 0.5))


def _pil_resize(img: np.ndarray, size: Tuple[int, int], resample: int) -> np.ndarray:
    """``PIL.Image.resize`` of an (H, W[, C]) uint8 or float32 array.

    uint8 (H, W) and (H, W, 3 or 4) arrays go through PIL as one image (modes 'L'/'RGB'/'RGBA';
    BGR order makes no difference to resizing), other uint8 arrays band by band in mode 'L';
    float32 band by band in mode 'F' (PIL has no multi-channel float mode).
    """
    if img.dtype not in (np.uint8, np.float32):
        raise TypeError(f"imresize: backend 'pillow' resizes uint8 or float32 images, "
                        f'got dtype {img.dtype}')
    if img.ndim not in (2, 3):
        raise ValueError(f'imresize: expected an (H, W) or (H, W, C) image, got shape {img.shape}')
    if img.ndim == 3 and img.dtype == np.uint8 and img.shape[2] in (3, 4):
        return np.array(Image.fromarray(np.ascontiguousarray(img)).resize(size, resample))
    bands = [img] if img.ndim == 2 else [img[..., c] for c in range(img.shape[2])]
    out = [np.array(Image.fromarray(np.ascontiguousarray(b)).resize(size, resample))
           for b in bands]
    return out[0] if img.ndim == 2 else np.stack(out, axis=-1)


def imresize(img: np.ndarray, size: Tuple[int, int], interpolation: str = 'bilinear',
             backend: str = 'cv2') -> np.ndarray:
    """Resize to ``size`` = (width, height) with ``cv2.resize`` or, with ``backend='pillow'``,
    ``PIL.Image.resize`` (uint8 or float32 input)."""
    check_resize_backend(backend)
    size = (int(size[0]), int(size[1]))
    if backend == 'pillow':
        return _pil_resize(img, size, _interp(interpolation, backend))
    return cv2.resize(img, size, interpolation=_interp(interpolation))


def imrescale(img: np.ndarray, scale: Union[float, int, Scale], interpolation: str = 'bilinear',
              return_scale: bool = False, backend: str = 'cv2'):
    """Resize keeping the aspect ratio (mmcv 0.2.16 ``imrescale``); optionally return the factor."""
    h, w = img.shape[:2]
    factor = rescale_factor((h, w), scale)
    out = imresize(img, scaled_size(w, h, factor), interpolation, backend)
    return (out, factor) if return_scale else out


def imflip(img: np.ndarray, direction: str = 'horizontal') -> np.ndarray:
    """Flip an (H, W[, C]) array left-right (``horizontal``) or up-down (``vertical``)."""
    if direction == 'horizontal':
        return np.ascontiguousarray(img[:, ::-1])
    if direction == 'vertical':
        return np.ascontiguousarray(img[::-1])
    raise ValueError(f"flip direction must be 'horizontal' or 'vertical', got {direction!r}")


def impad(img: np.ndarray, shape: Tuple[int, int], pad_val: Union[float, Sequence[float]] = 0
          ) -> np.ndarray:
    """Pad an (H, W[, C]) array at the bottom/right to ``shape`` = (h, w) with ``pad_val``."""
    out_shape = tuple(int(s) for s in shape[:2]) + tuple(img.shape[2:])
    if out_shape[0] < img.shape[0] or out_shape[1] < img.shape[1]:
        raise ValueError(f'impad: target shape {tuple(shape)} is smaller than the input {img.shape[:2]}')
    out = np.empty(out_shape, dtype=img.dtype)
    out[...] = pad_val
    out[:img.shape[0], :img.shape[1], ...] = img
    return out


def impad_to_multiple(img: np.ndarray, divisor: int, pad_val: Union[float, Sequence[float]] = 0
                      ) -> np.ndarray:
    """Pad at the bottom/right so that height and width are multiples of ``divisor``."""
    pad_h = int(np.ceil(img.shape[0] / divisor)) * divisor
    pad_w = int(np.ceil(img.shape[1] / divisor)) * divisor
    return impad(img, (pad_h, pad_w), pad_val)


def imnormalize(img: np.ndarray, mean: np.ndarray, std: np.ndarray, to_rgb: bool = True
                ) -> np.ndarray:
    """float32, optional BGR->RGB, then ``(img - mean) / std`` (same arithmetic as mmcv 0.2.16)."""
    img = img.astype(np.float32)
    if to_rgb:
        img = np.ascontiguousarray(img[..., ::-1])
    return (img - mean) / std


def normalize_scales(img_scale, name: str = 'img_scale') -> List[Scale]:
    """``(w, h)`` or a list of them -> list of int tuples.

    Lists standing for tuples (a config read back from JSON) are accepted: ``[1333, 800]`` is
    one scale, ``[[1333, 800], [1333, 640]]`` two.
    """
    if isinstance(img_scale, list) and len(img_scale) == 2 and all(
            isinstance(v, (int, np.integer)) for v in img_scale):
        img_scale = tuple(img_scale)
    scales = img_scale if isinstance(img_scale, list) else [img_scale]
    out: List[Scale] = []
    for s in scales:
        if isinstance(s, list):
            s = tuple(s)
        if not (isinstance(s, tuple) and len(s) == 2
                and all(isinstance(v, (int, np.integer)) and v > 0 for v in s)):
            raise TypeError(f'{name} must be a (long, short) tuple of positive ints or a list of '
                            f'them, got {img_scale!r}')
        out.append((int(s[0]), int(s[1])))
    if not out:
        raise ValueError(f'{name} is empty')
    return out
