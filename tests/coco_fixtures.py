"""A tiny COCO-format instance segmentation dataset written to disk, for tests.

``write_tiny_coco(root)`` writes real images (JPEG, one PNG) with drawn shapes and
``annotations.json`` with:

- categories with non-contiguous ids, listed in reverse order (labels must follow names);
- polygon instances, one compressed-RLE instance (image 0), a crowd instance with an
  uncompressed RLE (image 1), and an image without annotations (the last one);
- landscape images (even index, ``size = (H, W)``) and portrait ones (odd index);
- ``bbox`` / ``area`` computed from the decoded mask (``bbox = [x, y, w, h]`` of the mask
  with exclusive right/bottom edges), so masks and boxes of the ground truth agree exactly.

Use the ``tiny_coco`` fixture (session scope, read-only) with
``from coco_fixtures import tiny_coco  # noqa: F401`` or call ``write_tiny_coco(tmp_path)``.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Any, Dict, List, Sequence, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest


def _uncompressed_rle(mask: np.ndarray) -> Dict[str, Any]:
    """COCO uncompressed RLE (column-major run lengths, starting with zeros)."""
    flat = mask.astype(np.uint8).flatten(order='F')
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return {'counts': [int(c) for c in counts], 'size': [int(mask.shape[0]), int(mask.shape[1])]}


def _shape_polygon(rng: np.random.Generator, h: int, w: int) -> List[float]:
    """A rectangle, triangle or ellipse polygon fully inside an (h, w) image."""
    bw, bh = int(rng.integers(12, max(13, w // 3))), int(rng.integers(12, max(13, h // 3)))
    x0, y0 = int(rng.integers(1, w - bw - 1)), int(rng.integers(1, h - bh - 1))
    kind = int(rng.integers(3))
    if kind == 0:
        pts = [(x0, y0), (x0 + bw, y0), (x0 + bw, y0 + bh), (x0, y0 + bh)]
    elif kind == 1:
        pts = [(x0 + bw / 2, y0), (x0 + bw, y0 + bh), (x0, y0 + bh)]
    else:
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        pts = list(zip(x0 + bw / 2 * (1 + np.cos(t)), y0 + bh / 2 * (1 + np.sin(t))))
    return [float(round(v, 2)) for p in pts for v in p]


def _decode(segm: Any, h: int, w: int) -> np.ndarray:
    if isinstance(segm, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    elif isinstance(segm['counts'], list):
        rle = mask_utils.frPyObjects(segm, h, w)
    else:
        rle = segm
    return mask_utils.decode(rle).astype(bool)


def _box_area(mask: np.ndarray) -> Tuple[List[float], float]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return [float(v) for v in mask_utils.toBbox(rle)], float(mask_utils.area(rle))


def write_tiny_coco(root: str, num_images: int = 6, size: Tuple[int, int] = (96, 128),
                    classes: Sequence[str] = ('a', 'b', 'c'), seed: int = 0,
                    with_small_image: bool = False, with_invalid_ann: bool = False,
                    ann_name: str = 'annotations.json', img_dir: str = 'images') -> Dict[str, Any]:
    """Write the tiny dataset under ``root``; see the module docstring.

    Args:
        num_images: regular images (>= 3); the last one has no annotations.
        size: (H, W) of the landscape images; portrait ones are (W, H).
        with_small_image: add ``small.jpg`` (20x24) with one instance (for ``min_size``).
        with_invalid_ann: add a zero-area annotation to image 0 (must be skipped).

    Returns:
        dict(ann_file, img_prefix, classes, cat_ids (in ``classes`` order), image_files,
        num_images (all images written), num_instances (non-crowd, valid)).
    """
    if num_images < 3:
        raise ValueError(f'write_tiny_coco: num_images must be >= 3, got {num_images}')
    rng = np.random.default_rng(seed)
    img_prefix = osp.join(str(root), img_dir)
    os.makedirs(img_prefix, exist_ok=True)
    cat_ids = [3 * k + 2 for k in range(len(classes))]
    categories = [dict(id=c, name=n, supercategory='shape')
                  for c, n in reversed(list(zip(cat_ids, classes)))]
    images, anns, files = [], [], []
    specs = [(i, f'img_{i:03d}.png' if i == 1 else f'img_{i:03d}.jpg',
              size if i % 2 == 0 else (size[1], size[0])) for i in range(num_images)]
    if with_small_image:
        specs.append((num_images, 'small.jpg', (20, 24)))
    num_valid = 0
    for i, name, (h, w) in specs:
        img_id = 100 + i
        images.append(dict(id=img_id, file_name=name, height=h, width=w))
        img = (rng.integers(0, 40, (h, w, 3))).astype(np.uint8)
        inst: List[Dict[str, Any]] = []
        if i == num_images - 1:
            n_inst = 0
        elif name == 'small.jpg':
            n_inst = 1
        else:
            n_inst = int(rng.integers(2, 4))
        for k in range(n_inst):
            if name == 'small.jpg':
                segm: Any = [[4.0, 4.0, 18.0, 4.0, 18.0, 14.0, 4.0, 14.0]]
            else:
                segm = [_shape_polygon(rng, h, w)]
            mask = _decode(segm, h, w)
            if i == 0 and k == 0:  # a compressed RLE instance
                segm = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                segm['counts'] = segm['counts'].decode('ascii')
            inst.append(dict(segmentation=segm, mask=mask, iscrowd=0,
                             category_id=cat_ids[int(rng.integers(len(classes)))]))
        if i == 1:  # a crowd region (uncompressed RLE), as COCO stores crowds
            mask = _decode([_shape_polygon(rng, h, w)], h, w)
            inst.append(dict(segmentation=_uncompressed_rle(mask), mask=mask, iscrowd=1,
                             category_id=cat_ids[0]))
        for a in inst:
            bbox, area = _box_area(a.pop('mask'))
            color = [int(v) for v in rng.integers(80, 256, 3)]
            img[_decode(a['segmentation'], h, w)] = color
            anns.append(dict(id=len(anns) + 1, image_id=img_id, bbox=bbox, area=area, **a))
            num_valid += int(a['iscrowd'] == 0)
        if with_invalid_ann and i == 0:
            anns.append(dict(id=len(anns) + 1, image_id=img_id, bbox=[5.0, 5.0, 0.0, 3.0],
                             area=0.0, iscrowd=0, category_id=cat_ids[0],
                             segmentation=[[5.0, 5.0, 5.0, 8.0, 5.0, 6.0]]))
        path = osp.join(img_prefix, name)
        if not cv2.imwrite(path, img):
            raise OSError(f'write_tiny_coco: cannot write {path}')
        files.append(path)
    ann_file = osp.join(str(root), ann_name)
    with open(ann_file, 'w', encoding='utf-8') as f:
        json.dump(dict(images=images, annotations=anns, categories=categories,
                       info={'description': 'tiny test set'}, licenses=[]), f)
    return dict(ann_file=ann_file, img_prefix=img_prefix, classes=tuple(classes),
                cat_ids=cat_ids, image_files=files, num_images=len(specs),
                num_instances=num_valid)


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """``write_tiny_coco`` output in a session temp folder (treat it as read-only)."""
    return write_tiny_coco(str(tmp_path_factory.mktemp('tiny_coco')))
