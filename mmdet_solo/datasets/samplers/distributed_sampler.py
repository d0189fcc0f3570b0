"""Distributed samplers: ``DistributedGroupSampler`` (training), ``DistributedSampler``
(in order), ``TestSampler`` (the test loop's: contiguous shares, images grouped by shape for
batches > 1).

Every rank gets the same number of samples (padding by repetition), and the order is a pure
function of ``(seed, epoch)``, identical on all ranks before the per-rank slice.
"""
from __future__ import annotations

import math
from typing import Iterator, List, Optional, Tuple

import numpy as np
from torch.utils.data import Dataset, Sampler

from ...engine.dist import get_dist_info
from .group_sampler import check_positive_int, epoch_rng, group_flags


def _replicas_and_rank(num_replicas: Optional[int], rank: Optional[int], owner: str
                       ) -> Tuple[int, int]:
    _rank, _world = get_dist_info()
    num_replicas = _world if num_replicas is None else num_replicas
    rank = _rank if rank is None else rank
    num_replicas = check_positive_int(num_replicas, 'num_replicas', owner)
    if not isinstance(rank, (int, np.integer)) or not 0 <= rank < num_replicas:
        raise ValueError(f'{owner}: rank must be in [0, {num_replicas}), got {rank!r}')
    return num_replicas, int(rank)


class DistributedGroupSampler(Sampler):
    """Group-pure batches split across ranks (mmdet v1 ``DistributedGroupSampler``).

    Each group is shuffled and padded by repetition to a multiple of
    ``samples_per_gpu * num_replicas``; the batches are shuffled and rank ``r`` takes the
    ``r``-th contiguous block of ``num_samples`` indices.
    """

    def __init__(self, dataset: Dataset, samples_per_gpu: int = 1,
                 num_replicas: Optional[int] = None, rank: Optional[int] = None,
                 seed: int = 0) -> None:
        owner = 'DistributedGroupSampler'
        self.dataset = dataset
        self.samples_per_gpu = check_positive_int(samples_per_gpu, 'samples_per_gpu', owner)
        self.num_replicas, self.rank = _replicas_and_rank(num_replicas, rank, owner)
        self.seed = int(seed)
        self.epoch = 0
        self.flag = group_flags(dataset)
        self.group_sizes = np.bincount(self.flag) if len(self.flag) else np.zeros(0, np.int64)
        per_block = self.samples_per_gpu * self.num_replicas
        self.num_samples = int(sum(math.ceil(int(s) / per_block) * self.samples_per_gpu
                                   for s in self.group_sizes))
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        rng = epoch_rng(self.seed, self.epoch)
        spg = self.samples_per_gpu
        per_block = spg * self.num_replicas
        indices: List[np.ndarray] = []
        for g, size in enumerate(self.group_sizes):
            size = int(size)
            if size == 0:
                continue
            inds = rng.permutation(np.flatnonzero(self.flag == g))
            padded = math.ceil(size / per_block) * per_block
            indices.append(np.resize(inds, padded))  # pad by repeating the shuffled list
        if not indices:
            return iter([])
        batches = np.concatenate(indices).reshape(-1, spg)
        order = batches[rng.permutation(len(batches))].reshape(-1)
        assert len(order) == self.total_size
        offset = self.num_samples * self.rank
        return iter(order[offset:offset + self.num_samples].astype(np.int64).tolist())

    def __len__(self) -> int:
        return self.num_samples


class DistributedSampler(Sampler):
    """Test-time split: the (padded) index list ``0..N-1`` strided over ranks.

    Rank ``r`` gets ``indices[r::num_replicas]`` after padding the list by repeating its
    start to a multiple of ``num_replicas`` (as ``torch``'s sampler). ``shuffle=True`` permutes
    deterministically from ``(seed, epoch)``.
    """

    def __init__(self, dataset: Dataset, num_replicas: Optional[int] = None,
                 rank: Optional[int] = None, shuffle: bool = False, seed: int = 0) -> None:
        self.dataset = dataset
        self.num_replicas, self.rank = _replicas_and_rank(num_replicas, rank, 'DistributedSampler')
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0
        self.num_samples = math.ceil(len(dataset) / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            indices = epoch_rng(self.seed, self.epoch).permutation(n)
        else:
            indices = np.arange(n)
        if n:
            indices = np.resize(indices, self.total_size)
        return iter(indices[self.rank::self.num_replicas].astype(np.int64).tolist())

    def __len__(self) -> int:
        return self.num_samples


def aspect_ratio_order(dataset: Dataset) -> np.ndarray:
    """Indices of ``dataset`` sorted (stably) by image aspect ratio ``width / height`` of its
    ``img_infos``: images of one size, which the test pipeline pads to one input size, end up
    next to each other. ``arange`` for a dataset without ``img_infos``."""
    infos = getattr(dataset, 'img_infos', None)
    if infos is None:
        return np.arange(len(dataset))
    ratio = np.array([(i['width'] / i['height'], i['width']) for i in infos], dtype=np.float64)
    return np.lexsort((ratio[:, 1], ratio[:, 0]))


class TestSampler(Sampler):
    """The test loop's sampler: every image once (the last ranks padded by repetition, which
    the loop drops), rank ``r`` taking the ``r``-th contiguous share.

    With ``samples_per_gpu > 1`` the images are ordered by aspect ratio
    (:func:`aspect_ratio_order`), so that a padded batch mixes input sizes as little as
    possible: SOLO's outputs depend on the padded extent (docs/GETTING_STARTED.md, "Batched
    inference"). The test loop puts the results back in dataset order.
    """

    def __init__(self, dataset: Dataset, samples_per_gpu: int = 1,
                 num_replicas: Optional[int] = None, rank: Optional[int] = None) -> None:
        owner = 'TestSampler'
        self.samples_per_gpu = check_positive_int(samples_per_gpu, 'samples_per_gpu', owner)
        self.num_replicas, self.rank = _replicas_and_rank(num_replicas, rank, owner)
        n = len(dataset)
        self.order = aspect_ratio_order(dataset) if self.samples_per_gpu > 1 else np.arange(n)
        self.num_samples = math.ceil(n / self.num_replicas)

    def __iter__(self) -> Iterator[int]:
        if not len(self.order):
            return iter([])
        order = np.resize(self.order, self.num_samples * self.num_replicas)
        share = order[self.rank * self.num_samples:(self.rank + 1) * self.num_samples]
        return iter(share.astype(np.int64).tolist())

    def __len__(self) -> int:
        return self.num_samples

