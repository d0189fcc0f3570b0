"""``InstanceResult``: the per-image output of every detector, evaluator and visualiser."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np
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
