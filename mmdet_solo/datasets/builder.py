"""``build_dataset`` and ``build_dataloader``.

Reproducibility with ``seed`` (``build_dataloader(..., seed=s)``):

- the sampler order is a function of ``(seed, epoch)`` (``sampler.set_epoch``);
- each worker seeds ``numpy``, ``random`` and ``torch`` from ``(seed, rank, worker_id,
  epoch)`` in its ``worker_init_fn``. Workers are started anew every epoch (keep
  ``persistent_workers=False``, the default) and the indices are dealt to the workers
  round-robin, so each sample's augmentation draws depend only on ``(seed, epoch)``;
- with ``workers_per_gpu=0`` the main process seeds ``numpy`` and ``random`` (not
  ``torch``) the same way at the start of every epoch.

Call ``loader.set_epoch(epoch)`` (or ``loader.sampler.set_epoch(epoch)``, which the loader
picks up) before iterating epoch ``epoch``; a run resumed at an epoch boundary then sees
exactly the batches and augmentations of the uninterrupted run. With ``seed=None`` the
samplers use seed 0 (the same order on every rank) and no RNG is seeded.
"""
from __future__ import annotations

import copy
import gc
import random
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..registry import DATASETS, build_from_cfg
from .collate import collate
from .dataset_wrappers import ConcatDataset, RepeatDataset
from ..engine.dist import get_dist_info
from .samplers import DistributedGroupSampler, DistributedSampler, GroupSampler, TestSampler

DatasetCfg = Union[Dict[str, Any], Sequence[Dict[str, Any]]]


def _concat_dataset(cfg: Dict[str, Any], default_args: Optional[dict]) -> ConcatDataset:
    """One dataset per entry of a list-valued ``ann_file`` (prefixes may be lists too)."""
    ann_files = cfg['ann_file']
    datasets = []
    for i, ann_file in enumerate(ann_files):
        sub = copy.deepcopy(dict(cfg))
        sub['ann_file'] = ann_file
        for key in ('img_prefix', 'seg_prefix', 'proposal_file'):
            value = cfg.get(key)
            if isinstance(value, (list, tuple)):
                if len(value) != len(ann_files):
                    raise ValueError(f'dataset config: {key} has {len(value)} entries, '
                                     f'ann_file has {len(ann_files)}')
                sub[key] = value[i]
        datasets.append(build_dataset(sub, default_args))
    return ConcatDataset(datasets)


def build_dataset(cfg: DatasetCfg, default_args: Optional[dict] = None) -> Dataset:
    """Build a dataset from a config dict, a list of dicts (concatenated) or a
    ``dict(type='RepeatDataset', dataset=..., times=n)``."""
    if isinstance(cfg, (list, tuple)):
        return ConcatDataset([build_dataset(c, default_args) for c in cfg])
    if not isinstance(cfg, dict):
        raise TypeError(f'build_dataset: cfg must be a dict or a list of dicts, '
                        f'got {type(cfg).__name__}: {cfg!r}')
    if cfg.get('type') == 'RepeatDataset':
        for key in ('dataset', 'times'):
            if key not in cfg:
                raise KeyError(f"build_dataset: a RepeatDataset config needs {key!r}: {cfg!r}")
        return RepeatDataset(build_dataset(cfg['dataset'], default_args), cfg['times'])
    if cfg.get('type') == 'ConcatDataset' and 'datasets' in cfg:
        return ConcatDataset([build_dataset(c, default_args) for c in cfg['datasets']])
    if isinstance(cfg.get('ann_file'), (list, tuple)):
        return _concat_dataset(cfg, default_args)
    if any(k in cfg for k in LOADER_KEYS):  # loader settings, read by batch_size_of
        cfg = {k: v for k, v in cfg.items() if k not in LOADER_KEYS}
    return build_from_cfg(cfg, DATASETS, default_args)


# Batch-size keys a dataset dict may carry for its loader (mmdet 2.x puts
# ``samples_per_gpu`` in ``data.test``/``data.val``); build_dataset leaves them out.
LOADER_KEYS = ('imgs_per_gpu', 'samples_per_gpu')


def batch_size_of(cfg: Dict[str, Any], where: str) -> Optional[int]:
    """``imgs_per_gpu`` or its mmdet 2.x name ``samples_per_gpu`` in ``cfg`` (``None`` if
    neither is set); both with different values, or a non-positive value, is an error."""
    values = {k: cfg[k] for k in LOADER_KEYS if cfg.get(k) is not None}
    if len(set(values.values())) > 1:
        raise ValueError(f'{where}: imgs_per_gpu={values["imgs_per_gpu"]} and samples_per_gpu='
                         f'{values["samples_per_gpu"]} disagree; set one of them')
    if not values:
        return None
    value = next(iter(values.values()))
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{where}.{next(iter(values))} must be a positive int, got {value!r}')
    return value


def build_test_dataloader(dataset: Dataset, data_cfg: Dict[str, Any], split: str = 'test',
                          dist: bool = False) -> DataLoader:
    """The loader of ``data[split]`` for the test loop: batches of ``data[split].samples_per_gpu``
    (or ``imgs_per_gpu``; default 1) images, each batch one padded forward;
    ``data.workers_per_gpu`` workers (default 2); a :class:`TestSampler` (each process its
    contiguous share; with batches > 1 the images grouped by aspect ratio).

    Images of one batch are padded to the largest of them; SOLO's outputs depend on the
    padded extent (coordinate features and grid cells span the padded input, as in the
    original), so images of equal padded size give the batch-1 results and a batch of mixed
    sizes close ones (docs/GETTING_STARTED.md, "Batched inference").
    """
    batch = batch_size_of(data_cfg.get(split) or {}, f'data.{split}') or 1
    workers = int(data_cfg.get('workers_per_gpu', 2))
    rank, world_size = get_dist_info() if dist else (0, 1)
    return EpochDataLoader(dataset, batch_size=batch,
                           sampler=TestSampler(dataset, batch, world_size, rank),
                           num_workers=workers, collate_fn=collate, pin_memory=False)


def worker_seed(seed: int, rank: int, worker_id: int, epoch: int) -> int:
    """A 63-bit seed determined by ``(seed, rank, worker_id, epoch)``."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(rank), int(worker_id), int(epoch)])
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


class EpochWorkerInit:
    """``worker_init_fn`` seeding numpy / random / torch from (seed, rank, worker_id, epoch)."""

    def __init__(self, seed: int, rank: int = 0) -> None:
        self.seed = int(seed)
        self.rank = int(rank)
        self.epoch = 0

    def seed_all(self, worker_id: int, with_torch: bool = True) -> int:
        s = worker_seed(self.seed, self.rank, worker_id, self.epoch)
        np.random.seed(s % 2 ** 32)
        random.seed(s)
        if with_torch:
            torch.manual_seed(s)
        return s

    def __call__(self, worker_id: int) -> None:
        self.seed_all(worker_id)


class EpochDataLoader(DataLoader):
    """A ``DataLoader`` with ``set_epoch`` that keeps the sampler and worker seeds in step."""

    def __init__(self, *args: Any, worker_seeder: Optional[EpochWorkerInit] = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker_seeder = worker_seeder
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[Any]:
        epoch = getattr(self.sampler, 'epoch', self.epoch)  # also follow sampler.set_epoch
        if self.worker_seeder is not None:
            self.worker_seeder.epoch = int(epoch)
            if self.num_workers == 0:
                self.worker_seeder.seed_all(0, with_torch=False)
        if self.num_workers == 0:
            return super().__iter__()
        # Workers are forked here. Freezing the collector first keeps the objects the workers
        # inherit out of their collections, which would otherwise write to every inherited
        # container and turn the shared copy-on-write pages private (Python docs, gc.freeze).
        gc.freeze()
        try:
            return super().__iter__()
        finally:
            gc.unfreeze()


def build_dataloader(dataset: Dataset, imgs_per_gpu: int, workers_per_gpu: int,
                     num_gpus: int = 1, dist: bool = False, shuffle: bool = True,
                     seed: Optional[int] = None, **kwargs: Any) -> DataLoader:
    """A loader yielding :func:`collate` batches.

    Training (``shuffle=True``): ``GroupSampler`` (or ``DistributedGroupSampler`` with
    ``dist``); testing: sequential (or ``DistributedSampler(shuffle=False)``, whose padding
    repeats the test loop drops). Non-distributed batches hold ``num_gpus * imgs_per_gpu``
    images. ``kwargs`` go to ``torch.utils.data.DataLoader``. See the module docstring
    for ``seed`` and ``set_epoch``.
    """
    for name, value in (('imgs_per_gpu', imgs_per_gpu), ('num_gpus', num_gpus)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'build_dataloader: {name} must be a positive int, got {value!r}')
    if not isinstance(workers_per_gpu, int) or workers_per_gpu < 0:
        raise ValueError(f'build_dataloader: workers_per_gpu must be an int >= 0, '
                         f'got {workers_per_gpu!r}')
    for key in ('sampler', 'batch_sampler', 'worker_init_fn', 'batch_size', 'shuffle'):
        if key in kwargs:
            raise TypeError(f'build_dataloader: {key!r} is set by build_dataloader itself')
    sampler_seed = 0 if seed is None else int(seed)
    rank = 0
    if dist:
        rank, world_size = get_dist_info()
        if shuffle:
            sampler = DistributedGroupSampler(dataset, imgs_per_gpu, world_size, rank,
                                              seed=sampler_seed)
        else:
            sampler = DistributedSampler(dataset, world_size, rank, shuffle=False)
        batch_size, num_workers = imgs_per_gpu, workers_per_gpu
    else:
        sampler = GroupSampler(dataset, imgs_per_gpu, seed=sampler_seed) if shuffle else None
        batch_size, num_workers = num_gpus * imgs_per_gpu, num_gpus * workers_per_gpu
    seeder = EpochWorkerInit(seed, rank) if seed is not None else None
    if seeder is not None and kwargs.get('persistent_workers') and num_workers > 0:
        warnings.warn('build_dataloader: persistent_workers=True keeps the workers of epoch 0, '
                      'so their RNG is not re-seeded per epoch; augmentations are then not '
                      'reproducible across a resume')
    kwargs.setdefault('collate_fn', collate)
    kwargs.setdefault('pin_memory', False)
    return EpochDataLoader(dataset, batch_size=batch_size, sampler=sampler,
                           num_workers=num_workers, worker_init_fn=seeder,
                           worker_seeder=seeder, **kwargs)


__all__: List[str] = ['build_dataset', 'build_dataloader', 'build_test_dataloader',
                      'batch_size_of', 'EpochDataLoader', 'EpochWorkerInit', 'worker_seed']
