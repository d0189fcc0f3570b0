"""COCO evaluation of ``InstanceResult`` lists with pycocotools (or faster-coco-eval).

- :func:`results2json`: per-instance COCO result dicts (RLE masks, ``[x, y, w, h]`` boxes
  of the masks, ``category_id = dataset.cat_ids[label]``).
- :func:`dump_results_json`: write ``<prefix>.segm.json`` / ``<prefix>.bbox.json`` atomically.
- :func:`coco_evaluate`: ``COCOeval`` with the standard summary (and a per-class AP table),
  returning ``{metric}_mAP``, ``_mAP_50``, ``_mAP_75``, ``_mAP_s/m/l`` and ``_mAP_copypaste``.
"""
from __future__ import annotations

import contextlib
import copy
import io
import itertools
import logging
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tqdm import tqdm

from ..structures import EncodedInstanceResult, InstanceResult, encode_rles
from .backends import DEFAULT_EVAL_BACKEND, coco_api
from .results_io import dump_json_atomic, load_json

ALLOWED_METRICS = ('segm', 'bbox')
STAT_NAMES = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
TQDM_MIN_IMAGES = 200  # show a progress bar when encoding at least this many images


def print_log(msg: str, logger: Any = None, level: int = logging.INFO) -> None:
    """Print ``msg`` (``logger=None``), send it to a ``logging.Logger``, or drop it ('silent')."""
    if logger is None:
        print(msg, flush=True)
    elif isinstance(logger, logging.Logger):
        logger.log(level, msg)
    elif isinstance(logger, str) and logger == 'silent':
        return
    elif isinstance(logger, str):
        logging.getLogger(logger).log(level, msg)
    else:
        raise TypeError(f"logger must be None, 'silent', a logger name or a logging.Logger, "
                        f'got {type(logger).__name__}')


def check_metrics(metric: Union[str, Sequence[str]]) -> List[str]:
    metrics = [metric] if isinstance(metric, str) else list(metric)
    bad = [m for m in metrics if m not in ALLOWED_METRICS]
    if bad or not metrics:
        raise KeyError(f'unknown COCO metric(s) {bad or metrics!r}; allowed: {list(ALLOWED_METRICS)}')
    return metrics


def _check_result(i: int, res: Any, info: Dict[str, Any], num_classes: int) -> None:
    if not isinstance(res, (InstanceResult, EncodedInstanceResult)):
        raise TypeError(f'results[{i}] must be an InstanceResult or EncodedInstanceResult, '
                        f'got {type(res).__name__}')
    hw = (int(info['height']), int(info['width']))
    size = tuple(res.image_size)  # (an EncodedInstanceResult's masks are not decoded)
    if size != hw:
        raise ValueError(f'results[{i}] masks have size {size}, image '
                         f"{info.get('filename')!r} is {hw}: masks must be at the original size")
    labels = np.asarray(res.labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f'results[{i}] has labels outside [0, {num_classes}): '
                         f'{sorted(set(labels.tolist()))}')


def results2json(dataset: Any, results: Sequence[Any]) -> Tuple[List[dict], List[dict]]:
    """COCO result dicts ``(segm_json, bbox_json)`` for one ``InstanceResult`` per image."""
    if len(results) != len(dataset):
        raise ValueError(f'results2json: {len(results)} results for {len(dataset)} images in '
                         f'the dataset; results must hold one InstanceResult per image, in order')
    cat_ids = np.asarray(dataset.cat_ids)
    segm_json: List[dict] = []
    bbox_json: List[dict] = []
    it = tqdm(range(len(results)), desc='COCO results', disable=len(results) < TQDM_MIN_IMAGES)
    for i in it:
        res, info = results[i], dataset.img_infos[i]
        _check_result(i, res, info, len(cat_ids))
        if len(res.labels) == 0:
            continue
        # an EncodedInstanceResult's RLEs are used as they are (shared, not copied)
        rles = res.rles if isinstance(res, EncodedInstanceResult) else encode_rles(res.masks)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DeprecationWarning)
            boxes = mask_utils.toBbox(rles).tolist()
        img_id = dataset.img_ids[i]
        cats = cat_ids[np.asarray(res.labels)].tolist()
        scores = np.asarray(res.scores, dtype=np.float64).tolist()
        for rle, box, cat, score in zip(rles, boxes, cats, scores):
            bbox_json.append(dict(image_id=img_id, bbox=box, score=score, category_id=cat))
            segm_json.append(dict(image_id=img_id, bbox=box, score=score, category_id=cat,
                                  segmentation=rle))
    return segm_json, bbox_json


def dump_results_json(dataset: Any, results: Sequence[Any], jsonfile_prefix: str) -> Dict[str, str]:
    """Write ``<prefix>.segm.json`` and ``<prefix>.bbox.json``; return ``{'segm': path, 'bbox': path}``."""
    return write_results_json(dict(zip(('segm', 'bbox'), results2json(dataset, results))),
                              jsonfile_prefix)


def write_results_json(dets: Dict[str, List[dict]], jsonfile_prefix: str) -> Dict[str, str]:
    """Write ``{'segm': [...], 'bbox': [...]}`` (:func:`results2json` lists) as
    ``<prefix>.<kind>.json``, atomically; return ``{kind: path}``."""
    return {kind: dump_json_atomic(dets[kind], f'{jsonfile_prefix}.{kind}.json')
            for kind in ('segm', 'bbox')}


def _empty_results(coco_gt: COCO) -> COCO:
    coco_dt = COCO()
    coco_dt.dataset = dict(images=list(coco_gt.dataset.get('images', [])),
                           categories=copy.deepcopy(coco_gt.dataset.get('categories', [])),
                           annotations=[])
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt.createIndex()
    return coco_dt


def format_table(rows: Sequence[Tuple[str, str]], pairs_per_row: int = 3) -> str:
    """A plain-text table of ``(category, AP)`` pairs, ``pairs_per_row`` pairs a line."""
    n = max(1, min(pairs_per_row, len(rows)))
    flat = list(itertools.chain(*rows))
    lines = [['category', 'AP'] * n]
    for k in range(0, len(flat), 2 * n):
        chunk = flat[k:k + 2 * n]
        lines.append(chunk + [''] * (2 * n - len(chunk)))
    widths = [max(len(str(line[c])) for line in lines) for c in range(2 * n)]
    sep = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'
    fmt = [('| ' + ' | '.join(str(v).ljust(w) for v, w in zip(line, widths)) + ' |') for line in lines]
    return '\n'.join([sep, fmt[0], sep] + fmt[1:] + [sep])


def _classwise(coco_eval: COCOeval, names: Dict[int, str]) -> Tuple[List[Tuple[str, str]], Dict[str, float]]:
    precisions = coco_eval.eval['precision']  # (iou, recall, cls, area, max dets)
    rows, aps = [], {}
    for k, cat_id in enumerate(coco_eval.params.catIds):
        p = precisions[:, :, k, 0, -1]
        p = p[p > -1]
        ap = float(np.mean(p)) if p.size else float('nan')
        rows.append((names[cat_id], f'{ap * 100:0.3f}'))
        aps[names[cat_id]] = ap
    return rows, aps


def coco_evaluate(coco_gt: Union[COCO, str], results_json: Union[str, List[dict]], metric: str,
                  classwise: bool = False, class_names: Optional[Sequence[str]] = None,
                  logger: Any = None, img_ids: Optional[Sequence[int]] = None,
                  cat_ids: Optional[Sequence[int]] = None,
                  backend: str = DEFAULT_EVAL_BACKEND) -> Dict[str, Any]:
    """Run ``COCOeval`` (iouType ``metric``) on ``results_json`` (a path or a list of dicts).

    ``img_ids`` / ``cat_ids`` restrict the evaluation (default: all of ``coco_gt``);
    ``class_names[i]`` names ``cat_ids[i]`` in the per-class table (default: COCO names).
    Empty results are evaluated as no detections (AP 0 where there is ground truth).
    ``backend``: ``'pycocotools'`` or ``'faster-coco-eval'`` (see :mod:`.backends`); a
    ground truth given as an object must be that backend's ``COCO``.
    """
    if not isinstance(metric, str):
        raise TypeError(f'coco_evaluate: metric must be one string {list(ALLOWED_METRICS)}, '
                        f'got {metric!r}')
    check_metrics(metric)
    api = coco_api(backend)
    if isinstance(coco_gt, str):
        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = api.COCO(coco_gt)
    elif not isinstance(coco_gt, api.COCO):
        raise TypeError(f'coco_evaluate: backend {backend!r} needs its own COCO ground truth '
                        f'({api.COCO.__module__}.{api.COCO.__name__}), got '
                        f'{type(coco_gt).__module__}.{type(coco_gt).__name__}; pass the '
                        'annotation file path instead')
    dets = load_json(results_json) if isinstance(results_json, str) else list(results_json)
    if not isinstance(dets, list):
        raise TypeError(f'coco_evaluate: results must be a list of dicts, got {type(dets).__name__}')
    if class_names is not None and cat_ids is None:
        raise ValueError('coco_evaluate: class_names needs the matching cat_ids')
    if class_names is not None and len(class_names) != len(cat_ids):
        raise ValueError(f'coco_evaluate: {len(class_names)} class_names for {len(cat_ids)} cat_ids')

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()) as out:
        warnings.simplefilter('ignore', DeprecationWarning)
        if dets:
            coco_dt = coco_gt.loadRes([dict(d) for d in dets])
        elif api.name == 'pycocotools':
            coco_dt = _empty_results(coco_gt)
        else:
            coco_dt = coco_gt.loadRes([])
        coco_eval = api.COCOeval(coco_gt, coco_dt, metric)
        coco_eval.params.imgIds = list(img_ids) if img_ids is not None else coco_gt.getImgIds()
        if cat_ids is not None:
            coco_eval.params.catIds = list(cat_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    if not dets:
        warnings.warn(f'coco_evaluate: the {metric} result list is empty; every AP is 0 '
                      f'(or -1 where there is no ground truth)')
        print_log(f'The {metric} result list is empty: evaluating as no detections.', logger,
                  logging.WARNING)
    print_log(f'Evaluating {metric}:\n' + _summary_text(out.getvalue()), logger)

    stats = coco_eval.stats
    results: Dict[str, Any] = {f'{metric}_{name}': float(stats[i]) for i, name in enumerate(STAT_NAMES)}
    results[f'{metric}_mAP_copypaste'] = ' '.join(f'{stats[i]:.3f}' for i in range(len(STAT_NAMES)))
    if classwise:
        if class_names is not None:
            names = dict(zip(cat_ids, class_names))
        else:
            names = {c: coco_gt.cats[c]['name'] for c in coco_eval.params.catIds}
        rows, aps = _classwise(coco_eval, names)
        print_log(f'Per-class {metric} AP (IoU 0.50:0.95, all areas, maxDets 100):\n'
                  + format_table(rows), logger)
        for name, ap in aps.items():
            results[f'{metric}_AP_{name.replace(" ", "_")}'] = ap
    return results


def _summary_text(captured: str) -> str:
    """The 12 summary lines from the captured ``COCOeval`` output."""
    lines = [ln for ln in captured.splitlines() if ln.lstrip().startswith('Average')]
    return '\n'.join(lines) if lines else captured
