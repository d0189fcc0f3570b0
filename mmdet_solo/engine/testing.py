"""The test loop: the one used by ``tools/test_ins.py``, ``tools/dist_test.sh``,
``tools/test_ins_vis.py`` and validation during training (``EvalHook``).

Memory: results are compact as soon as they leave the model. The detector pastes each
image's masks chunk by chunk and encodes them to COCO RLE on the way
(``encode_masks=True``), so an image costs its RLEs, labels, scores and boxes (tens of KB for
100 masks) instead of ``N x H x W`` bytes (27 MB for 100 masks of 427x640); the results are
gathered across ranks in that form, in memory or as JSON files in a shared ``tmpdir``.

Batches: the loader's batches are run as they come (``samples_per_gpu`` / ``imgs_per_gpu`` of
the dataset config, see ``datasets.build_test_dataloader``); each batch is one padded forward.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm import tqdm

from ..structures import EncodedInstanceResult
from ..utils.io import atomic_write
from .dist import get_dist_info, merge_indexed_parts
from .trainer import move_to_device, unwrap_model

# called with (dataset index, result, img_meta) for every image, e.g. to draw it
ResultCallback = Callable[[int, EncodedInstanceResult, dict], None]

__all__ = ['infer_dataset', 'gather_results', 'run_test', 'ResultCallback']


def _batches(data_loader) -> Iterator[Tuple[List[int], Dict[str, Any]]]:
    """``(dataset indices, batch)`` pairs; the indices come from the loader's batch sampler."""
    batch_sampler = getattr(data_loader, 'batch_sampler', None)
    if batch_sampler is None:
        raise ValueError('test: the data loader needs a batch_sampler (build it with '
                         'build_test_dataloader)')
    for indices, data in zip(list(batch_sampler), data_loader):
        yield [int(i) for i in indices], data


def _first_aug_metas(data: Dict[str, Any]) -> List[dict]:
    metas = data['img_metas']
    if metas and isinstance(metas[0], (list, tuple)):  # MultiScaleFlipAug: one list per aug
        metas = metas[0]
    return list(metas)


@torch.no_grad()
def infer_dataset(model: nn.Module, data_loader, on_result: Optional[ResultCallback] = None,
                  progress: bool = True) -> List[Tuple[int, EncodedInstanceResult]]:
    """``(dataset index, EncodedInstanceResult)`` of every image this process's loader yields.

    The model (unwrapped from DDP) runs in eval mode and is put back in its former mode.
    """
    net = unwrap_model(model)
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    rank, world_size = get_dist_info()
    out: List[Tuple[int, EncodedInstanceResult]] = []
    total = len(data_loader.dataset)
    try:
        with tqdm(total=total, desc='inference', unit='img', dynamic_ncols=True,
                  disable=not progress or rank != 0) as bar:
            for indices, data in _batches(data_loader):
                results = net(return_loss=False, rescale=True, encode_masks=True,
                              **move_to_device(data, device))
                if len(results) != len(indices):
                    raise RuntimeError(f'test: the model returned {len(results)} results for a '
                                       f'batch of {len(indices)} images')
                for idx, res, meta in zip(indices, results, _first_aug_metas(data)):
                    res = EncodedInstanceResult.from_result(res)
                    if on_result is not None:
                        on_result(idx, res, meta)
                    out.append((idx, res))
                bar.update(min(len(indices) * world_size, total - bar.n))
    finally:
        net.train(was_training)
    return out


def _gather_tmpdir(part: List[Tuple[int, EncodedInstanceResult]], tmpdir: Optional[str],
                   rank: int, world_size: int) -> Optional[List[List[Tuple[int, Any]]]]:
    """Every rank writes its part as JSON into ``tmpdir`` (shared by the ranks); rank 0 reads
    all (plain data: nothing in the folder can run code) and removes the files."""
    made_here = False
    if tmpdir is None:
        obj = [tempfile.mkdtemp(prefix='mmdet_solo_test_') if rank == 0 else None]
        dist.broadcast_object_list(obj, src=0)
        tmpdir, made_here = obj[0], True
    rows = [[idx, res.to_dict()] for idx, res in part]
    atomic_write(osp.join(tmpdir, f'part_{rank}.json'), lambda f: json.dump(rows, f), text=True)
    dist.barrier()
    parts = None
    if rank == 0:
        parts = []
        for r in range(world_size):
            path = osp.join(tmpdir, f'part_{r}.json')
            if not osp.isfile(path):
                raise FileNotFoundError(f'test: {path} is missing: is --tmpdir {tmpdir!r} '
                                        'shared by all ranks?')
            with open(path, encoding='utf-8') as f:
                parts.append([(idx, EncodedInstanceResult.from_dict(d)) for idx, d in json.load(f)])
            os.remove(path)
        if made_here:
            shutil.rmtree(tmpdir, ignore_errors=True)
    dist.barrier()
    return parts


def gather_results(part: Sequence[Tuple[int, Any]], size: int, tmpdir: Optional[str] = None
                   ) -> Optional[List[Any]]:
    """This rank's ``(dataset index, result)`` pairs → on rank 0 all ``size`` results in
    dataset order, each index once (distributed samplers pad with repeats); ``None`` on the
    other ranks. Gathered in memory (``gather_object``) or, with ``tmpdir`` (a folder every
    rank can read), through one JSON file per rank."""
    rank, world_size = get_dist_info()
    if world_size == 1:
        return merge_indexed_parts([part], size, 'test')
    if tmpdir is None:
        gathered: Optional[List[Any]] = [None] * world_size if rank == 0 else None
        dist.gather_object(list(part), gathered, dst=0)
        parts = gathered
    else:
        parts = _gather_tmpdir(list(part), tmpdir, rank, world_size)
    return merge_indexed_parts(parts, size, 'test') if rank == 0 else None


def run_test(model: nn.Module, data_loader, tmpdir: Optional[str] = None,
             on_result: Optional[ResultCallback] = None, progress: bool = True
             ) -> Optional[List[EncodedInstanceResult]]:
    """:func:`infer_dataset` on every rank, then :func:`gather_results`: all results in
    dataset order on rank 0 (``None`` on the others)."""
    part = infer_dataset(model, data_loader, on_result, progress)
    return gather_results(part, len(data_loader.dataset), tmpdir)
