"""``CocoDataset``: COCO instance annotations (mmdet v1 semantics), held in flat buffers.

- Categories are looked up by **name** and mapped to contiguous 0-based labels in the
  order of ``CLASSES`` (``COCO_CLASSES`` or ``classes=``); annotations of other categories
  are skipped. ``'traffic_light'`` also matches ``'traffic light'``.
- Boxes follow mmdet v1: ``[x, y, x + w - 1, y + h - 1]``; annotations with ``w < 1``,
  ``h < 1``, ``area <= 0`` or ``ignore`` are skipped; crowd boxes go to ``bboxes_ignore``.
- Masks stay COCO segmentations (polygons / RLE) and are decoded per sample by
  ``LoadAnnotations``; the dataset never holds decoded masks.

Memory (see :mod:`.serialize`): the annotation file is parsed once, each image's parsed
annotations become one JSON record in a :class:`SerializedList`, and the parsed file is
dropped, so the dataset holds flat buffers (about the size of the annotation file's
segmentations) that data-loader workers share instead of copying. The pycocotools ``COCO``
object is built only when evaluation asks for it (:attr:`CocoDataset.coco`), in the main
process.
"""
from __future__ import annotations

import contextlib
import gc
import io
import json
import logging
import os.path as osp
import tempfile
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as mask_utils
from pycocotools.coco import COCO

from ..registry import DATASETS
from .class_names import COCO_CLASSES
from .custom import CustomDataset, release_freed_memory
from .pipelines.loading import segm_to_rle
from .serialize import SerializedList


def read_coco_json(ann_file: str, who: str = 'CocoDataset', report: bool = True) -> Dict[str, Any]:
    """Parse a COCO annotation file and fill the fields labelling tools often omit, saying so
    once: a missing ``iscrowd`` is 0, a missing ``area`` is the mask's pixel count (polygons /
    RLE at the image's size), as COCO's own files define them."""
    try:
        gc.disable()  # millions of new containers: skip the useless collections
        with open(ann_file, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f'{who}: cannot read COCO annotation file {ann_file!r}: '
                         f'{type(e).__name__}: {e}') from e
    finally:
        gc.enable()
    if not isinstance(data, dict) or not isinstance(data.get('images'), list):
        raise ValueError(f"{who}: {ann_file!r} is not a COCO annotation file (expected a JSON "
                         "object with an 'images' list)")
    sizes = {img.get('id'): (img.get('height'), img.get('width')) for img in data['images']}
    no_crowd, no_area = 0, 0
    for ann in data.get('annotations') or []:
        if 'iscrowd' not in ann:
            ann['iscrowd'] = 0
            no_crowd += 1
        if 'area' not in ann:
            ann['area'] = _mask_area(ann.get('segmentation'), *sizes.get(ann.get('image_id'),
                                                                      (None, None)))
            no_area += 1
    if report and (no_crowd or no_area):
        logging.getLogger('mmdet_solo').warning(
            f'{ann_file!r}: {no_crowd} annotation(s) without iscrowd (taken as 0) and {no_area} '
            'without area (computed from the mask)')
    return data


def _mask_area(segm: Any, height: Optional[int], width: Optional[int]) -> float:
    """Pixel count of a COCO segmentation (0 when it cannot be rasterised)."""
    if height is None or width is None or not segm:
        return 0.0
    try:
        rle = segm_to_rle(segm, height, width)
    except TypeError:  # not a segmentation: the annotation is dropped (area 0), counted
        return 0.0
    return float(mask_utils.area(rle)) if rle is not None else 0.0


def _norm(name: str) -> str:
    return name.replace('_', ' ').strip().lower()


@DATASETS.register_module()
class CocoDataset(CustomDataset):
    """COCO-format instance segmentation dataset; see the module docstring and ``CustomDataset``."""

    CLASSES = COCO_CLASSES

    # ----------------------------------------------------------------- loading
    def load_annotations(self, ann_file: str) -> List[Dict[str, Any]]:
        name = type(self).__name__
        data = read_coco_json(ann_file, name)
        self.cat_ids = self._match_categories(ann_file, data.get('categories') or [])
        self._file_cat_ids = {c.get('id') for c in data.get('categories') or []}
        self.cat2label = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}
        img_infos, self.img_ids = [], []
        for img in data['images']:
            missing = [k for k in ('id', 'file_name', 'height', 'width') if k not in img]
            if missing:
                raise KeyError(f'{ann_file!r}: image {img.get("id", img)!r} has no {missing} '
                               'field(s)')
            info = dict(img)
            info['filename'] = info['file_name']
            img_infos.append(info)
            self.img_ids.append(img['id'])
        by_image: Dict[Any, List[dict]] = defaultdict(list)
        for ann in data.get('annotations') or []:
            by_image[ann.get('image_id')].append(ann)
        # per image, its annotations in file order (pycocotools' getAnnIds order); serialized
        # (and dropped) by _serialize once filtering is done
        self._raw_anns: Optional[List[List[dict]]] = [by_image.get(i, []) for i in self.img_ids]
        del data, by_image
        return img_infos

    def _match_categories(self, ann_file: str, categories: Sequence[dict]) -> List[int]:
        """COCO category ids in the order of ``self.CLASSES`` (looked up by name)."""
        by_name: Dict[str, int] = {}
        by_norm: Dict[str, List[int]] = {}
        for cat in categories:
            if cat['name'] in by_name:
                raise ValueError(f'{ann_file!r}: category name {cat["name"]!r} is used by ids '
                                 f'{by_name[cat["name"]]} and {cat["id"]}')
            by_name[cat['name']] = cat['id']
            by_norm.setdefault(_norm(cat['name']), []).append(cat['id'])
        cat_ids, missing = [], []
        for name in self.CLASSES:
            if name in by_name:
                cat_ids.append(by_name[name])
            elif len(by_norm.get(_norm(name), [])) == 1:
                cat_ids.append(by_norm[_norm(name)][0])
            else:
                missing.append(name)
        if missing:
            raise KeyError(f'{type(self).__name__}: classes {missing} are not categories of '
                           f'{ann_file!r} (its categories: {sorted(by_name)})')
        return cat_ids

    def _select(self, inds: Sequence[int]) -> None:
        super()._select(inds)
        self.img_ids = [self.img_ids[i] for i in inds]
        self._raw_anns = [self._raw_anns[i] for i in inds]

    def _serialize(self) -> None:
        """Parsed annotations → one record per image in a flat buffer; the raw file is dropped."""
        raw, self._raw_anns = self._raw_anns, None
        self.dropped_annotations: Dict[str, list] = {}
        self._ann_records = SerializedList((self._ann_record(anns) for anns in raw),
                                           compress=True)
        del raw
        self._log_dropped()
        # the id objects were made by the JSON parser amid the parsed file: re-create them
        # once it is freed, or they pin its memory pages (~90 MB for COCO train)
        ints = all(type(i) is int for i in self.img_ids)
        ids = np.asarray(self.img_ids, dtype=np.int64) if ints else self.img_ids
        self.img_ids = None
        super()._serialize()  # also calls release_freed_memory()
        self.img_ids = ids.tolist() if ints else ids

    # ----------------------------------------------------------------- filtering
    def _problem(self, ann: Dict[str, Any]) -> Optional[str]:
        """Why an annotation cannot be a target or a crowd region (``None``: it can, or it
        is meant to be skipped: another class, ``ignore``)."""
        if ann.get('ignore', False):
            return None
        if ann.get('category_id') not in self.cat2label:
            return None if ann.get('category_id') in self._file_cat_ids \
                else "category_id not among the file's categories"
        box = ann.get('bbox')
        if not isinstance(box, (list, tuple)) or len(box) != 4:
            return 'no [x, y, w, h] bbox'
        if box[2] < 1 or box[3] < 1:
            return 'bbox width or height < 1'
        segm = ann.get('segmentation')
        if not ann.get('iscrowd', False) and isinstance(segm, list) and \
                not any(isinstance(p, list) and len(p) >= 6 for p in segm):
            return 'no polygon with 3 points or more'
        if not ann.get('area', 0) > 0:
            return 'area <= 0'
        return None

    def _usable(self, ann: Dict[str, Any]) -> bool:
        """A training target: known class, not crowd/ignored, non-degenerate box and mask."""
        return not ann.get('ignore', False) and not ann.get('iscrowd', False) and \
            ann.get('category_id') in self.cat2label and self._problem(ann) is None

    def _filter_imgs(self, min_size: int = 32) -> List[int]:
        """Drop images without usable annotations (if ``filter_empty_gt``) or too small."""
        keep, no_ann, small = [], 0, 0
        for i, (info, anns) in enumerate(zip(self.img_infos, self._raw_anns)):
            if self.filter_empty_gt and not any(self._usable(a) for a in anns):
                no_ann += 1
            elif min(info['width'], info['height']) < min_size:
                small += 1
            else:
                keep.append(i)
        self.filter_stats = {'without usable annotations': no_ann,
                             f'smaller than min_size={min_size}': small}
        return keep

    # ----------------------------------------------------------------- annotations
    def _ann_record(self, anns: List[Dict[str, Any]]) -> Dict[str, Any]:
        """JSON record of one image: boxes ``[x, y, x+w-1, y+h-1]``, 0-based labels, raw
        segmentations, crowd boxes as ``bboxes_ignore``; unusable annotations are counted
        in ``dropped_annotations`` (reason -> count and example ids)."""
        bboxes, labels, masks, ignore = [], [], [], []
        for ann in anns:
            problem = self._problem(ann)
            if problem is not None:
                entry = self.dropped_annotations.setdefault(problem, [0, []])
                entry[0] += 1
                if len(entry[1]) < 5:
                    entry[1].append(ann.get('id'))
                continue
            if ann.get('ignore', False) or ann.get('category_id') not in self.cat2label:
                continue
            x, y, w, h = ann['bbox']
            box = [x, y, x + w - 1, y + h - 1]
            if ann.get('iscrowd', False):
                ignore.append(box)
            else:
                bboxes.append(box)
                labels.append(self.cat2label[ann['category_id']])
                masks.append(ann['segmentation'])
        return dict(bboxes=bboxes, labels=labels, bboxes_ignore=ignore, masks=masks)

    def _log_dropped(self) -> None:
        if self.dropped_annotations:
            parts = [f'{n} with {why} (ids {ids})'
                     for why, (n, ids) in sorted(self.dropped_annotations.items())]
            logging.getLogger('mmdet_solo').warning(
                f'{type(self).__name__} {self.ann_file!r}: '
                f'{sum(n for n, _ in self.dropped_annotations.values())} annotation(s) dropped: '
                + '; '.join(parts))

    def get_ann_info(self, idx: int) -> Dict[str, Any]:
        """``bboxes`` (K, 4) float32, ``labels`` (K,) int64, ``bboxes_ignore``, ``masks`` (raw
        segmentations) and ``seg_map`` of image ``idx`` (decoded from its record)."""
        rec = self._ann_records[idx]
        return dict(
            bboxes=np.array(rec['bboxes'], dtype=np.float32).reshape(-1, 4),
            labels=np.array(rec['labels'], dtype=np.int64),
            bboxes_ignore=np.array(rec['bboxes_ignore'], dtype=np.float32).reshape(-1, 4),
            masks=rec['masks'],
            seg_map=osp.splitext(self.img_infos[idx]['filename'])[0] + '.png')

    # ----------------------------------------------------------------- evaluation
    @property
    def coco(self) -> COCO:
        """The pycocotools ground truth of ``ann_file`` (missing ``iscrowd``/``area`` filled as
        for training), built on first use (evaluation)."""
        if getattr(self, '_coco', None) is None:
            self._coco = self.ground_truth('pycocotools')
        return self._coco

    def ground_truth(self, backend: str = 'pycocotools') -> Any:
        """A new ground-truth object of the evaluation ``backend`` for ``ann_file``."""
        from ..evaluation.backends import coco_api
        api = coco_api(backend)
        data = read_coco_json(self.ann_file, type(self).__name__, report=False)  # said at build
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools chatters
            if api.name == 'pycocotools':
                gt = api.COCO()
                gt.dataset = data
                gt.createIndex()
            else:
                bad = next((img['id'] for img in data['images'] if type(img['id']) is not int),
                           None)
                if bad is not None:
                    raise ValueError(f'{backend}: {self.ann_file!r} has non-integer image ids '
                                     f'(e.g. {bad!r}), which {backend} cannot evaluate; use the '
                                     "default backend 'pycocotools'")
                gt = api.COCO(data)
        return gt

    def release_coco(self) -> None:
        """Drop the ground truth built by :attr:`coco` (data-loader workers forked later must
        not inherit it)."""
        self._coco = None
        release_freed_memory()

    def format_results(self, results: Sequence[Any], jsonfile_prefix: Optional[str] = None
                       ) -> Tuple[Dict[str, str], Optional[tempfile.TemporaryDirectory]]:
        """Write ``<prefix>.segm.json`` / ``<prefix>.bbox.json``; return (files, tmp_dir or None)."""
        from ..evaluation.coco_eval import dump_results_json
        tmp_dir = None
        if jsonfile_prefix is None:
            tmp_dir = tempfile.TemporaryDirectory()
            jsonfile_prefix = osp.join(tmp_dir.name, 'results')
        return dump_results_json(self, results, jsonfile_prefix), tmp_dir

    def evaluate(self, results: Sequence[Any], metric: Union[str, Sequence[str]] = 'segm',
                 classwise: bool = False, jsonfile_prefix: Optional[str] = None,
                 logger: Any = None, backend: str = 'pycocotools') -> Dict[str, Any]:
        """COCO evaluation of one result per image, in dataset order (``InstanceResult`` or
        ``EncodedInstanceResult``). ``jsonfile_prefix`` also writes the COCO result files;
        ``backend`` is ``'pycocotools'`` or ``'faster-coco-eval'`` (``evaluation.backend``
        in a config, ``--eval-backend`` in tools/test_ins.py)."""
        from ..evaluation.coco_eval import (check_metrics, coco_evaluate, results2json,
                                            write_results_json)
        metrics = check_metrics(metric)
        dets = dict(zip(('segm', 'bbox'), results2json(self, results)))
        if jsonfile_prefix is not None:
            write_results_json(dets, jsonfile_prefix)
        kept = getattr(self, '_coco', None) is not None
        try:
            gt = self.coco if backend == 'pycocotools' else self.ground_truth(backend)
            out: Dict[str, Any] = {}
            for m in metrics:
                out.update(coco_evaluate(gt, dets[m], m, classwise=classwise,
                                         class_names=self.CLASSES, logger=logger,
                                         img_ids=self.img_ids, cat_ids=self.cat_ids,
                                         backend=backend))
                dets[m] = None
            return out
        finally:
            if not kept:
                self.release_coco()
