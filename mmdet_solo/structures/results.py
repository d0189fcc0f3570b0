"""``InstanceResult``: the per-image output of every detector, evaluator and visualiser, and
``EncodedInstanceResult``, the same with RLE masks (the form results keep in the test loop)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as mask_utils
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]


def masks_to_boxes(masks: ArrayLike) -> np.ndarray:
    """Tight boxes (N, 4) float32 ``x1, y1, x2, y2`` (pixel edges, x2 exclusive) of (N, H, W) masks.

    An empty mask gives the box ``0, 0, 0, 0``.
    """
    m = masks.cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    n = m.shape[0]
    boxes = np.zeros((n, 4), dtype=np.float32)
    if n == 0:
        return boxes
    m = m.astype(bool, copy=False)
    rows = m.any(axis=2)  # (N, H)
    cols = m.any(axis=1)  # (N, W)
    nonempty = rows.any(axis=1)
    h, w = m.shape[1:]
    y1 = rows.argmax(axis=1)
    y2 = h - rows[:, ::-1].argmax(axis=1)
    x1 = cols.argmax(axis=1)
    x2 = w - cols[:, ::-1].argmax(axis=1)
    boxes[:] = np.stack([x1, y1, x2, y2], axis=1)
    boxes[~nonempty] = 0
    return boxes


@dataclass
class InstanceResult:
    """Instances found in one image, sorted by descending score.

    masks:  (N, H, W) bool, at the original image size
    labels: (N,) int64, 0-based indices into the model's ``CLASSES``
    scores: (N,) float32
    bboxes: (N, 4) float32 ``x1, y1, x2, y2`` derived from the masks
    """

    masks: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    bboxes: np.ndarray = field(default=None)

    def __post_init__(self) -> None:
        self.masks = np.asarray(self.masks, dtype=bool)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if self.masks.ndim != 3:
            raise ValueError(f'InstanceResult.masks must be (N, H, W), got shape {self.masks.shape}')
        if self.bboxes is None:
            self.bboxes = masks_to_boxes(self.masks)
        self.bboxes = np.asarray(self.bboxes, dtype=np.float32).reshape(-1, 4)
        n = len(self.masks)
        if not (len(self.labels) == len(self.scores) == len(self.bboxes) == n):
            raise ValueError(f'InstanceResult fields differ in length: masks {n}, labels '
                             f'{len(self.labels)}, scores {len(self.scores)}, bboxes {len(self.bboxes)}')

    @classmethod
    def empty(cls, height: int, width: int) -> 'InstanceResult':
        return cls(np.zeros((0, height, width), dtype=bool), np.zeros(0, np.int64),
                   np.zeros(0, np.float32), np.zeros((0, 4), np.float32))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, item) -> 'InstanceResult':
        if isinstance(item, (int, np.integer)):
            item = [item]
        return InstanceResult(self.masks[item], self.labels[item], self.scores[item], self.bboxes[item])

    @property
    def image_size(self):
        return tuple(self.masks.shape[1:])


def encode_rles(masks: ArrayLike) -> List[Dict[str, Any]]:
    """(N, H, W) masks → N compressed COCO RLEs with ``counts`` as str (JSON-ready)."""
    m = masks.cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    if len(m) == 0:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        rles = mask_utils.encode(np.asfortranarray(m.astype(np.uint8).transpose(1, 2, 0)))
    for rle in rles:
        if isinstance(rle['counts'], bytes):
            rle['counts'] = rle['counts'].decode('ascii')
    return rles


class EncodedInstanceResult:
    """An ``InstanceResult`` whose masks are stored as compressed COCO RLEs (a few KB per
    image instead of ``N x H x W`` bytes): the form results take in the test loop.

    ``masks`` decodes on access (``(N, H, W)`` bool), so evaluation, formatting and drawing
    code written for ``InstanceResult`` works unchanged; ``rles`` gives the encoded masks.
    """

    def __init__(self, rles: Sequence[Dict[str, Any]], labels: np.ndarray, scores: np.ndarray,
                 bboxes: np.ndarray, height: int, width: int) -> None:
        self.rles = list(rles)
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        self.scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        self.bboxes = np.asarray(bboxes, dtype=np.float32).reshape(-1, 4)
        self.height, self.width = int(height), int(width)
        n = len(self.rles)
        if not (len(self.labels) == len(self.scores) == len(self.bboxes) == n):
            raise ValueError(f'EncodedInstanceResult fields differ in length: rles {n}, labels '
                             f'{len(self.labels)}, scores {len(self.scores)}, '
                             f'bboxes {len(self.bboxes)}')

    @classmethod
    def from_result(cls, result: 'InstanceResult') -> 'EncodedInstanceResult':
        if isinstance(result, EncodedInstanceResult):
            return result
        h, w = result.masks.shape[1:]
        return cls(encode_rles(result.masks), result.labels, result.scores, result.bboxes, h, w)

    @property
    def masks(self) -> np.ndarray:
        if not self.rles:
            return np.zeros((0, self.height, self.width), dtype=bool)
        return mask_utils.decode(self.rles).transpose(2, 0, 1).astype(bool)

    @property
    def image_size(self) -> Tuple[int, int]:
        return self.height, self.width

    def __len__(self) -> int:
        return len(self.labels)

    def to_instance_result(self) -> InstanceResult:
        return InstanceResult(self.masks, self.labels, self.scores, self.bboxes)

    def to_dict(self) -> Dict[str, Any]:
        """Plain data (lists, str, numbers): the ``--out`` entries and the per-rank parts
        gathered through ``--tmpdir``."""
        return dict(masks=[dict(size=[int(s) for s in r['size']], counts=r['counts'])
                           for r in self.rles],
                    labels=self.labels.tolist(), scores=self.scores.tolist(),
                    bboxes=self.bboxes.tolist(), height=self.height, width=self.width)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> 'EncodedInstanceResult':
        return cls(d['masks'], d['labels'], d['scores'], d['bboxes'], d['height'], d['width'])
