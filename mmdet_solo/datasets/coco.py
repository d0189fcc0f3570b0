"""``CocoDataset``: COCO instance annotations read with pycocotools (mmdet v1 semantics).

- Categories are looked up by **name** and mapped to contiguous 0-based labels in the
  order of ``CLASSES`` (``COCO_CLASSES`` or ``classes=``); annotations of other categories
  are skipped. ``'traffic_light'`` also matches ``'traffic light'``.
- Boxes follow mmdet v1: ``[x, y, x + w - 1, y + h - 1]``; annotations with ``w < 1``,
  ``h < 1``, ``area <= 0`` or ``ignore`` are skipped; crowd boxes go to ``bboxes_ignore``.
- Masks stay COCO segmentations (polygons / RLE) and are decoded per sample by
  ``LoadAnnotations``; the dataset never holds decoded masks.
"""
from __future__ import annotations

import contextlib
import io
import os.path as osp
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from pycocotools.coco import COCO

from ..registry import DATASETS
from .class_names import COCO_CLASSES
from .custom import CustomDataset


def _norm(name: str) -> str:
    return name.replace('_', ' ').strip().lower()


@DATASETS.register_module()
class CocoDataset(CustomDataset):
    """COCO-format instance segmentation dataset; see the module docstring and ``CustomDataset``."""

    CLASSES = COCO_CLASSES

    # ----------------------------------------------------------------- loading
    def load_annotations(self, ann_file: str) -> List[Dict[str, Any]]:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools chatters
                self.coco = COCO(ann_file)
        except Exception as e:
            raise ValueError(f'{type(self).__name__}: cannot read COCO annotation file '
                             f'{ann_file!r}: {type(e).__name__}: {e}') from e
        self.cat_ids = self._match_categories(ann_file)
        self.cat2label = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}
        self.img_ids = list(self.coco.getImgIds())
        img_infos = []
        for img_id in self.img_ids:
            info = dict(self.coco.imgs[img_id])
            missing = [k for k in ('file_name', 'height', 'width') if k not in info]
            if missing:
                raise KeyError(f'{ann_file!r}: image id {img_id} has no {missing} field(s)')
            info['filename'] = info['file_name']
            img_infos.append(info)
        return img_infos

    def _match_categories(self, ann_file: str) -> List[int]:
        """COCO category ids in the order of ``self.CLASSES`` (looked up by name)."""
        by_name: Dict[str, int] = {}
        by_norm: Dict[str, List[int]] = {}
        for cat in self.coco.dataset.get('categories', []):
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

    # ----------------------------------------------------------------- filtering
    def _usable(self, ann: Dict[str, Any]) -> bool:
        """A training target: known class, not crowd/ignored, non-degenerate box."""
        if ann.get('ignore', False) or ann.get('iscrowd', False):
            return False
        if ann.get('category_id') not in self.cat2label:
            return False
        _, _, w, h = ann['bbox']
        return ann.get('area', 0) > 0 and w >= 1 and h >= 1

    def _filter_imgs(self, min_size: int = 32) -> List[int]:
        """Drop images without usable annotations (if ``filter_empty_gt``) or too small."""
        with_ann = {ann['image_id'] for ann in self.coco.anns.values() if self._usable(ann)}
        keep, no_ann, small = [], 0, 0
        for i, info in enumerate(self.img_infos):
            if self.filter_empty_gt and self.img_ids[i] not in with_ann:
                no_ann += 1
            elif min(info['width'], info['height']) < min_size:
                small += 1
            else:
                keep.append(i)
        self.filter_stats = {'without usable annotations': no_ann,
                             f'smaller than min_size={min_size}': small}
        return keep

    # ----------------------------------------------------------------- annotations
    def get_ann_info(self, idx: int) -> Dict[str, Any]:
        img_id = self.img_infos[idx]['id']
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=[img_id]))
        return self._parse_ann_info(self.img_infos[idx], anns)

    def _parse_ann_info(self, img_info: Dict[str, Any], anns: List[Dict[str, Any]]
                        ) -> Dict[str, Any]:
        """Boxes ``[x, y, x+w-1, y+h-1]``, 0-based labels, raw segmentations, crowd → ignore."""
        bboxes, labels, masks, ignore = [], [], [], []
        for ann in anns:
            if ann.get('ignore', False) or ann.get('category_id') not in self.cat2label:
                continue
            x, y, w, h = ann['bbox']
            if ann.get('area', 0) <= 0 or w < 1 or h < 1:
                continue
            box = [x, y, x + w - 1, y + h - 1]
            if ann.get('iscrowd', False):
                ignore.append(box)
            else:
                bboxes.append(box)
                labels.append(self.cat2label[ann['category_id']])
                masks.append(ann['segmentation'])
        return dict(
            bboxes=np.array(bboxes, dtype=np.float32).reshape(-1, 4),
            labels=np.array(labels, dtype=np.int64),
            bboxes_ignore=np.array(ignore, dtype=np.float32).reshape(-1, 4),
            masks=masks,
            seg_map=osp.splitext(img_info['filename'])[0] + '.png')

    # ----------------------------------------------------------------- evaluation
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
                 logger: Any = None) -> Dict[str, Any]:
        """COCO evaluation of ``InstanceResult`` s (one per image, in dataset order)."""
        from ..evaluation.coco_eval import check_metrics, coco_evaluate
        metrics = check_metrics(metric)
        result_files, tmp_dir = self.format_results(results, jsonfile_prefix)
        try:
            out: Dict[str, Any] = {}
            for m in metrics:
                out.update(coco_evaluate(self.coco, result_files[m], m, classwise=classwise,
                                         class_names=self.CLASSES, logger=logger,
                                         img_ids=self.img_ids, cat_ids=self.cat_ids))
            return out
        finally:
            if tmp_dir is not None:
                tmp_dir.cleanup()
