"""Dataset wrappers: ``ConcatDataset`` and ``RepeatDataset`` (keep ``CLASSES`` and ``flag``)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from torch.utils.data import ConcatDataset as _ConcatDataset
from torch.utils.data import Dataset

from ..registry import DATASETS


@DATASETS.register_module()
class ConcatDataset(_ConcatDataset):
    """``torch`` ``ConcatDataset`` that also concatenates the aspect-ratio ``flag``.

    All datasets must have the same ``CLASSES`` (labels would mean different things otherwise).
    """

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        datasets = list(datasets)
        if not datasets:
            raise ValueError('ConcatDataset: got an empty list of datasets')
        super().__init__(datasets)
        self.CLASSES = getattr(datasets[0], 'CLASSES', None)
        for i, d in enumerate(datasets[1:], 1):
            if tuple(getattr(d, 'CLASSES', None) or ()) != tuple(self.CLASSES or ()):
                raise ValueError(f'ConcatDataset: dataset #{i} ({type(d).__name__}) has CLASSES '
                                 f'{getattr(d, "CLASSES", None)}, dataset #0 has {self.CLASSES}')
        if all(hasattr(d, 'flag') for d in datasets):
            self.flag = np.concatenate([np.asarray(d.flag) for d in datasets])


@DATASETS.register_module()
class RepeatDataset(Dataset):
    """Repeat ``dataset`` ``times`` times (fewer, longer epochs for small datasets)."""

    def __init__(self, dataset: Dataset, times: int) -> None:
        if not isinstance(times, int) or times < 1:
            raise ValueError(f'RepeatDataset: times must be a positive int, got {times!r}')
        self.dataset = dataset
        self.times = times
        self.CLASSES = getattr(dataset, 'CLASSES', None)
        if hasattr(dataset, 'flag'):
            self.flag = np.tile(np.asarray(dataset.flag), times)
        self._ori_len = len(dataset)

    def __getitem__(self, idx: int) -> Any:
        if not -len(self) <= idx < len(self):
            raise IndexError(f'RepeatDataset: index {idx} out of range for length {len(self)}')
        return self.dataset[idx % self._ori_len]

    def __len__(self) -> int:
        return self.times * self._ori_len
