"""``GroupSampler``: batches whose images share one aspect-ratio group (``dataset.flag``).

The order is a pure function of ``(seed, epoch)``: a run resumed at an epoch boundary (with
``set_epoch``) sees exactly the order the uninterrupted run would have seen.
"""
from __future__ import annotations

from typing import Iterator, List

import numpy as np
from torch.utils.data import Dataset, Sampler


def group_flags(dataset: Dataset) -> np.ndarray:
    """``dataset.flag`` as int64 (all zeros, one group, if the dataset has no ``flag``)."""
    flag = getattr(dataset, 'flag', None)
    if flag is None:
        return np.zeros(len(dataset), dtype=np.int64)
    flag = np.asarray(flag).astype(np.int64).reshape(-1)
    if len(flag) != len(dataset):
        raise ValueError(f'{type(dataset).__name__}.flag has {len(flag)} entries for '
                         f'{len(dataset)} samples')
    if flag.size and flag.min() < 0:
        raise ValueError(f'{type(dataset).__name__}.flag must be >= 0, got min {flag.min()}')
    return flag


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """A NumPy generator determined by ``(seed, epoch)`` only."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch)]))


def check_positive_int(value: object, name: str, owner: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{owner}: {name} must be a positive int, got {value!r}')
    return int(value)


class GroupSampler(Sampler):
    """Shuffle within each aspect-ratio group, pad each group to a multiple of
    ``samples_per_gpu`` (random repeats), then shuffle the order of the batches (mmdet v1)."""

    def __init__(self, dataset: Dataset, samples_per_gpu: int = 1, seed: int = 0) -> None:
        self.dataset = dataset
        self.samples_per_gpu = check_positive_int(samples_per_gpu, 'samples_per_gpu', 'GroupSampler')
        self.seed = int(seed)
        self.epoch = 0
        self.flag = group_flags(dataset)
        self.group_sizes = np.bincount(self.flag) if len(self.flag) else np.zeros(0, np.int64)
        spg = self.samples_per_gpu
        self.num_samples = int(sum(-(-int(s) // spg) * spg for s in self.group_sizes))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        rng = epoch_rng(self.seed, self.epoch)
        spg = self.samples_per_gpu
        groups: List[np.ndarray] = []
        for g, size in enumerate(self.group_sizes):
            if size == 0:
                continue
            inds = rng.permutation(np.flatnonzero(self.flag == g))
            extra = -(-int(size) // spg) * spg - int(size)
            groups.append(np.concatenate([inds, rng.choice(inds, extra)]))
        if not groups:
            return iter([])
        batches = np.concatenate(groups).reshape(-1, spg)
        order = batches[rng.permutation(len(batches))].reshape(-1)
        assert len(order) == self.num_samples
        return iter(order.astype(np.int64).tolist())

    def __len__(self) -> int:
        return self.num_samples
