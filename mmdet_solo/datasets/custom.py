"""``CustomDataset``: the shared machinery of the detection datasets (mmdet v1 semantics).

A subclass implements :meth:`load_annotations` (returning the per-image ``img_infos`` with
``filename``, ``height``, ``width``) and :meth:`get_ann_info`. This class adds the
class-name handling, path checks, the aspect-ratio ``flag`` for the group samplers and the
pipeline calls (``prepare_train_img`` / ``prepare_test_img``).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import os.path as osp
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from torch.utils.data import Dataset

from ..registry import DATASETS
from .pipelines import Compose
from .pipelines.loading import CorruptImageError
from .serialize import SerializedList

ClassesArg = Union[None, str, Sequence[str]]
MAX_RETRIES = 100  # prepare_train_img retries before giving up on a dropping pipeline


def get_classes(classes: ClassesArg, default: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """Resolve ``classes``: ``None`` → ``default``; a str → a text file with one name a line."""
    if classes is None:
        if default is None:
            raise ValueError('no class names: pass classes=(...) or a path to a text file '
                             'with one class name per line')
        return tuple(default)
    if isinstance(classes, str):
        if not osp.isfile(classes):
            raise FileNotFoundError(f'classes: {classes!r} is not a file; pass a tuple/list of '
                                    f'class names or a path to a text file with one name per line')
        with open(classes, encoding='utf-8') as f:
            names = tuple(line.strip() for line in f if line.strip())
        if not names:
            raise ValueError(f'classes file {classes!r} has no class names')
    elif isinstance(classes, (list, tuple)):
        names = tuple(classes)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f'classes must be a non-empty list of non-empty strings, got {classes!r}')
    else:
        raise TypeError(f'classes must be None, a tuple/list of names or a file path, '
                        f'got {type(classes).__name__}: {classes!r}')
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f'classes: duplicate class names {dups}')
    return names


def load_proposals(path: str) -> List[Any]:
    """Load a proposal file: a ``.json`` list with one ``[[x1, y1, x2, y2(, score)], ...]``
    per image. Pickle files are refused: unpickling runs code from the file."""
    if not path.endswith('.json'):
        raise ValueError(f'proposal_file {path!r}: expected a .json file (one list of boxes '
                         'per image); pickle proposal files are not read, as unpickling can '
                         'run arbitrary code (SOLO does not use proposals)')
    if not osp.isfile(path):
        raise FileNotFoundError(f'proposal_file not found: {path!r}')
    with open(path, encoding='utf-8') as f:
        proposals = json.load(f)
    if not isinstance(proposals, list):
        raise ValueError(f'proposal_file {path!r}: expected a JSON list (one entry per image), '
                         f'got {type(proposals).__name__}')
    return proposals


def release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``), so a
    parsed annotation file leaves no resident memory behind (nor in forked workers)."""
    gc.collect()
    name = ctypes.util.find_library('c')
    if name:
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass


def find_missing_files(prefix: Optional[str], names: Sequence[str]) -> List[str]:
    """Paths of ``prefix/name`` that do not exist (one directory listing when possible)."""
    listing: Optional[set] = None
    if prefix and osp.isdir(prefix):
        try:
            with os.scandir(prefix) as it:
                listing = {e.name for e in it}
        except OSError:
            listing = None
    missing = []
    for name in names:
        if listing is not None and '/' not in name and os.sep not in name:
            ok = name in listing
        else:
            ok = osp.exists(osp.join(prefix, name) if prefix else name)
        if not ok:
            missing.append(osp.join(prefix, name) if prefix else name)
    return missing


@DATASETS.register_module()
class CustomDataset(Dataset):
    """Base detection dataset; see the module docstring.

    Args:
        ann_file: annotation file.
        pipeline: list of transform configs / callables (see ``Compose``).
        classes: class names (tuple/list or a text file path); default ``self.CLASSES``.
        img_prefix: folder of the images ('' = paths relative to the working directory).
        test_mode: keep every image, no filtering, no ``ann_info`` in the samples.
        filter_empty_gt: in training, drop images without usable annotations.
        min_size: in training, drop images whose shorter side is below this.
        seg_prefix: folder of semantic segmentation maps (unused by SOLO).
        proposal_file: a ``.json`` list of per-image proposals (unused by SOLO).

    A corrupt or truncated image file (``CorruptImageError``): training skips the sample with
    a warning naming the file (counted in ``skipped_images``, per process) and takes another
    image of the same aspect group; testing stops with the error, as every image needs a result.

    Per-image data (``img_infos``, annotations, proposals) is kept in
    :class:`~mmdet_solo.datasets.serialize.SerializedList` s once the dataset is built, so
    data-loader workers share it; ``img_infos[i]`` decodes one image's info dict.
    """

    CLASSES: Optional[Tuple[str, ...]] = None
    skipped_images = 0  # training samples skipped because their image file is corrupt

    def __init__(self, ann_file: str, pipeline: Sequence[Any], classes: ClassesArg = None,
                 img_prefix: Optional[str] = '', test_mode: bool = False,
                 filter_empty_gt: bool = True, min_size: int = 32,
                 seg_prefix: Optional[str] = None, proposal_file: Optional[str] = None) -> None:
        name = type(self).__name__
        if not isinstance(ann_file, str) or not osp.isfile(ann_file):
            raise FileNotFoundError(f'{name}: annotation file not found: {ann_file!r}')
        if img_prefix and not osp.isdir(img_prefix):
            raise FileNotFoundError(f'{name}: image folder (img_prefix) not found: {img_prefix!r}')
        self.ann_file = ann_file
        self.img_prefix = img_prefix
        self.seg_prefix = seg_prefix
        self.proposal_file = proposal_file
        self.test_mode = test_mode
        self.filter_empty_gt = filter_empty_gt
        self.min_size = min_size
        self.CLASSES = get_classes(classes, type(self).CLASSES)

        # Parsed in a helper thread: glibc gives a thread its own malloc arena, so the garbage of
        # the parse (GBs for COCO train) is not left as a fragmented free heap in the main
        # arena, where every forked data-loader worker's allocations would spread over it and
        # make its memory grow all epoch (measured: BENCHMARKS.md "Scale").
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix='dataset-build') as pool:
            pool.submit(self._build).result()
        self.pipeline = Compose(pipeline)

    def _build(self) -> None:
        """Read, filter and serialize the annotations (see ``__init__``)."""
        name = type(self).__name__
        self.img_infos: List[Dict[str, Any]] = self.load_annotations(self.ann_file)
        proposal_file = self.proposal_file
        self.proposals = load_proposals(proposal_file) if proposal_file is not None else None
        if self.proposals is not None and len(self.proposals) != len(self.img_infos):
            raise ValueError(f'{name}: proposal_file {proposal_file!r} has {len(self.proposals)} '
                             f'entries, the annotation file {len(self.img_infos)} images')
        self.filter_stats: Dict[str, int] = {}
        if not self.test_mode:
            total = len(self.img_infos)
            self._select(self._filter_imgs(self.min_size))
            if not self.img_infos:
                raise ValueError(
                    f'{name}: no training images left in {self.ann_file!r} after filtering '
                    f'{total} images ({self._filter_summary()}); check the classes, '
                    f'filter_empty_gt={self.filter_empty_gt} and min_size={self.min_size}')
        self._check_image_files()
        self._set_group_flag()
        self._serialize()

    # ----------------------------------------------------------------- subclass hooks
    def load_annotations(self, ann_file: str) -> List[Dict[str, Any]]:
        raise NotImplementedError(f'{type(self).__name__} must implement load_annotations')

    def get_ann_info(self, idx: int) -> Dict[str, Any]:
        raise NotImplementedError(f'{type(self).__name__} must implement get_ann_info')

    def _filter_imgs(self, min_size: int = 32) -> List[int]:
        """Indices of the images kept for training (here: large enough)."""
        keep = [i for i, info in enumerate(self.img_infos)
                if min(info['width'], info['height']) >= min_size]
        self.filter_stats = {'smaller than min_size': len(self.img_infos) - len(keep)}
        return keep

    def _select(self, inds: Sequence[int]) -> None:
        """Keep only the images ``inds`` (subclasses also subset their own per-image lists)."""
        self.img_infos = [self.img_infos[i] for i in inds]
        if self.proposals is not None:
            self.proposals = [self.proposals[i] for i in inds]

    def _serialize(self) -> None:
        """Move the per-image lists into flat buffers (subclasses serialize theirs first)."""
        self.img_infos = SerializedList(self.img_infos)
        if self.proposals is not None:
            self.proposals = SerializedList(self.proposals)
        release_freed_memory()

    # ----------------------------------------------------------------- helpers
    def _filter_summary(self) -> str:
        parts = [f'{n} {why}' for why, n in self.filter_stats.items() if n]
        return ', '.join(parts) if parts else 'none filtered'

    def _check_image_files(self, shown: int = 5) -> None:
        missing = find_missing_files(self.img_prefix, [i['filename'] for i in self.img_infos])
        if missing:
            raise FileNotFoundError(
                f'{type(self).__name__}: {len(missing)} of {len(self.img_infos)} images listed in '
                f'{self.ann_file!r} are missing on disk (img_prefix={self.img_prefix!r}), '
                f'e.g. {missing[:shown]}')

    def _set_group_flag(self) -> None:
        """``flag[i] = 1`` for landscape images (w / h > 1), else 0 (the group sampler key)."""
        w = np.array([info['width'] for info in self.img_infos], dtype=np.float64)
        h = np.array([info['height'] for info in self.img_infos], dtype=np.float64)
        self.flag = (w / np.maximum(h, 1e-12) > 1).astype(np.uint8)

    def __len__(self) -> int:
        return len(self.img_infos)

    def pre_pipeline(self, results: Dict[str, Any]) -> None:
        results['img_prefix'] = self.img_prefix
        results['seg_prefix'] = self.seg_prefix
        results['proposal_file'] = self.proposal_file
        results['bbox_fields'] = []
        results['mask_fields'] = []
        results['seg_fields'] = []

    def _rand_another(self, idx: int) -> int:
        """A random other image of ``idx``'s aspect group (``idx`` itself if it is alone)."""
        pool = np.flatnonzero((self.flag == self.flag[idx]) & (np.arange(len(self.flag)) != idx))
        return int(np.random.choice(pool)) if len(pool) else idx

    def _run_pipeline(self, idx: int, results: Dict[str, Any]) -> Any:
        try:
            return self.pipeline(results)
        except Exception as e:  # name the sample; keep the exception type
            e.add_note(f'{type(self).__name__}: while processing sample {idx} '
                       f"(image {self.img_infos[idx].get('filename')!r}, "
                       f'img_prefix {self.img_prefix!r})')
            raise

    def prepare_train_img(self, idx: int) -> Optional[Dict[str, Any]]:
        results = dict(img_info=self.img_infos[idx], ann_info=self.get_ann_info(idx))
        if self.proposals is not None:
            results['proposals'] = np.array(self.proposals[idx], dtype=np.float32)
        self.pre_pipeline(results)
        return self._run_pipeline(idx, results)

    def prepare_test_img(self, idx: int) -> Dict[str, Any]:
        results = dict(img_info=self.img_infos[idx])
        if self.proposals is not None:
            results['proposals'] = np.array(self.proposals[idx], dtype=np.float32)
        self.pre_pipeline(results)
        return self._run_pipeline(idx, results)

    def __getitem__(self, idx: int) -> Dict[str, Any]:
        if self.test_mode:
            return self.prepare_test_img(idx)
        first = idx
        for _ in range(MAX_RETRIES):
            try:
                data = self.prepare_train_img(idx)
            except CorruptImageError as e:  # training skips a broken image, counted and named
                self.skipped_images += 1
                warnings.warn(f'{e}; skipped in training ({self.skipped_images} skipped so far '
                              'in this process)')
                data = None
            if data is not None:
                return data
            idx = self._rand_another(idx)  # the pipeline dropped it: another of the same group
        raise RuntimeError(f'{type(self).__name__}: the pipeline returned None for {MAX_RETRIES} '
                           f'samples in a row (starting at index {first}); check the pipeline')
