"""Dataset-level inference: ``single_gpu_test`` and ``multi_gpu_test`` (torchrun ranks).

Both return one result per dataset image, in dataset order. With ``encode_masks=True`` the
results are :class:`EncodedInstanceResult` s (masks kept as COCO RLE, a few KB per image
instead of ``N x H x W`` bytes) that evaluate and format like ``InstanceResult`` s; use it for
full-size test sets.
"""
from __future__ import annotations

import os
import os.path as osp
import pickle
import shutil
import tempfile
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as mask_utils
import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm import tqdm

from ..engine.dist import merge_indexed_parts
from ..evaluation.coco_eval import encode_masks as _encode_rles
from ..structures.results import InstanceResult
from ..utils.visualization import show_result_ins

Result = Union[InstanceResult, 'EncodedInstanceResult']

__all__ = ['EncodedInstanceResult', 'single_gpu_test', 'multi_gpu_test', 'result_to_dict',
           'check_classes', 'prepare_test']


class EncodedInstanceResult:
    """An ``InstanceResult`` whose masks are stored as compressed COCO RLEs.

    ``masks`` decodes on access (``(N, H, W)`` bool), so evaluation and formatting code written
    for ``InstanceResult`` works unchanged.
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
    def from_result(cls, result: InstanceResult) -> 'EncodedInstanceResult':
        h, w = result.masks.shape[1:]
        return cls(_encode_rles(result.masks), result.labels, result.scores, result.bboxes, h, w)

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


def result_to_dict(result: Result) -> Dict[str, Any]:
    """Plain-data form of one image's result (the ``--out`` pickle entries; see tools/README.md)."""
    if not isinstance(result, EncodedInstanceResult):
        result = EncodedInstanceResult.from_result(result)
    return dict(masks=[dict(size=list(r['size']), counts=r['counts']) for r in result.rles],
                labels=result.labels.copy(), scores=result.scores.copy(),
                bboxes=result.bboxes.copy(), height=result.height, width=result.width)


# ------------------------------------------------------------------------------- classes
def check_classes(model_classes: Optional[Sequence[str]], dataset_classes: Optional[Sequence[str]],
                  checkpoint: str = 'the checkpoint') -> Optional[Tuple[str, ...]]:
    """Compare the model's (checkpoint meta) class names with the test dataset's.

    Returns ``None`` when they agree (or either is unknown). A different number of classes
    raises ``ValueError``. The same names in another order return the model's order (build
    the dataset with ``classes=`` that order, so labels map to the right COCO categories by
    name), with a warning. Different names warn that labels are mapped by index.
    """
    if model_classes is None or dataset_classes is None:
        return None
    model_classes, dataset_classes = tuple(model_classes), tuple(dataset_classes)
    if model_classes == dataset_classes:
        return None
    if len(model_classes) != len(dataset_classes):
        raise ValueError(f'{checkpoint} has {len(model_classes)} classes (meta CLASSES '
                         f'{_preview(model_classes)}) but the test dataset has '
                         f'{len(dataset_classes)} ({_preview(dataset_classes)}); set '
                         f'data.test.classes to the checkpoint\'s classes')
    if sorted(model_classes) == sorted(dataset_classes):
        warnings.warn(f'{checkpoint}: CLASSES {_preview(model_classes)} are the test dataset\'s '
                      f'classes in another order ({_preview(dataset_classes)}); re-ordering the '
                      f'dataset\'s classes to match the checkpoint')
        return model_classes
    diff = [(m, d) for m, d in zip(model_classes, dataset_classes) if m != d]
    warnings.warn(f'{checkpoint}: CLASSES differ from the test dataset\'s classes at '
                  f'{len(diff)} of {len(model_classes)} positions (checkpoint vs dataset: '
                  f'{diff[:5]}); labels are mapped to the dataset\'s categories by index and '
                  f'the checkpoint\'s names are used for display')
    return None


def _preview(names: Sequence[str], n: int = 5) -> str:
    shown = ', '.join(repr(x) for x in names[:n])
    return f'({shown}{", ..." if len(names) > n else ""})'


# ------------------------------------------------------------------------------- helpers
def _to_device(data: Any, device: torch.device) -> Any:
    if isinstance(data, torch.Tensor):
        return data.to(device)
    if isinstance(data, dict):
        return {k: _to_device(v, device) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_to_device(v, device) for v in data)
    return data


def _unwrap(model: nn.Module) -> nn.Module:
    inner = getattr(model, 'module', None)
    return inner if isinstance(inner, nn.Module) else model


def _batches(data_loader) -> Iterator[Tuple[List[int], Dict[str, Any]]]:
    """``(dataset indices, batch)`` pairs; the indices come from the loader's batch sampler."""
    batch_sampler = getattr(data_loader, 'batch_sampler', None)
    if batch_sampler is None:
        raise ValueError('test: the data loader needs a batch_sampler (build it with '
                         'build_dataloader(..., shuffle=False))')
    for indices, data in zip(list(batch_sampler), data_loader):
        yield [int(i) for i in indices], data


def _first_aug_metas(data: Dict[str, Any]) -> List[dict]:
    metas = data['img_metas']
    if metas and isinstance(metas[0], (list, tuple)):  # MultiScaleFlipAug: one list per aug
        metas = metas[0]
    return list(metas)


def _run_batch(model: nn.Module, data: Dict[str, Any], device: torch.device,
               n_expected: int) -> List[InstanceResult]:
    with torch.no_grad():
        results = model(return_loss=False, rescale=True, **_to_device(data, device))
    if len(results) != n_expected:
        raise RuntimeError(f'test: the model returned {len(results)} results for a batch of '
                           f'{n_expected} images')
    return list(results)


def _show(result: InstanceResult, meta: dict, rel_name: str, class_names: Optional[Sequence[str]],
          show: bool, show_dir: Optional[str], score_thr: float) -> None:
    img_path = meta.get('filename')
    if not img_path:
        raise KeyError("test: img_metas has no 'filename' (needed to draw the results); keep "
                       "'filename' in Collect's meta_keys")
    out_file = osp.join(show_dir, rel_name) if show_dir else None
    drawn = show_result_ins(img_path, result, class_names, score_thr=score_thr, out_file=out_file)
    if show:
        import cv2
        try:
            cv2.imshow(osp.basename(img_path), drawn)
            cv2.waitKey(0)
        except cv2.error as e:
            raise RuntimeError(f'--show: cannot open a window ({e}); on a machine without a '
                               'display use --show-dir DIR instead') from e


def _class_names(model: nn.Module, dataset: Any) -> Optional[Sequence[str]]:
    names = getattr(_unwrap(model), 'CLASSES', None)
    return names if names is not None else getattr(dataset, 'CLASSES', None)


def _rel_name(dataset: Any, idx: int, meta: dict) -> str:
    infos = getattr(dataset, 'img_infos', None)
    if infos is not None and infos[idx].get('filename'):
        return infos[idx]['filename']
    return osp.basename(meta['filename'])


def _infer(model: nn.Module, data_loader, show: bool, show_dir: Optional[str], score_thr: float,
           encode_masks: bool, progress: bool, world_size: int) -> List[Tuple[int, Result]]:
    """``(dataset index, result)`` for every sample this process's loader yields."""
    dataset = data_loader.dataset
    net = _unwrap(model)
    net.eval()
    device = next(net.parameters()).device
    names = _class_names(model, dataset)
    out: List[Tuple[int, Result]] = []
    with tqdm(total=len(dataset), desc='inference', unit='img', disable=not progress,
              dynamic_ncols=True) as bar:
        for indices, data in _batches(data_loader):
            results = _run_batch(model, data, device, len(indices))
            metas = _first_aug_metas(data)
            for idx, res, meta in zip(indices, results, metas):
                if show or show_dir:
                    _show(res, meta, _rel_name(dataset, idx, meta), names, show, show_dir,
                          score_thr)
                out.append((idx, EncodedInstanceResult.from_result(res) if encode_masks else res))
            bar.update(min(len(indices) * world_size, bar.total - bar.n))
    return out


# ------------------------------------------------------------------------------- public API
def single_gpu_test(model: nn.Module, data_loader, show: bool = False,
                    show_dir: Optional[str] = None, score_thr: float = 0.3,
                    encode_masks: bool = False, progress: bool = True) -> List[Result]:
    """Run ``model`` over ``data_loader`` (sequential, ``shuffle=False``) with a progress bar.

    Returns one result per image in dataset order. ``show_dir`` writes the drawn results
    (instances above ``score_thr``, labelled with ``model.CLASSES``, else the dataset's) under
    the images' relative file names; ``show`` opens a window per image.
    """
    pairs = _infer(model, data_loader, show, show_dir, score_thr, encode_masks, progress, 1)
    size = len(data_loader.dataset)
    by_index = dict(pairs)
    if len(by_index) != size:
        raise RuntimeError(f'single_gpu_test: {len(by_index)} distinct results for {size} images; '
                           'use a sequential loader '
                           '(build_dataloader(..., dist=False, shuffle=False))')
    return [by_index[i] for i in range(size)]


def _collect_tmpdir(part: List[Tuple[int, Result]], tmpdir: Optional[str], rank: int,
                    world_size: int) -> Optional[List[List[Tuple[int, Result]]]]:
    """Every rank pickles its part into ``tmpdir`` (shared by the ranks); rank 0 reads all."""
    made_here = False
    if tmpdir is None:
        obj = [tempfile.mkdtemp(prefix='mmdet_solo_test_') if rank == 0 else None]
        dist.broadcast_object_list(obj, src=0)
        tmpdir, made_here = obj[0], True
    os.makedirs(tmpdir, exist_ok=True)
    with open(osp.join(tmpdir, f'part_{rank}.pkl'), 'wb') as f:
        pickle.dump(part, f, protocol=pickle.HIGHEST_PROTOCOL)
    dist.barrier()
    parts = None
    if rank == 0:
        parts = []
        for r in range(world_size):
            path = osp.join(tmpdir, f'part_{r}.pkl')
            if not osp.isfile(path):
                raise FileNotFoundError(f'multi_gpu_test: {path} is missing: is --tmpdir '
                                        f'{tmpdir!r} shared by all ranks?')
            with open(path, 'rb') as f:
                parts.append(pickle.load(f))
            os.remove(path)
        if made_here:
            shutil.rmtree(tmpdir, ignore_errors=True)
    dist.barrier()
    return parts


def multi_gpu_test(model: nn.Module, data_loader, tmpdir: Optional[str] = None,
                   encode_masks: bool = False, progress: bool = True) -> Optional[List[Result]]:
    """Each rank runs its share of ``data_loader`` (distributed test sampler); rank 0 returns
    all results in dataset order, each image once (the sampler's padding repeats are dropped);
    the other ranks return ``None``.

    The parts are gathered with ``all_gather_object`` or, with ``tmpdir`` (a folder every rank
    can read), through per-rank pickles there.
    """
    if not (dist.is_available() and dist.is_initialized()):
        warnings.warn('multi_gpu_test: no process group is initialised; running single_gpu_test')
        return single_gpu_test(model, data_loader, encode_masks=encode_masks, progress=progress)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    part = _infer(model, data_loader, False, None, 0.3, encode_masks, progress and rank == 0,
                  world_size)
    if tmpdir is None:
        gathered: Optional[List[Any]] = [None] * world_size if rank == 0 else None
        dist.gather_object(part, gathered, dst=0)
        parts = gathered
    else:
        parts = _collect_tmpdir(part, tmpdir, rank, world_size)
    if rank != 0:
        return None
    return merge_indexed_parts(parts, len(data_loader.dataset), 'multi_gpu_test')


# ------------------------------------------------------------------------------- tool setup
def prepare_test(config: str, checkpoint: str, cfg_options: Optional[dict] = None,
                 launcher: str = 'none', device: Optional[str] = None):
    """Shared set-up of the test tools: ``(cfg, model, dataset, distributed)``.

    Loads the config (plus ``cfg_options``), joins the torchrun process group for
    ``launcher='pytorch'``, builds the test dataset (``test_mode=True``) and the model with the
    checkpoint's CLASSES (see :func:`check_classes`).
    """
    import copy

    from ..config import Config
    from ..datasets import build_dataset
    from ..engine.dist import init_dist
    from .inference import init_detector

    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config!r}')
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {checkpoint!r}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if not isinstance(cfg.get('data'), dict) or not isinstance(cfg.data.get('test'), dict):
        raise KeyError(f'{config}: the config needs a data.test dataset dict')
    distributed = launcher != 'none'
    if distributed:
        backend = dict(cfg.get('dist_params') or {}).get('backend')
        init_dist(launcher, backend=backend if torch.cuda.is_available() else None)
    if device is None:
        if torch.cuda.is_available():
            device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if distributed else 'cuda:0'
        else:
            device = 'cpu'
    cfg.data.test.test_mode = True
    dataset = build_dataset(cfg.data.test, dict(test_mode=True))
    model = init_detector(cfg, checkpoint, device=device)
    order = check_classes(model.CLASSES, getattr(dataset, 'CLASSES', None), checkpoint)
    if order is not None:
        test_cfg = copy.deepcopy(cfg.data.test)
        test_cfg.classes = list(order)
        dataset = build_dataset(test_cfg, dict(test_mode=True))
    return cfg, model, dataset, distributed
