"""Geometric and photometric transforms: ``Resize``, ``RandomFlip``, ``Normalize``, ``Pad``.

They reproduce mmdet v1.0 with mmcv 0.2.16 bit for bit; the mmcv image helpers they rely on
are in :mod:`mmdet_solo.utils.image_ops`. As in mmcv, resizing has a ``backend``: ``'cv2'``
(default, the original's arithmetic) or ``'pillow'`` (``PIL.Image.resize``, as
detectron2/AdelaiDet).

Masks travel as one (K, H, W) uint8 array (K may be 0) listed in ``results['mask_fields']``;
boxes as (K, 4) float32 arrays listed in ``results['bbox_fields']``.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from ...registry import PIPELINES
from ...utils.image_ops import (Scale, check_resize_backend, imflip, imnormalize, impad,
                                impad_to_multiple, imrescale, imresize, normalize_scales)


def _resize_masks(masks: np.ndarray, size: Tuple[int, int], interpolation: str = 'nearest'
                  ) -> np.ndarray:
    """Resize every (H, W) plane of a (K, H, W) array to ``size`` = (width, height)."""
    w, h = size
    if len(masks) == 0:
        return np.zeros((0, h, w), dtype=masks.dtype)
    return np.stack([imresize(m, (w, h), interpolation) for m in masks], axis=0)


# ----------------------------------------------------------------------------- transforms
@PIPELINES.register_module()
class Resize:
    """Resize the image, boxes and masks.

    The target scale is ``results['scale']`` if set (``MultiScaleFlipAug``), else chosen from
    ``img_scale``: one tuple is used as is; with ``ratio_range`` it is multiplied by a random
    ratio; with several tuples, ``multiscale_mode='range'`` samples long and short edges
    uniformly between two tuples and ``'value'`` picks one tuple.

    With ``keep_ratio`` the factor is ``min(long/long_side, short/short_side)`` and
    ``scale_factor`` is that Python float; otherwise the image is resized to ``scale``
    = (w, h) and ``scale_factor`` is float32 ``[w_scale, h_scale, w_scale, h_scale]``.
    Boxes are multiplied by it and clipped to ``[0, w - 1]`` / ``[0, h - 1]``; masks are
    resized with nearest neighbour to the image size.

    ``backend`` (mmcv's argument) resizes the image and ``seg_fields`` with ``'cv2'`` (default)
    or ``'pillow'`` (``PIL.Image.resize``, detectron2's ``ResizeTransform`` for uint8 images);
    masks always use cv2, as in mmdet. The size rule is the same for both.
    """

    def __init__(self, img_scale: Optional[Union[Scale, List[Scale]]] = None,
                 multiscale_mode: str = 'range', ratio_range: Optional[Tuple[float, float]] = None,
                 keep_ratio: bool = True, backend: str = 'cv2') -> None:
        self.backend = check_resize_backend(backend, 'Resize')
        self.img_scale = None if img_scale is None else normalize_scales(img_scale)
        if ratio_range is not None:
            if self.img_scale is None or len(self.img_scale) != 1:
                raise ValueError(f'Resize: ratio_range needs exactly one img_scale, got {img_scale!r}')
            if len(ratio_range) != 2 or ratio_range[0] > ratio_range[1]:
                raise ValueError(f'Resize: ratio_range must be (min, max) with min <= max, '
                                 f'got {ratio_range!r}')
        elif multiscale_mode not in ('range', 'value'):
            raise ValueError(f"Resize: multiscale_mode must be 'range' or 'value', got {multiscale_mode!r}")
        if (self.img_scale is not None and ratio_range is None and multiscale_mode == 'range'
                and len(self.img_scale) > 2):
            raise ValueError(f"Resize: multiscale_mode='range' needs 1 or 2 img_scale tuples, "
                             f'got {len(self.img_scale)}')
        self.multiscale_mode = multiscale_mode
        self.ratio_range = ratio_range
        self.keep_ratio = keep_ratio

    @staticmethod
    def random_select(img_scales: List[Scale]) -> Tuple[Scale, int]:
        idx = np.random.randint(len(img_scales))
        return img_scales[idx], idx

    @staticmethod
    def random_sample(img_scales: List[Scale]) -> Tuple[Scale, None]:
        longs = [max(s) for s in img_scales]
        shorts = [min(s) for s in img_scales]
        long_edge = np.random.randint(min(longs), max(longs) + 1)
        short_edge = np.random.randint(min(shorts), max(shorts) + 1)
        return (int(long_edge), int(short_edge)), None

    @staticmethod
    def random_sample_ratio(img_scale: Scale, ratio_range: Tuple[float, float]) -> Tuple[Scale, None]:
        lo, hi = ratio_range
        ratio = np.random.random_sample() * (hi - lo) + lo
        return (int(img_scale[0] * ratio), int(img_scale[1] * ratio)), None

    def _random_scale(self, results: dict) -> None:
        if self.img_scale is None:
            raise KeyError("Resize: img_scale is None and the sample has no 'scale' key "
                           '(set img_scale, or use it inside MultiScaleFlipAug)')
        if self.ratio_range is not None:
            scale, idx = self.random_sample_ratio(self.img_scale[0], self.ratio_range)
        elif len(self.img_scale) == 1:
            scale, idx = self.img_scale[0], 0
        elif self.multiscale_mode == 'range':
            scale, idx = self.random_sample(self.img_scale)
        else:
            scale, idx = self.random_select(self.img_scale)
        results['scale'] = scale
        results['scale_idx'] = idx

    def _resize_img(self, results: dict) -> None:
        img = results['img']
        h, w = img.shape[:2]
        if self.keep_ratio:
            img, scale_factor = imrescale(img, results['scale'], return_scale=True,
                                          backend=self.backend)
        else:
            img = imresize(img, results['scale'], backend=self.backend)
            new_h, new_w = img.shape[:2]
            scale_factor = np.array([new_w / w, new_h / h, new_w / w, new_h / h], dtype=np.float32)
        results['img'] = img
        results['img_shape'] = img.shape
        results['pad_shape'] = img.shape  # until Pad
        results['scale_factor'] = scale_factor
        results['keep_ratio'] = self.keep_ratio

    @staticmethod
    def _resize_bboxes(results: dict) -> None:
        h, w = results['img_shape'][:2]
        for key in results.get('bbox_fields', []):
            boxes = results[key] * results['scale_factor']
            boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w - 1)
            boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h - 1)
            results[key] = boxes

    @staticmethod
    def _resize_masks(results: dict) -> None:
        h, w = results['img_shape'][:2]
        for key in results.get('mask_fields', []):
            if results.get(key) is None:
                continue
            results[key] = _resize_masks(np.asarray(results[key]), (w, h), 'nearest')

    def _resize_seg(self, results: dict) -> None:
        h, w = results['img_shape'][:2]
        for key in results.get('seg_fields', []):
            results[key] = imresize(results[key], (w, h), 'nearest', self.backend)

    def __call__(self, results: dict) -> dict:
        if 'scale' not in results:
            self._random_scale(results)
        self._resize_img(results)
        self._resize_bboxes(results)
        self._resize_masks(results)
        self._resize_seg(results)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(img_scale={self.img_scale}, multiscale_mode='
                f'{self.multiscale_mode!r}, ratio_range={self.ratio_range}, '
                f'keep_ratio={self.keep_ratio}, backend={self.backend!r})')


def bbox_flip(bboxes: np.ndarray, img_shape: Sequence[int], direction: str = 'horizontal'
              ) -> np.ndarray:
    """Flip (..., 4k) boxes in an image of ``img_shape`` (h, w, ...): ``x' = w - x - 1``."""
    if bboxes.shape[-1] % 4 != 0:
        raise ValueError(f'bbox_flip: the last dimension must be a multiple of 4, got {bboxes.shape}')
    flipped = bboxes.copy()
    if direction == 'horizontal':
        w = img_shape[1]
        flipped[..., 0::4] = w - bboxes[..., 2::4] - 1
        flipped[..., 2::4] = w - bboxes[..., 0::4] - 1
    elif direction == 'vertical':
        h = img_shape[0]
        flipped[..., 1::4] = h - bboxes[..., 3::4] - 1
        flipped[..., 3::4] = h - bboxes[..., 1::4] - 1
    else:
        raise ValueError(f"bbox_flip: direction must be 'horizontal' or 'vertical', got {direction!r}")
    return flipped


@PIPELINES.register_module()
class RandomFlip:
    """Flip the image, boxes and masks with probability ``flip_ratio``.

    ``results['flip']`` (set by ``MultiScaleFlipAug``) overrides the random draw; with
    ``flip_ratio=None`` and no ``flip`` key nothing is flipped.
    """

    def __init__(self, flip_ratio: Optional[float] = None, direction: str = 'horizontal') -> None:
        if flip_ratio is not None and not 0 <= flip_ratio <= 1:
            raise ValueError(f'RandomFlip: flip_ratio must be in [0, 1], got {flip_ratio}')
        if direction not in ('horizontal', 'vertical'):
            raise ValueError(f"RandomFlip: direction must be 'horizontal' or 'vertical', got {direction!r}")
        self.flip_ratio = flip_ratio
        self.direction = direction

    bbox_flip = staticmethod(bbox_flip)

    def __call__(self, results: dict) -> dict:
        if 'flip' not in results:
            results['flip'] = bool(self.flip_ratio is not None and np.random.rand() < self.flip_ratio)
        results.setdefault('flip_direction', self.direction)
        if not results['flip']:
            return results
        direction = results['flip_direction']
        results['img'] = imflip(results['img'], direction)
        for key in results.get('bbox_fields', []):
            results[key] = bbox_flip(results[key], results['img_shape'], direction)
        axis = 2 if direction == 'horizontal' else 1
        for key in results.get('mask_fields', []):
            if results.get(key) is not None:
                results[key] = np.ascontiguousarray(np.flip(np.asarray(results[key]), axis=axis))
        for key in results.get('seg_fields', []):
            results[key] = imflip(results[key], direction)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(flip_ratio={self.flip_ratio}, direction={self.direction!r})'


@PIPELINES.register_module()
class Pad:
    """Pad the image and masks at the bottom/right, to ``size`` (h, w) or a multiple of
    ``size_divisor`` (exactly one of them); sets ``pad_shape``."""

    def __init__(self, size: Optional[Tuple[int, int]] = None, size_divisor: Optional[int] = None,
                 pad_val: float = 0) -> None:
        if (size is None) == (size_divisor is None):
            raise ValueError(f'Pad: give exactly one of size and size_divisor, got size={size!r}, '
                             f'size_divisor={size_divisor!r}')
        if size_divisor is not None and (not isinstance(size_divisor, int) or size_divisor <= 0):
            raise ValueError(f'Pad: size_divisor must be a positive int, got {size_divisor!r}')
        self.size = None if size is None else tuple(size)
        self.size_divisor = size_divisor
        self.pad_val = pad_val

    def _pad_img(self, results: dict) -> None:
        if self.size is not None:
            padded = impad(results['img'], self.size, self.pad_val)
        else:
            padded = impad_to_multiple(results['img'], self.size_divisor, self.pad_val)
        results['img'] = padded
        results['pad_shape'] = padded.shape
        results['pad_fixed_size'] = self.size
        results['pad_size_divisor'] = self.size_divisor

    def _pad_masks(self, results: dict) -> None:
        pad_hw = tuple(results['pad_shape'][:2])
        for key in results.get('mask_fields', []):
            masks = results.get(key)
            if masks is None:
                continue
            masks = np.asarray(masks)
            out = np.full((len(masks),) + pad_hw, self.pad_val, dtype=masks.dtype)
            out[:, :masks.shape[1], :masks.shape[2]] = masks
            results[key] = out

    def _pad_seg(self, results: dict) -> None:
        for key in results.get('seg_fields', []):
            results[key] = impad(results[key], results['pad_shape'][:2])

    def __call__(self, results: dict) -> dict:
        self._pad_img(results)
        self._pad_masks(results)
        self._pad_seg(results)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, size_divisor={self.size_divisor}, '
                f'pad_val={self.pad_val})')


@PIPELINES.register_module()
class Normalize:
    """float32, BGR->RGB if ``to_rgb``, ``(img - mean) / std``; records ``img_norm_cfg``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], to_rgb: bool = True) -> None:
        self.mean = np.array(mean, dtype=np.float32)
        self.std = np.array(std, dtype=np.float32)
        if self.mean.shape != self.std.shape or self.mean.ndim != 1:
            raise ValueError(f'Normalize: mean and std must be equal-length sequences, got '
                             f'mean={mean!r}, std={std!r}')
        if np.any(self.std == 0):
            raise ValueError(f'Normalize: std must not contain 0, got {std!r}')
        self.to_rgb = to_rgb

    def __call__(self, results: dict) -> dict:
        results['img'] = imnormalize(results['img'], self.mean, self.std, self.to_rgb)
        results['img_norm_cfg'] = dict(mean=self.mean, std=self.std, to_rgb=self.to_rgb)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(mean={self.mean.tolist()}, std={self.std.tolist()}, '
                f'to_rgb={self.to_rgb})')
