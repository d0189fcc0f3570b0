"""Loading transforms: read the image and decode the annotations of one sample.

The results dict follows mmdet v1: ``img_info`` (``filename``, ``height``, ``width``),
``img_prefix`` (folder or ``None``) and, for training, ``ann_info`` with
``bboxes`` (K, 4) float32 ``x1, y1, x2, y2``, ``labels`` (K,) int64, ``masks`` (K COCO
segmentations) and optionally ``bboxes_ignore``.
"""
from __future__ import annotations

import os.path as osp
import warnings
from typing import Any, List, Optional, Union

import cv2
import numpy as np
import pycocotools.mask as mask_utils

from ...registry import PIPELINES

_COLOR_FLAGS = {
    'color': cv2.IMREAD_COLOR,
    'grayscale': cv2.IMREAD_GRAYSCALE,
    'unchanged': cv2.IMREAD_UNCHANGED,
}


def imread(filename: str, color_type: str = 'color') -> np.ndarray:
    """Read an image with ``cv2.imread`` (BGR, uint8); raise a clear error if it cannot be read."""
    if color_type not in _COLOR_FLAGS:
        raise ValueError(f"imread: color_type must be one of {sorted(_COLOR_FLAGS)}, got {color_type!r}")
    if not osp.isfile(filename):
        raise FileNotFoundError(f'image file not found: {filename!r}')
    img = cv2.imread(filename, _COLOR_FLAGS[color_type])
    if img is None:
        raise CorruptImageError(f'cannot decode image file {filename!r} (not an image, corrupt, '
                                f'or a format OpenCV does not support)')
    if _is_truncated_jpeg(filename):
        raise CorruptImageError(f'image file {filename!r} is a truncated JPEG (no end-of-image '
                                'marker): OpenCV would decode its missing part as grey')
    return img


class CorruptImageError(OSError):
    """An image file that cannot be decoded, or only partly (a truncated JPEG)."""


def _is_truncated_jpeg(filename: str) -> bool:
    """A JPEG whose end-of-image marker (FF D9) is missing from its last KB: the file was cut
    (libjpeg only prints 'Premature end of JPEG file' and fills the rest with grey)."""
    with open(filename, 'rb') as f:
        if f.read(3) != b'\xff\xd8\xff':
            return False
        size = f.seek(0, 2)
        f.seek(max(0, size - 1024))
        return b'\xff\xd9' not in f.read()


def _set_image(results: dict, img: np.ndarray, filename: Optional[str], to_float32: bool) -> dict:
    if to_float32:
        img = img.astype(np.float32)
    results['filename'] = filename
    results['img'] = img
    results['img_shape'] = img.shape
    results['ori_shape'] = img.shape
    # mmdet v1 datasets create these in ``pre_pipeline``; make stand-alone use work too
    results.setdefault('bbox_fields', [])
    results.setdefault('mask_fields', [])
    results.setdefault('seg_fields', [])
    return results


def as_bgr_image(img: np.ndarray) -> np.ndarray:
    """An in-memory image as an (H, W, 3) BGR array: gray (H, W) / (H, W, 1) and BGRA
    (H, W, 4) are converted; an empty array, another channel count, a float image in [0, 1]
    (it would be read as almost black: 0 detections) or a non-image dtype is an error."""
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise ValueError(f'image array: expected (H, W) gray, (H, W, 3) BGR or (H, W, 4) BGRA, '
                         f'got shape {img.shape}')
    if img.size == 0:
        raise ValueError(f'image array is empty (shape {img.shape})')
    if img.dtype != np.uint8:
        if img.dtype.kind != 'f':
            raise ValueError(f'image array has dtype {img.dtype}: expected uint8 BGR in 0-255 '
                             '(or float in 0-255)')
        if not np.isfinite(img).all():
            raise ValueError('image array has NaN or infinite values')
        if img.max() <= 1.0:
            raise ValueError(f'image array is float with values in [{img.min():.3g}, '
                             f'{img.max():.3g}]: expected 0-255 (e.g. (img * 255).astype(np.uint8))')
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:  # gray: the value in every channel (cv2's GRAY2BGR)
        return np.ascontiguousarray(np.repeat(img, 3, axis=2))
    if img.shape[2] == 4:  # BGRA: the alpha channel dropped (cv2's BGRA2BGR)
        return np.ascontiguousarray(img[:, :, :3])
    return img


@PIPELINES.register_module()
class LoadImageFromFile:
    """Read ``img_prefix / img_info['filename']`` with OpenCV (BGR, uint8 unless ``to_float32``).

    For in-memory inference the sample may instead carry ``results['img']``: a path, or a BGR
    ndarray used as it is (gray and BGRA arrays are converted, see :func:`as_bgr_image`;
    ``filename`` is then ``None``).
    Sets ``filename``, ``img``, ``img_shape``, ``ori_shape``.
    """

    def __init__(self, to_float32: bool = False, color_type: str = 'color') -> None:
        self.to_float32 = to_float32
        self.color_type = color_type

    def __call__(self, results: dict) -> dict:
        if 'img_info' in results:
            name = results['img_info'].get('filename')
            if name is None:
                raise KeyError(f"LoadImageFromFile: results['img_info'] has no 'filename' key "
                               f"(keys: {sorted(results['img_info'])})")
            prefix = results.get('img_prefix')
            filename = osp.join(prefix, name) if prefix is not None else name
            return _set_image(results, imread(filename, self.color_type), filename, self.to_float32)
        img = results.get('img')
        if isinstance(img, str):
            return _set_image(results, imread(img, self.color_type), img, self.to_float32)
        if isinstance(img, np.ndarray):
            return _set_image(results, as_bgr_image(img), results.get('filename'), self.to_float32)
        raise KeyError("LoadImageFromFile: the sample needs results['img_info']['filename'] or "
                       f"results['img'] (a path or an ndarray); got keys {sorted(results)}")

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(to_float32={self.to_float32}, color_type={self.color_type!r})'


@PIPELINES.register_module()
class LoadImage(LoadImageFromFile):
    """Alias of :class:`LoadImageFromFile` for inference on ``results['img']`` (path or ndarray)."""


def segm_to_rle(segm: Union[list, dict], height: int, width: int) -> Optional[dict]:
    """One COCO segmentation (polygons, uncompressed or compressed RLE) as a compressed RLE;
    ``None`` for polygons of which none has 3 points or more (pycocotools would read a
    4-number list as a box, so such polygons are ignored)."""
    if isinstance(segm, list):
        polys = [p for p in segm if len(p) >= 6]
        if not polys:
            return None
        return mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    if isinstance(segm, dict) and 'counts' in segm:
        if isinstance(segm['counts'], list):
            return mask_utils.frPyObjects(segm, height, width)
        return segm
    raise TypeError(f'a COCO segmentation must be a list of polygons or an RLE dict with '
                    f"'counts' and 'size', got {type(segm).__name__}: {str(segm)[:80]}")


def segm_to_mask(segm: Union[list, dict], height: int, width: int) -> np.ndarray:
    """Decode one COCO segmentation (see :func:`segm_to_rle`) to (H, W) uint8; an instance
    with no valid polygon gives an all-zero mask."""
    rle = segm_to_rle(segm, height, width)
    if rle is None:
        return np.zeros((height, width), dtype=np.uint8)
    size = list(rle.get('size', ()))
    if isinstance(segm, dict) and size != [height, width]:
        raise ValueError(f'RLE size {size} does not match the image size [{height}, {width}]')
    with warnings.catch_warnings():  # pycocotools + NumPy 2: harmless __array__ copy warning
        warnings.simplefilter('ignore', DeprecationWarning)
        mask = mask_utils.decode(rle)
    return np.ascontiguousarray(mask, dtype=np.uint8)


@PIPELINES.register_module()
class LoadAnnotations:
    """Load boxes, labels and masks from ``results['ann_info']``.

    Sets ``gt_bboxes`` (K, 4) float32, ``gt_bboxes_ignore`` (if given), ``gt_labels`` (K,)
    int64 and ``gt_masks`` (K, H, W) uint8 at the image size (K may be 0), and registers
    them in ``bbox_fields`` / ``mask_fields`` so later transforms update them.
    """

    def __init__(self, with_bbox: bool = True, with_label: bool = True, with_mask: bool = False,
                 with_seg: bool = False, poly2mask: bool = True) -> None:
        if with_mask and not poly2mask:
            raise NotImplementedError('LoadAnnotations: poly2mask=False (keeping raw polygons) is '
                                      'not supported; masks are always decoded to bitmaps')
        self.with_bbox = with_bbox
        self.with_label = with_label
        self.with_mask = with_mask
        self.with_seg = with_seg
        self.poly2mask = poly2mask

    @staticmethod
    def _ann(results: dict, key: str) -> Any:
        ann = results.get('ann_info')
        if ann is None:
            raise KeyError("LoadAnnotations: the sample has no 'ann_info' dict")
        if key not in ann:
            raise KeyError(f"LoadAnnotations: results['ann_info'] has no {key!r} key "
                           f'(keys: {sorted(ann)})')
        return ann[key]

    @staticmethod
    def _as_boxes(value: Any, key: str) -> np.ndarray:
        boxes = np.asarray(value, dtype=np.float32)
        if boxes.size == 0:
            return boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"LoadAnnotations: ann_info[{key!r}] must be (K, 4) x1, y1, x2, y2, "
                             f'got shape {boxes.shape}')
        return boxes

    def _load_bboxes(self, results: dict) -> None:
        results['gt_bboxes'] = self._as_boxes(self._ann(results, 'bboxes'), 'bboxes')
        ignore = results['ann_info'].get('bboxes_ignore')
        if ignore is not None:
            results['gt_bboxes_ignore'] = self._as_boxes(ignore, 'bboxes_ignore')
            results['bbox_fields'].append('gt_bboxes_ignore')
        results['bbox_fields'].append('gt_bboxes')

    def _load_labels(self, results: dict) -> None:
        labels = np.asarray(self._ann(results, 'labels'), dtype=np.int64).reshape(-1)
        results['gt_labels'] = labels

    def _image_hw(self, results: dict) -> tuple:
        info = results.get('img_info') or {}
        if 'height' in info and 'width' in info:
            hw = int(info['height']), int(info['width'])
            loaded = results.get('ori_shape')
            if loaded is not None and tuple(int(v) for v in loaded[:2]) != hw:
                raise ValueError(
                    f"LoadAnnotations: image {results.get('filename') or info.get('filename')!r} "
                    f'is {loaded[0]}x{loaded[1]} (height x width) but its annotation says '
                    f'{hw[0]}x{hw[1]}: the masks would not fit the image; fix height/width in '
                    'the annotation file (or the image)')
            return hw
        if 'img_shape' in results:
            return tuple(int(v) for v in results['img_shape'][:2])
        raise KeyError("LoadAnnotations: need img_info['height'/'width'] or img_shape to decode masks")

    def _load_masks(self, results: dict) -> None:
        h, w = self._image_hw(results)
        segms: List[Any] = list(self._ann(results, 'masks'))
        if segms:
            masks = np.stack([segm_to_mask(s, h, w) for s in segms], axis=0)
        else:
            masks = np.zeros((0, h, w), dtype=np.uint8)
        results['gt_masks'] = masks
        results['mask_fields'].append('gt_masks')

    def _load_semantic_seg(self, results: dict) -> None:
        name = self._ann(results, 'seg_map')
        prefix = results.get('seg_prefix')
        path = osp.join(prefix, name) if prefix is not None else name
        results['gt_semantic_seg'] = imread(path, 'unchanged').squeeze()
        results['seg_fields'].append('gt_semantic_seg')

    def __call__(self, results: dict) -> dict:
        for key in ('bbox_fields', 'mask_fields', 'seg_fields'):
            results.setdefault(key, [])
        if self.with_bbox:
            self._load_bboxes(results)
        if self.with_label:
            self._load_labels(results)
        if self.with_mask:
            self._load_masks(results)
        if self.with_seg:
            self._load_semantic_seg(results)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(with_bbox={self.with_bbox}, with_label={self.with_label}, '
                f'with_mask={self.with_mask}, with_seg={self.with_seg}, poly2mask={self.poly2mask})')
