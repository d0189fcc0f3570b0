"""A synthetic instance-segmentation dataset of coloured shapes, written in COCO format.

``make_shapes_dataset('data/shapes', num_train=1000, num_val=100, seed=0)`` writes::

    data/shapes/train/000000.jpg ...          data/shapes/val/000000.jpg ...
    data/shapes/annotations/instances_train.json
    data/shapes/annotations/instances_val.json

which the ordinary :class:`~mmdet_solo.datasets.CocoDataset` reads with
``classes=SHAPES_CLASSES``. Every image has a textured, noisy background and several
instances of five classes (``circle``, ``triangle``, ``square``, ``star``, ``ring``) with
random sizes (log-uniform over a wide range, so every FPN level gets objects), colours,
rotations and positions. Shapes are painted one after the other, so later shapes occlude
earlier ones; the annotated mask of an instance is the part of it that stays **visible**
(rings have a hole through which the background shows). Some shapes are cut by the image
border. Masks are stored as compressed COCO RLE (exact, holes included), with ``bbox``
(``x, y, w, h`` of the visible mask), ``area`` (visible pixels) and ``iscrowd=0``.

Everything is deterministic by ``seed``: image ``i`` of a split is drawn from its own
generator ``numpy.random.default_rng([seed, split_id, i])``, so the data does not depend
on the order or the number of images generated.

Shapes are rasterised from their outline polygons by pycocotools (``frPyObjects`` +
``decode``), the same rasteriser COCO polygons go through, so a shape's mask is exactly
what its polygon gives in COCO tools.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_utils

from ..utils.io import atomic_write

SHAPES_CLASSES = ('circle', 'triangle', 'square', 'star', 'ring')
SPLIT_IDS = {'train': 0, 'val': 1, 'test': 2}
FORMAT_VERSION = 1


@dataclass
class ShapesSettings:
    """What the generator draws. Sizes are in pixels of the generated image.

    img_size:       (min, max) of the image height and width (drawn independently)
    num_instances:  (min, max) instances per image (fewer if placement fails)
    scale_range:    (min, max) of ``sqrt(w*h)`` of a shape's box, as a fraction of the
                    image's shorter side; drawn log-uniformly
    min_visible:    every instance keeps at least this fraction of its in-image area visible
    min_area:       and at least this many visible pixels
    min_inside:     at least this fraction of a shape's area lies inside the image
    noise:          (min, max) standard deviation of the per-pixel background noise
    jpeg_quality:   quality of the written JPEG files
    """

    img_size: Tuple[int, int] = (256, 320)
    num_instances: Tuple[int, int] = (3, 8)
    scale_range: Tuple[float, float] = (0.1, 0.65)
    min_visible: float = 0.45
    min_area: int = 40
    min_inside: float = 0.6
    noise: Tuple[float, float] = (3.0, 12.0)
    jpeg_quality: int = 95
    classes: Tuple[str, ...] = SHAPES_CLASSES


@dataclass
class ShapeInstance:
    """One drawn shape. ``polygons[0]`` is the outline; a ring has its hole as ``polygons[1]``.
    ``full_mask`` is the whole shape (in the image), ``mask`` the part left visible."""

    label: int
    polygons: List[np.ndarray]
    full_mask: np.ndarray
    mask: np.ndarray
    color: Tuple[int, int, int]
    center: Tuple[float, float] = (0., 0.)
    radius: float = 0.
    polygon_area: float = field(default=0.)


# ------------------------------------------------------------------------------ geometry
def _regular(cx: float, cy: float, r: float, n: int, angle: float,
             aspect: float = 1.0) -> np.ndarray:
    t = angle + np.arange(n) * (2 * np.pi / n)
    return np.stack([cx + r * aspect * np.cos(t), cy + r / aspect * np.sin(t)], 1)


def shape_polygons(kind: str, cx: float, cy: float, r: float, angle: float = 0.,
                   aspect: float = 1.0, inner: float = 0.5) -> List[np.ndarray]:
    """Outline polygon(s) ``(N, 2)`` of x, y of a shape of circumradius ``r`` centred at
    ``(cx, cy)``. ``ring`` returns ``[outer, hole]``; ``inner`` is the ring's hole radius or
    the star's inner radius, as a fraction of ``r``; ``aspect`` stretches x against y."""
    if kind in ('circle', 'ring'):
        n = int(np.clip(2 * np.pi * r / 3, 24, 128))
        outer = _regular(cx, cy, r, n, angle, aspect)
        if kind == 'circle':
            return [outer]
        return [outer, _regular(cx, cy, r * inner, n, angle, aspect)]
    if kind == 'triangle':
        return [_regular(cx, cy, r, 3, angle, aspect)]
    if kind == 'square':
        return [_regular(cx, cy, r, 4, angle, aspect)]
    if kind == 'star':
        t = angle + np.arange(10) * (np.pi / 5)
        rr = np.where(np.arange(10) % 2 == 0, r, r * inner)
        return [np.stack([cx + rr * aspect * np.cos(t), cy + rr / aspect * np.sin(t)], 1)]
    raise KeyError(f'unknown shape {kind!r} (known: {SHAPES_CLASSES})')


def polygon_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def rasterize_polygon(poly: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) bool mask of a polygon, rasterised by pycocotools as COCO polygons are."""
    rle = mask_utils.frPyObjects([np.asarray(poly, np.float64).reshape(-1).tolist()],
                                 height, width)
    return mask_utils.decode(rle)[:, :, 0].astype(bool)


def rasterize_shape(polygons: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """The outline minus the holes (``polygons[1:]``)."""
    mask = rasterize_polygon(polygons[0], height, width)
    for hole in polygons[1:]:
        mask &= ~rasterize_polygon(hole, height, width)
    return mask


# ----------------------------------------------------------------------------- painting
def _hsv_color(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.integers(0, 180), rng.integers(90, 256), rng.integers(80, 256)]]],
                   np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Float32 (H, W, 3) BGR: a gradient, blotchy low-frequency noise or faint stripes."""
    kind = rng.integers(0, 3)
    c1 = rng.uniform(20, 235, 3).astype(np.float32)
    if kind == 0:  # linear gradient between two colours
        c2 = np.clip(c1 + rng.uniform(-90, 90, 3), 0, 255).astype(np.float32)
        t = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        p = (xx * np.cos(t) + yy * np.sin(t))
        p = (p - p.min()) / max(float(p.max() - p.min()), 1.)
        img = c1 + p[..., None] * (c2 - c1)
    elif kind == 1:  # blotches: a coarse random colour grid, smoothly upsampled
        g = int(rng.integers(3, 9))
        grid = np.clip(c1 + rng.normal(0, 45, (g, g, 3)), 0, 255).astype(np.float32)
        img = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    else:  # faint stripes / checks
        c2 = np.clip(c1 + rng.uniform(-50, 50, 3), 0, 255).astype(np.float32)
        period = rng.uniform(6, 40)
        t = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        s = np.sin((xx * np.cos(t) + yy * np.sin(t)) * 2 * np.pi / period)
        if rng.random() < 0.4:
            s = s * np.sin((-xx * np.sin(t) + yy * np.cos(t)) * 2 * np.pi / period)
        img = c1 + ((s > 0).astype(np.float32))[..., None] * (c2 - c1)
    img = img + rng.normal(0, rng.uniform(0, 10), (1, 1, 3)).astype(np.float32)
    return img.astype(np.float32)


def _paint(img: np.ndarray, mask: np.ndarray, color: np.ndarray, rng: np.random.Generator) -> None:
    """Fill ``mask`` with ``color``, a linear shading and a little texture noise (in place)."""
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return
    t = rng.uniform(0, 2 * np.pi)
    p = xs * np.cos(t) + ys * np.sin(t)
    p = (p - p.min()) / max(float(p.max() - p.min()), 1.) - 0.5
    shade = rng.uniform(0, 50)
    fill = color[None, :] + (p * shade)[:, None]
    fill += rng.normal(0, rng.uniform(2, 8), fill.shape)
    img[ys, xs] = fill


# ------------------------------------------------------------------------------- images
def generate_shapes_image(rng: np.random.Generator, settings: Optional[ShapesSettings] = None
                          ) -> Tuple[np.ndarray, List[ShapeInstance]]:
    """Draw one image: returns the (H, W, 3) BGR uint8 image and its instances (in painting
    order; ``mask`` is what stays visible after the later shapes are painted over it)."""
    s = settings or ShapesSettings()
    h = int(rng.integers(s.img_size[0], s.img_size[1] + 1))
    w = int(rng.integers(s.img_size[0], s.img_size[1] + 1))
    img = _background(rng, h, w)
    bg_mean = img.reshape(-1, 3).mean(0)
    short = min(h, w)
    target = int(rng.integers(s.num_instances[0], s.num_instances[1] + 1))
    lo, hi = np.log(s.scale_range[0] * short), np.log(s.scale_range[1] * short)
    instances: List[ShapeInstance] = []
    for _ in range(target):
        for _attempt in range(25):
            label = int(rng.integers(0, len(s.classes)))
            kind = s.classes[label]
            scale = float(np.exp(rng.uniform(lo, hi)))  # ~ sqrt(w * h) of the box
            # circumradius from the box scale (box side ~ 2r for circles, a bit less otherwise)
            r = scale / {'circle': 2.0, 'ring': 2.0, 'square': 1.414, 'triangle': 1.6,
                         'star': 1.8}.get(kind, 2.0)
            cx = rng.uniform(-0.15 * r, w + 0.15 * r)
            cy = rng.uniform(-0.15 * r, h + 0.15 * r)
            angle = rng.uniform(0, 2 * np.pi)
            aspect = float(np.exp(rng.uniform(-0.15, 0.15)))
            inner = rng.uniform(0.45, 0.62) if kind == 'ring' else rng.uniform(0.38, 0.5)
            polys = shape_polygons(kind, cx, cy, r, angle, aspect, inner)
            full_area = polygon_area(polys[0]) - sum(polygon_area(p) for p in polys[1:])
            full = rasterize_shape(polys, h, w)
            inside = int(full.sum())
            if inside < max(s.min_area, s.min_inside * full_area):
                continue
            # the shape must not hide too much of any shape below it
            ok = True
            for prev in instances:
                remain = prev.mask & ~full
                if remain.sum() < max(s.min_area, s.min_visible * prev.full_mask.sum()):
                    ok = False
                    break
            if not ok:
                continue
            # colour: distinct from the background under it and from the shapes it overlaps
            under = img[full].mean(0)
            color = None
            for _c in range(12):
                c = _hsv_color(rng)
                if np.abs(c - under).sum() < 80 or np.abs(c - bg_mean).sum() < 60:
                    continue
                if any(np.abs(c - np.array(p.color, np.float32)).sum() < 90
                       for p in instances if (p.mask & full).any()):
                    continue
                color = c
                break
            if color is None:
                continue
            _paint(img, full, color, rng)
            for prev in instances:
                prev.mask = prev.mask & ~full
            instances.append(ShapeInstance(label, polys, full, full.copy(),
                                           tuple(int(v) for v in color), (cx, cy), r, full_area))
            break
    noise = rng.uniform(*s.noise)
    img = img + rng.normal(0, noise, img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), instances


def encode_mask(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of an (H, W) bool mask, ``counts`` as a str (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def instances_to_annotations(instances: Sequence[ShapeInstance], image_id: int,
                             first_ann_id: int) -> List[dict]:
    """COCO annotation dicts (``category_id`` = label + 1) of the visible masks."""
    anns = []
    for k, inst in enumerate(instances):
        rle = encode_mask(inst.mask)
        x, y, bw, bh = (float(v) for v in mask_utils.toBbox(rle))
        anns.append(dict(id=first_ann_id + k, image_id=image_id, category_id=inst.label + 1,
                         segmentation=rle, area=float(mask_utils.area(rle)),
                         bbox=[x, y, bw, bh], iscrowd=0))
    return anns


# ------------------------------------------------------------------------------ dataset
def make_shapes_split(root: str, split: str, num_images: int, seed: int = 0,
                      settings: Optional[ShapesSettings] = None,
                      progress: Optional[Callable[[int, int], None]] = None) -> str:
    """Write ``root/<split>/NNNNNN.jpg`` and ``root/annotations/instances_<split>.json``;
    returns the JSON path."""
    s = settings or ShapesSettings()
    if split not in SPLIT_IDS:
        raise KeyError(f'split must be one of {sorted(SPLIT_IDS)}, got {split!r}')
    img_dir = osp.join(root, split)
    ann_dir = osp.join(root, 'annotations')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        rng = np.random.default_rng([seed, SPLIT_IDS[split], i])
        img, instances = generate_shapes_image(rng, s)
        name = f'{i:06d}.jpg'
        if not cv2.imwrite(osp.join(img_dir, name), img,
                           [cv2.IMWRITE_JPEG_QUALITY, int(s.jpeg_quality)]):
            raise OSError(f'cannot write {osp.join(img_dir, name)}')
        image_id = i + 1
        images.append(dict(id=image_id, file_name=name, height=img.shape[0], width=img.shape[1]))
        annotations += instances_to_annotations(instances, image_id, len(annotations) + 1)
        if progress is not None:
            progress(i + 1, num_images)
    coco = dict(
        info=dict(description=f'mmdet_solo synthetic shapes ({split})', version=FORMAT_VERSION,
                  seed=seed, settings=_settings_dict(s)),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=[dict(id=i + 1, name=n, supercategory='shape') for i, n in enumerate(s.classes)])
    path = osp.join(ann_dir, f'instances_{split}.json')
    # the JSON appears last: its presence means the split is complete
    atomic_write(path, lambda f: json.dump(coco, f), text=True)
    return path


def _settings_dict(settings: ShapesSettings) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(settings).items()}


def shapes_dataset_status(root: str, num_train: int, num_val: int, seed: int = 0,
                          settings: Optional[ShapesSettings] = None) -> Optional[str]:
    """``None`` if ``root`` holds exactly the dataset these arguments generate (as recorded in
    the annotation files' ``info``), else the reason why not."""
    s = settings or ShapesSettings()
    for split, n in (('train', num_train), ('val', num_val)):
        if n <= 0:
            continue
        path = osp.join(root, 'annotations', f'instances_{split}.json')
        if not osp.isfile(path):
            return f'{path} is missing'
        try:
            with open(path) as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            return f'{path} is unreadable ({e})'
        info = d.get('info', {})
        if info.get('version') != FORMAT_VERSION or info.get('seed') != seed \
                or info.get('settings') != _settings_dict(s) or len(d.get('images', [])) != n:
            return f'{path} was generated with other settings'
        missing = [im['file_name'] for im in d['images']
                   if not osp.isfile(osp.join(root, split, im['file_name']))]
        if missing:
            return f'{len(missing)} {split} image(s) are missing (e.g. {missing[0]})'
    return None


def make_shapes_dataset(root: str = 'data/shapes', num_train: int = 1000, num_val: int = 100,
                        seed: int = 0, settings: Optional[ShapesSettings] = None,
                        verbose: bool = False) -> Dict[str, str]:
    """Write the ``train`` and ``val`` splits under ``root``; returns ``{split: json path}``."""
    out = {}
    for split, n in (('train', num_train), ('val', num_val)):
        if n <= 0:
            continue
        t0 = time.time()
        progress = None
        if verbose:
            def progress(done: int, total: int, _split: str = split) -> None:
                if done == total or done % max(1, total // 10) == 0:
                    print(f'  {_split}: {done}/{total} images ({time.time() - t0:.0f} s)',
                          flush=True)
        out[split] = make_shapes_split(root, split, n, seed, settings, progress)
    return out


__all__ = ['SHAPES_CLASSES', 'ShapesSettings', 'ShapeInstance', 'shape_polygons',
           'polygon_area', 'rasterize_polygon', 'rasterize_shape', 'generate_shapes_image',
           'encode_mask', 'instances_to_annotations', 'make_shapes_split',
           'make_shapes_dataset', 'shapes_dataset_status']
