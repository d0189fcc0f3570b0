"""What SOLO is taught from a dataset: samples as training sees them and their grid assignment.

Shared by ``tools/browse_dataset.py`` (pictures) and ``tools/analyze_dataset.py`` (the dataset
doctor). Everything about *which cells an instance learns* comes from the head's own
``BaseGridHead.get_targets`` (the code its loss calls); this module only counts.

- :func:`analysis_dataset` builds ``data[split]`` with the **training** pipeline and
  annotations (``test_mode=False``); with ``read_images=False`` the image file is not read:
  a blank image of the annotated size goes through the same geometric transforms (every box,
  mask and grid cell is the same, see the tests; photometric ``Normalize`` is skipped).
- :func:`prepare_sample` runs image ``i``'s training pipeline with its random draws (flip,
  multi-scale) seeded by ``(seed, i)``: the same sample in both tools, with any workers.
- :func:`assign_sample` is one image's assignment, as the loss computes it for a batch of
  that one image (in training, a batch is padded to its largest image, and the grid spans
  that padded extent; the group sampler batches images of one orientation together).
- :func:`image_record` reduces an image to a few small arrays; :class:`DatasetStats`
  accumulates them into flat per-instance arrays and counters (no masks are kept), and
  :meth:`DatasetStats.report` gives the JSON-able report.

Cost: one training-pipeline pass per image (mask decoding and resizing dominate without image
reading) plus the assignment (``O(K * H * W)`` for the centres of mass, as in training); it
grows linearly with images and instances, memory with the instances only (~28 bytes each).
"""
from __future__ import annotations

import array
import copy
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from ..models.heads.targets import LevelAssignment
from ..utils.image_ops import normalize_scales
from .analysis_report import MIN_USEFUL_SIZE, findings, format_report, plot_report, suggest
from .builder import build_dataset
from .dataset_wrappers import ConcatDataset, RepeatDataset
from .pipelines.loading import CorruptImageError, LoadImageFromFile
from .pipelines.transforms import Normalize

PERCENTILES = (0, 1, 5, 25, 50, 75, 95, 99, 100)


# ------------------------------------------------------------------------------ the data
class BlankImage:
    """Stands in for ``LoadImageFromFile``: a zero (H, W, 3) uint8 image of the size in
    ``img_info`` (the geometry of the sample is that of the real image; nothing is read)."""

    def __call__(self, results: dict) -> dict:
        info = results['img_info']
        img = np.zeros((int(info['height']), int(info['width']), 3), dtype=np.uint8)
        results['filename'] = info.get('filename')
        results['img'] = img
        results['img_shape'] = img.shape
        results['ori_shape'] = img.shape
        return results

    def __repr__(self) -> str:
        return 'BlankImage()'


class NormalizeMeta:
    """Stands in for ``Normalize`` on a blank image: records ``img_norm_cfg`` only."""

    def __init__(self, normalize: Normalize) -> None:
        self.cfg = dict(mean=normalize.mean, std=normalize.std, to_rgb=normalize.to_rgb)

    def __call__(self, results: dict) -> dict:
        results['img_norm_cfg'] = dict(self.cfg)
        return results

    def __repr__(self) -> str:
        return 'NormalizeMeta()'


def _unwrap(cfg: Any) -> Any:
    """A dataset config without its ``RepeatDataset`` wrapper (the analysis reads each image
    once)."""
    while isinstance(cfg, dict) and cfg.get('type') == 'RepeatDataset':
        cfg = cfg['dataset']
    return cfg


def _train_pipeline(cfg: Any) -> Optional[list]:
    """The pipeline of ``data.train`` (of its first dataset if it is a list or a concat)."""
    train = _unwrap((cfg.get('data') or {}).get('train'))
    while True:
        if isinstance(train, (list, tuple)) and train:
            train = _unwrap(train[0])
        elif isinstance(train, dict) and train.get('type') == 'ConcatDataset':
            train = _unwrap((train.get('datasets') or [None])[0])
        else:
            break
    return train.get('pipeline') if isinstance(train, dict) else None


def leaf_datasets(dataset: Dataset) -> List[Dataset]:
    """The datasets holding images (``ConcatDataset`` / ``RepeatDataset`` taken apart)."""
    if isinstance(dataset, ConcatDataset):
        return [leaf for d in dataset.datasets for leaf in leaf_datasets(d)]
    if isinstance(dataset, RepeatDataset):
        return leaf_datasets(dataset.dataset)
    return [dataset]


def analysis_dataset(cfg: Any, split: str = 'train', read_images: bool = True) -> List[Dataset]:
    """The datasets of ``cfg.data[split]`` with the training pipeline, annotations loaded
    (``test_mode=False``); without ``read_images`` a blank image replaces the file (and
    ``Normalize`` is skipped). Returns the leaf datasets (one unless ``ann_file`` is a list
    or the config a ``ConcatDataset``)."""
    data = cfg.get('data') or {}
    if split not in ('train', 'val', 'test') or not isinstance(data.get(split), (dict, list)):
        raise KeyError(f"the config has no data.{split} dataset (expected 'train', 'val' or "
                       "'test' with a dataset dict)")
    pipeline = _train_pipeline(cfg)
    if not pipeline:
        raise KeyError('the config has no data.train.pipeline (the training pipeline is what '
                       'is analysed)')

    def with_train_pipeline(ds_cfg: Any) -> Any:
        if isinstance(ds_cfg, (list, tuple)):
            return [with_train_pipeline(c) for c in ds_cfg]
        ds_cfg = copy.deepcopy(dict(_unwrap(ds_cfg)))
        if ds_cfg.get('type') == 'ConcatDataset':
            ds_cfg['datasets'] = [with_train_pipeline(c) for c in ds_cfg['datasets']]
            return ds_cfg
        ds_cfg['pipeline'] = copy.deepcopy(list(pipeline))
        ds_cfg['test_mode'] = False
        for key in ('samples_per_gpu', 'imgs_per_gpu'):
            ds_cfg.pop(key, None)
        return ds_cfg

    leaves = leaf_datasets(build_dataset(with_train_pipeline(data[split])))
    for ds in leaves:
        if not hasattr(ds, 'get_ann_info') or not hasattr(ds, 'prepare_train_img'):
            raise TypeError(f'{type(ds).__name__}: the analysis needs a CustomDataset '
                            '(get_ann_info, prepare_train_img)')
        if not read_images:
            ts = ds.pipeline.transforms
            for k, t in enumerate(ts):
                if isinstance(t, LoadImageFromFile):
                    ts[k] = BlankImage()
                elif isinstance(t, Normalize):
                    ts[k] = NormalizeMeta(t)
    return leaves


def build_grid_head(cfg: Any) -> Any:
    """The config's ``model.bbox_head`` (a ``BaseGridHead``: its ``get_targets`` and grid
    settings; the weights are not needed)."""
    from .. import models  # noqa: F401  (registers the heads)
    from ..models.heads.base_head import BaseGridHead
    from ..registry import HEADS
    head_cfg = (cfg.get('model') or {}).get('bbox_head')
    if not isinstance(head_cfg, dict):
        raise KeyError('the config has no model.bbox_head dict')
    head = HEADS.build(copy.deepcopy(dict(head_cfg)))
    if not isinstance(head, BaseGridHead):
        raise TypeError(f'model.bbox_head is a {type(head).__name__}, not a SOLO grid head')
    return head


def sample_seed(seed: int, idx: int) -> int:
    """The numpy seed of image ``idx``'s random pipeline draws."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(idx)]).generate_state(1)[0])


def prepare_sample(dataset: Dataset, idx: int, seed: int = 0) -> Optional[dict]:
    """Image ``idx`` through the training pipeline, random draws seeded by ``(seed, idx)``
    (``None`` if the pipeline drops it). The global numpy RNG state is kept."""
    state = np.random.get_state()
    np.random.seed(sample_seed(seed, idx))
    try:
        return dataset.prepare_train_img(idx)
    finally:
        np.random.set_state(state)


def assignment_input_size(pad_shape: Sequence[int]) -> Tuple[int, int]:
    """(H, W) the loss maps centres to cells with: 4 x the stride-4 feature size of a padded
    input of ``pad_shape`` (``ceil(H / 4)`` after the stem's two stride-2 steps)."""
    return 4 * math.ceil(int(pad_shape[0]) / 4), 4 * math.ceil(int(pad_shape[1]) / 4)


def sample_targets(sample: dict
                   ) -> Tuple[torch.Tensor, torch.Tensor, np.ndarray, Tuple[int, int]]:
    """``(gt_bboxes, gt_labels, gt_masks, input_size)`` of a training sample (masks padded to
    the input size, as the collate function pads them)."""
    for key in ('gt_bboxes', 'gt_labels', 'gt_masks', 'img_metas'):
        if key not in sample:
            raise KeyError(f"the training pipeline's sample has no {key!r}: its Collect must "
                           "keep 'gt_bboxes', 'gt_labels' and 'gt_masks' (and LoadAnnotations "
                           'needs with_mask=True)')
    meta = sample['img_metas']
    pad = meta.get('pad_shape', meta.get('img_shape'))
    size = assignment_input_size(pad)
    masks = np.asarray(sample['gt_masks'], dtype=np.uint8)
    if masks.shape[1:] != size:
        out = np.zeros((len(masks),) + size, dtype=np.uint8)
        h, w = min(size[0], masks.shape[1]), min(size[1], masks.shape[2])
        out[:, :h, :w] = masks[:, :h, :w]
        masks = out
    return (torch.as_tensor(sample['gt_bboxes']).float().reshape(-1, 4),
            torch.as_tensor(sample['gt_labels']).long().reshape(-1), masks, size)


def assign_targets(head: Any, bboxes: torch.Tensor, labels: torch.Tensor, masks: np.ndarray,
                   size: Tuple[int, int]) -> List[LevelAssignment]:
    """The head's grid assignment (``head.get_targets``) of one image's targets, as
    :func:`sample_targets` gives them."""
    assigns, _ = head.get_targets([bboxes], [labels], [masks], size, torch.device('cpu'))
    return assigns[0]


def assign_sample(head: Any, sample: dict) -> List[LevelAssignment]:
    """The head's grid assignment of one training sample."""
    return assign_targets(head, *sample_targets(sample))


def box_scale(bboxes: torch.Tensor) -> torch.Tensor:
    """``sqrt(w * h)`` of (K, 4) boxes as ``assign_grid_cells`` computes it (float32)."""
    b = bboxes.float()
    return torch.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))


# ------------------------------------------------------------------------ per image
def image_record(head: Any, sample: dict, levels: Optional[List[LevelAssignment]] = None,
                 ori_bboxes: Optional[np.ndarray] = None, num_crowd: int = 0) -> Dict[str, Any]:
    """The counts of one sample and its assignment (computed if ``levels`` is None).

    Per instance: ``labels``, ``scale`` (sqrt(w*h) at the input), ``ori_scale`` (in the
    original image, if ``ori_bboxes``), ``level_bits`` (bit l: assigned to level l),
    ``claimed`` / ``won`` (cells over all levels it is a positive of / it keeps the label of:
    the later instance wins a shared cell), ``in_cell`` (its box fits inside one cell of the
    finest level it is assigned to), ``empty`` (no mask pixel left after the pipeline).
    Per level (arrays of length L): ``lvl_instances``, ``lvl_pairs`` (instance-cell pairs),
    ``lvl_cells`` (positive cells), ``lvl_shared`` (cells claimed by 2+ instances),
    ``lvl_lost`` (claims that lose their cell's label to a later instance).
    """
    bboxes, labels, masks, size = sample_targets(sample)
    if levels is None:
        levels = assign_targets(head, bboxes, labels, masks, size)
    k, num_levels = len(labels), len(levels)
    claimed = torch.zeros(k, dtype=torch.long)
    won = torch.zeros(k, dtype=torch.long)
    bits = torch.zeros(k, dtype=torch.long)
    cell_w = torch.full((k,), math.inf)
    cell_h = torch.full((k,), math.inf)
    lvl = {key: np.zeros(num_levels, dtype=np.int64)
           for key in ('lvl_instances', 'lvl_pairs', 'lvl_cells', 'lvl_shared', 'lvl_lost')}
    for li, a in enumerate(levels):
        inst = a.inst_inds.cpu()
        per_inst = torch.bincount(inst, minlength=k)
        owner = a.cell_owner().cpu()
        winners = inst[owner[owner >= 0]]
        claims = torch.bincount(a.cells.cpu(), minlength=a.num_grid ** 2)
        here = per_inst > 0
        claimed += per_inst
        won += torch.bincount(winners, minlength=k)
        bits |= here.long() << li
        first = here & torch.isinf(cell_w)  # the finest assigned level sets the cell size
        cell_w[first] = size[1] / a.num_grid
        cell_h[first] = size[0] / a.num_grid
        lvl['lvl_instances'][li] = int(here.sum())
        lvl['lvl_pairs'][li] = len(inst)
        lvl['lvl_cells'][li] = int((claims > 0).sum())
        lvl['lvl_shared'][li] = int((claims > 1).sum())
        lvl['lvl_lost'][li] = len(inst) - int((claims > 0).sum())
    w = bboxes[:, 2] - bboxes[:, 0]
    h = bboxes[:, 3] - bboxes[:, 1]
    record = dict(
        labels=labels.numpy().astype(np.int32),
        scale=box_scale(bboxes).numpy().astype(np.float32),
        ori_scale=(box_scale(torch.as_tensor(ori_bboxes).reshape(-1, 4)).numpy()
                   .astype(np.float32) if ori_bboxes is not None and len(ori_bboxes) == k
                   else np.full(k, np.nan, np.float32)),
        level_bits=bits.numpy().astype(np.uint8),
        claimed=claimed.numpy().astype(np.int32),
        won=won.numpy().astype(np.int32),
        in_cell=((w < cell_w) & (h < cell_h)).numpy(),
        empty=~masks.reshape(k, -1).any(1) if k else np.zeros(0, bool),
        num_crowd=int(num_crowd), input_size=size, **lvl)
    return record


class RecordStream(Dataset):
    """``image_record`` of every image of a dataset, for a ``DataLoader`` with
    ``batch_size=None`` (workers do the pipeline and the assignment; only the small records
    travel). An image the pipeline drops gives ``{'dropped': True}``; one whose file cannot
    be decoded ``{'corrupt': message}``."""

    def __init__(self, dataset: Dataset, head: Any, seed: int = 0) -> None:
        self.dataset = dataset
        self.head = head
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> Dict[str, Any]:
        ann = self.dataset.get_ann_info(idx)
        try:
            sample = prepare_sample(self.dataset, idx, self.seed)
        except CorruptImageError as e:
            return dict(corrupt=str(e))
        if sample is None:
            return dict(dropped=True)
        ignore = ann.get('bboxes_ignore')
        return image_record(self.head, sample, ori_bboxes=np.asarray(ann['bboxes']),
                            num_crowd=0 if ignore is None else len(ignore))


def worker_init(_: int) -> None:
    """Data-loader workers: one thread each (the workers are the parallelism)."""
    torch.set_num_threads(1)


# ------------------------------------------------------------------------ accumulation
# per-instance columns and their types, kept in flat ``array.array`` buffers
_INSTANCE_TYPES = dict(labels=np.int32, scale=np.float32, ori_scale=np.float32,
                       level_bits=np.uint8, claimed=np.int32, won=np.int32, in_cell=np.uint8,
                       empty=np.uint8)
_INSTANCE_KEYS = tuple(_INSTANCE_TYPES)
_PER_IMAGE_KEYS = ('instances', 'pairs', 'cells', 'shared')
_LEVEL_KEYS = ('lvl_instances', 'lvl_pairs', 'lvl_cells', 'lvl_shared', 'lvl_lost')


def _summary(values: np.ndarray) -> Dict[str, Any]:
    if len(values) == 0:
        return dict(count=0)
    v = np.asarray(values, dtype=np.float64)
    return dict(count=int(len(v)), mean=round(float(v.mean()), 3),
                **{f'p{p}': round(float(q), 3) for p, q in zip(PERCENTILES,
                                                              np.percentile(v, PERCENTILES))})


def _counts(values: np.ndarray, top: int) -> Dict[str, int]:
    """Histogram of small non-negative integers: '0', '1', ..., f'{top}+'."""
    c = np.bincount(np.minimum(np.asarray(values, dtype=np.int64), top), minlength=top + 1)
    return {(f'{i}+' if i == top else str(i)): int(n) for i, n in enumerate(c)}


def _scale_histogram(scale: np.ndarray, unassigned: np.ndarray, bins: int = 40
                     ) -> Dict[str, list]:
    """Log-spaced histogram of sqrt(w*h): all instances and the unassigned ones."""
    if len(scale) == 0:
        return dict(edges=[], all=[], unassigned=[])
    lo = max(float(scale.min()), 0.5)
    hi = max(float(scale.max()), lo * 1.01) * 1.001
    edges = np.geomspace(lo, hi, bins + 1)
    clipped = np.clip(scale, lo, None)
    return dict(edges=[round(float(e), 3) for e in edges],
                all=np.histogram(clipped, edges)[0].tolist(),
                unassigned=np.histogram(clipped[unassigned], edges)[0].tolist())


class DatasetStats:
    """Accumulates :func:`image_record` s into flat arrays (see :meth:`report`)."""

    def __init__(self, head: Any, class_names: Sequence[str]) -> None:
        self.scale_ranges = [tuple(float(v) for v in r) for r in head.scale_ranges]
        self.num_grids = [int(s) for s in head.seg_num_grids]
        self.sigma = float(head.sigma)
        self.num_classes = int(head.num_classes)
        self.class_names = list(class_names)
        self._columns = {k: array.array(np.dtype(t).char) for k, t in _INSTANCE_TYPES.items()}
        self._per_image = {k: array.array('q') for k in _PER_IMAGE_KEYS}
        self.levels = {k: np.zeros(len(self.num_grids), dtype=np.int64) for k in _LEVEL_KEYS}
        self.crowd = 0
        self.dropped_by_pipeline = 0
        self.corrupt: List[str] = []
        self.input_sizes: Dict[Tuple[int, int], int] = {}

    def add(self, record: Dict[str, Any]) -> None:
        if record.get('dropped'):
            self.dropped_by_pipeline += 1
            return
        if 'corrupt' in record:
            self.corrupt.append(record['corrupt'])
            return
        for key, dtype in _INSTANCE_TYPES.items():
            self._columns[key].frombytes(np.ascontiguousarray(record[key], dtype).tobytes())
        for key in _LEVEL_KEYS:
            self.levels[key] += record[key]
        self._per_image['instances'].append(len(record['labels']))
        self._per_image['pairs'].append(int(record['lvl_pairs'].sum()))
        self._per_image['cells'].append(int(record['lvl_cells'].sum()))
        self._per_image['shared'].append(int(record['lvl_shared'].sum()))
        self.crowd += int(record['num_crowd'])
        size = tuple(int(v) for v in record['input_size'])
        self.input_sizes[size] = self.input_sizes.get(size, 0) + 1

    def instances(self) -> Dict[str, np.ndarray]:
        """The per-instance arrays over the images seen (views of the flat buffers)."""
        out = {k: np.frombuffer(self._columns[k], dtype=t) if len(self._columns[k])
               else np.zeros(0, t) for k, t in _INSTANCE_TYPES.items()}
        out['in_cell'] = out['in_cell'].astype(bool)
        out['empty'] = out['empty'].astype(bool)
        return out

    # --------------------------------------------------------------------- report
    def report(self, dataset_info: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """The JSON-able report (see tools/README.md, analyze_dataset.py)."""
        inst = self.instances()
        n = len(inst['labels'])
        num_levels = len(self.num_grids)
        bits = inst['level_bits']
        in_levels = np.unpackbits(bits[:, None], axis=1).sum(1) if n else np.zeros(0, np.int64)
        unassigned = in_levels == 0
        scale = inst['scale']
        lowers = np.array([r[0] for r in self.scale_ranges], np.float32)
        uppers = np.array([r[1] for r in self.scale_ranges], np.float32)
        inside = ((scale[:, None] >= lowers) & (scale[:, None] <= uppers)).any(1) if n \
            else np.zeros(0, bool)
        outside = unassigned & ~inst['empty'] & ~inside
        per_class = np.bincount(inst['labels'][inst['labels'] >= 0],
                                minlength=len(self.class_names)) if n else \
            np.zeros(len(self.class_names), np.int64)
        bad_labels = int(((inst['labels'] < 0) | (inst['labels'] >= self.num_classes)).sum())
        never_label = (inst['claimed'] > 0) & (inst['won'] == 0)
        per_image = {k: np.frombuffer(v, np.int64) if len(v) else np.zeros(0, np.int64)
                     for k, v in self._per_image.items()}
        info = dict(dataset_info or {})
        levels = []
        for li in range(num_levels):
            levels.append(dict(
                level=li, num_grid=self.num_grids[li], scale_range=list(self.scale_ranges[li]),
                instances=int(self.levels['lvl_instances'][li]),
                only_here=int((bits == (1 << li)).sum()),
                positive_cells=int(self.levels['lvl_cells'][li]),
                instance_cell_pairs=int(self.levels['lvl_pairs'][li]),
                shared_cells=int(self.levels['lvl_shared'][li]),
                lost_claims=int(self.levels['lvl_lost'][li])))
        report: Dict[str, Any] = dict(
            images=dict(analysed=int(len(per_image['instances'])),
                        filtered_out=info.get('filtered_out', {}),
                        without_instances=int((per_image['instances'] == 0).sum()),
                        dropped_by_pipeline=self.dropped_by_pipeline,
                        corrupt=len(self.corrupt), corrupt_examples=self.corrupt[:5],
                        input_sizes={f'{h}x{w}': c for (h, w), c in
                                     sorted(self.input_sizes.items(), key=lambda x: -x[1])[:10]}),
            instances=dict(
                total=n, crowd_regions=self.crowd,
                per_class={name: int(c) for name, c in zip(self.class_names, per_class)},
                classes_without_instances=[name for name, c in zip(self.class_names, per_class)
                                           if c == 0],
                dropped_annotations=info.get('dropped_annotations', {}),
                empty_after_pipeline=int(inst['empty'].sum())),
            classes=dict(num_classes=self.num_classes, dataset_classes=len(self.class_names),
                         match=self.num_classes == len(self.class_names),
                         labels_out_of_range=bad_labels),
            scale=dict(after_resize=_summary(scale),
                       original=_summary(inst['ori_scale'][~np.isnan(inst['ori_scale'])]),
                       below_min_useful=int((scale < MIN_USEFUL_SIZE).sum())),
            head=dict(scale_ranges=[list(r) for r in self.scale_ranges],
                      num_grids=self.num_grids, sigma=self.sigma),
            levels=levels,
            assignment=dict(
                levels_per_instance=_counts(in_levels, 3),
                unassigned=int(unassigned.sum()),
                unassigned_outside_ranges=int(outside.sum()),
                unassigned_below_lowest=int((outside & (scale < lowers.min())).sum()),
                unassigned_above_highest=int((outside & (scale > uppers.max())).sum()),
                unassigned_in_gaps=int((outside & (scale >= lowers.min())
                                        & (scale <= uppers.max())).sum()),
                unassigned_empty_mask=int((unassigned & inst['empty']).sum()),
                fits_in_one_cell=int((~unassigned & inst['in_cell']).sum()),
                never_labelled=int(never_label.sum())),
            positive_cells=dict(
                per_instance=_summary(inst['claimed']),
                per_instance_counts=_counts(inst['claimed'], 12),
                per_image=_summary(per_image['cells']),
                pairs_per_image=_summary(per_image['pairs']),
                shared_cells=int(per_image['shared'].sum()),
                lost_claims=int(self.levels['lvl_lost'].sum()),
                instances_losing_cells=int((inst['won'] < inst['claimed']).sum())))
        report['scale']['histogram'] = _scale_histogram(scale, unassigned)
        report['suggestion'] = suggest(report, scale, info.get('img_scale'))
        report['findings'] = findings(report)
        return report


def dataset_info(datasets: Sequence[Dataset], cfg: Any) -> Dict[str, Any]:
    """What the datasets say about themselves: images filtered out, annotations dropped,
    and the training ``Resize`` scales (for the input-size suggestion)."""
    filtered: Dict[str, int] = {}
    dropped: Dict[str, Dict[str, Any]] = {}
    for ds in datasets:
        for why, count in (getattr(ds, 'filter_stats', None) or {}).items():
            filtered[why] = filtered.get(why, 0) + int(count)
        for why, (count, ids) in (getattr(ds, 'dropped_annotations', None) or {}).items():
            entry = dropped.setdefault(why, dict(count=0, example_ids=[]))
            entry['count'] += int(count)
            entry['example_ids'] = (entry['example_ids'] + list(ids))[:5]
    img_scale = None
    for t in _train_pipeline(cfg) or []:
        if isinstance(t, dict) and t.get('type') == 'Resize' and t.get('img_scale') is not None:
            img_scale = [tuple(int(v) for v in s) for s in normalize_scales(t['img_scale'])]
    return dict(filtered_out=filtered, dropped_annotations=dropped, img_scale=img_scale)


__all__ = ['BlankImage', 'NormalizeMeta', 'analysis_dataset', 'build_grid_head',
           'leaf_datasets', 'prepare_sample', 'sample_seed', 'assign_sample', 'assign_targets',
           'assignment_input_size', 'sample_targets', 'box_scale', 'image_record',
           'RecordStream', 'DatasetStats', 'dataset_info', 'worker_init', 'format_report',
           'plot_report']
