"""``CityscapesDataset``: Cityscapes instance segmentation in COCO format, and the gtFine
polygon rasteriser shared by the converter (tools/convert_datasets/cityscapes.py) and the
official Cityscapes evaluation.

The COCO files are those of MMDetection's converter
(``annotations/instancesonly_filtered_gtFine_{train,val,test}.json``): the 8 thing classes
that Cityscapes evaluates (caravan and trailer are ``ignoreInEval``), category ids = Cityscapes
label ids, crowd annotations from the ``*group`` polygons. Training drops images whose
annotations are all crowd (``CocoDataset``'s ``filter_empty_gt``, as MMDetection's
``CityscapesDataset``).

Label table and drawing rules: cityscapesScripts (``helpers/labels.py``,
``preparation/json2instanceImg.py``, https://github.com/mcordts/cityscapesScripts).
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as mask_utils
from PIL import Image, ImageDraw

from ..registry import DATASETS
from .class_names import CITYSCAPES_CLASSES
from .coco import CocoDataset


class CsLabel(NamedTuple):
    name: str
    id: int
    has_instances: bool
    ignore_in_eval: bool


# (name, id, hasInstances, ignoreInEval) of cityscapesScripts' labels.py, in its order
CS_LABELS: Tuple[CsLabel, ...] = tuple(CsLabel(*t) for t in (
    ('unlabeled', 0, False, True), ('ego vehicle', 1, False, True),
    ('rectification border', 2, False, True), ('out of roi', 3, False, True),
    ('static', 4, False, True), ('dynamic', 5, False, True), ('ground', 6, False, True),
    ('road', 7, False, False), ('sidewalk', 8, False, False), ('parking', 9, False, True),
    ('rail track', 10, False, True), ('building', 11, False, False), ('wall', 12, False, False),
    ('fence', 13, False, False), ('guard rail', 14, False, True), ('bridge', 15, False, True),
    ('tunnel', 16, False, True), ('pole', 17, False, False), ('polegroup', 18, False, True),
    ('traffic light', 19, False, False), ('traffic sign', 20, False, False),
    ('vegetation', 21, False, False), ('terrain', 22, False, False), ('sky', 23, False, False),
    ('person', 24, True, False), ('rider', 25, True, False), ('car', 26, True, False),
    ('truck', 27, True, False), ('bus', 28, True, False), ('caravan', 29, True, True),
    ('trailer', 30, True, True), ('train', 31, True, False), ('motorcycle', 32, True, False),
    ('bicycle', 33, True, False), ('license plate', -1, False, True)))
NAME2LABEL: Dict[str, CsLabel] = {lb.name: lb for lb in CS_LABELS}
ID2LABEL: Dict[int, CsLabel] = {lb.id: lb for lb in CS_LABELS}
# the evaluated thing classes (COCO categories of the converted files), id order
THING_LABELS: Tuple[CsLabel, ...] = tuple(lb for lb in CS_LABELS
                                          if lb.has_instances and not lb.ignore_in_eval)
assert tuple(lb.name for lb in THING_LABELS) == CITYSCAPES_CLASSES


def read_polygons(json_file: str) -> Dict[str, Any]:
    """A ``*_gtFine_polygons.json`` file, checked: ``imgHeight``, ``imgWidth`` and ``objects``
    with a ``label`` and a ``polygon`` each."""
    try:
        with open(json_file, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f'cannot read Cityscapes polygon file {json_file!r}: '
                         f'{type(e).__name__}: {e}') from e
    missing = [k for k in ('imgHeight', 'imgWidth', 'objects') if k not in data]
    if missing:
        raise KeyError(f'{json_file!r}: not a gtFine polygon file (no {missing}; expected '
                       'imgHeight, imgWidth and objects)')
    for i, obj in enumerate(data['objects']):
        if 'label' not in obj or 'polygon' not in obj:
            raise KeyError(f'{json_file!r}: objects[{i}] has no label or polygon')
    return data


def instance_id_image(polygons: Dict[str, Any], source: str = '<polygons>') -> np.ndarray:
    """The ``*_gtFine_instanceIds.png`` image (int32, H x W) of one polygon file, drawn as
    cityscapesScripts' ``json2instanceImg`` draws it: objects in file order (later ones occlude
    earlier ones), deleted ones skipped, ``label * 1000 + k`` for the k-th instance of a thing
    class, the bare label id for stuff and for ``*group`` (crowd) polygons, 0 elsewhere."""
    img = Image.new('I', (int(polygons['imgWidth']), int(polygons['imgHeight'])), 0)
    draw = ImageDraw.Draw(img)
    counts: Dict[str, int] = {}
    for obj in polygons['objects']:
        if obj.get('deleted', 0):
            continue
        name, group = obj['label'], False
        if name not in NAME2LABEL and name.endswith('group'):
            name, group = name[:-len('group')], True
        if name not in NAME2LABEL:
            raise ValueError(f'{source}: unknown Cityscapes label {obj["label"]!r} (known: '
                             f'{[lb.name for lb in CS_LABELS]} and <thing>group)')
        label = NAME2LABEL[name]
        value = label.id
        if label.has_instances and not group:
            value = label.id * 1000 + counts.get(name, 0)
            counts[name] = counts.get(name, 0) + 1
        if value < 0:
            continue
        draw.polygon([(float(x), float(y)) for x, y in obj['polygon']], fill=value)
    return np.asarray(img, dtype=np.int32)


def instance_annotations(inst_img: np.ndarray) -> List[Dict[str, Any]]:
    """COCO annotations (without ids) of the evaluated thing instances of an instance-id
    image, as MMDetection's converter makes them: RLE mask, ``[x, y, w, h]`` box and area
    from the mask, ``iscrowd = 1`` for group regions (ids below 1000)."""
    ids = np.unique(inst_img[inst_img >= 24])  # ids < 24 are stuff
    anns = []
    for inst_id in ids.tolist():
        label = ID2LABEL.get(inst_id // 1000 if inst_id >= 1000 else inst_id)
        if label is None or not label.has_instances or label.ignore_in_eval:
            continue
        rle = mask_utils.encode(np.asfortranarray(inst_img == inst_id, dtype=np.uint8))
        anns.append(dict(iscrowd=int(inst_id < 1000), category_id=label.id,
                         bbox=[float(v) for v in mask_utils.toBbox(rle)],
                         area=float(mask_utils.area(rle)),
                         segmentation=dict(size=rle['size'], counts=rle['counts'].decode())))
    return anns


POLYGON_SUFFIX = '_gtFine_polygons.json'


def polygon_file_to_coco(json_file: str) -> Dict[str, Any]:
    """One ``<city>/<frame>_gtFine_polygons.json``: its COCO ``images`` entry (without id;
    ``file_name`` ``<city>/<frame>_leftImg8bit.png``) with its annotations in ``anno_info``."""
    polygons = read_polygons(json_file)
    inst = instance_id_image(polygons, json_file)
    city = osp.basename(osp.dirname(json_file))
    name = osp.basename(json_file)
    if not name.endswith(POLYGON_SUFFIX):
        raise ValueError(f'{json_file!r}: expected a *{POLYGON_SUFFIX} file')
    frame = name[:-len(POLYGON_SUFFIX)]
    return dict(file_name=f'{city}/{frame}_leftImg8bit.png', height=int(inst.shape[0]),
                width=int(inst.shape[1]), segm_file=f'{city}/{frame}_gtFine_labelIds.png',
                anno_info=instance_annotations(inst))


def cityscapes_categories() -> List[Dict[str, Any]]:
    """The COCO ``categories`` of the converted files (the 8 evaluated thing classes)."""
    return [dict(id=lb.id, name=lb.name) for lb in THING_LABELS]


@DATASETS.register_module()
class CityscapesDataset(CocoDataset):
    """Cityscapes instances in COCO format (see the module docstring).

    ``evaluate`` adds the metric ``'cityscapes'``: the official instance-level AP of
    cityscapesScripts (``pip install cityscapesscripts``) against the ``gtFine`` annotations
    (``gt_dir``: a split folder of ``<city>/*_gtFine_instanceIds.png`` or
    ``*_gtFine_polygons.json``; default: ``img_prefix`` with ``leftImg8bit`` replaced by
    ``gtFine``, or ``<parent of img_prefix>/gtFine/<split>``).
    """

    CLASSES = CITYSCAPES_CLASSES

    def evaluate(self, results: Sequence[Any], metric: Union[str, Sequence[str]] = 'segm',
                 classwise: bool = False, jsonfile_prefix: Optional[str] = None,
                 logger: Any = None, backend: str = 'pycocotools',
                 outfile_prefix: Optional[str] = None, gt_dir: Optional[str] = None
                 ) -> Dict[str, Any]:
        """COCO ``segm``/``bbox`` (see ``CocoDataset.evaluate``) and/or ``cityscapes``; the
        Cityscapes prediction files go to ``outfile_prefix`` (default: a temporary folder)."""
        from ..evaluation.cityscapes_eval import CITYSCAPES_METRIC, cityscapes_evaluate
        metrics = [metric] if isinstance(metric, str) else list(metric)
        coco = [m for m in metrics if m != CITYSCAPES_METRIC]
        out: Dict[str, Any] = {}
        if coco or not metrics:
            out.update(super().evaluate(results, coco, classwise=classwise,
                                        jsonfile_prefix=jsonfile_prefix, logger=logger,
                                        backend=backend))
        if CITYSCAPES_METRIC in metrics:
            out.update(cityscapes_evaluate(self, results, gt_dir or self.default_gt_dir(),
                                           outfile_prefix=outfile_prefix, logger=logger))
        return out

    def default_gt_dir(self) -> str:
        """The ``gtFine/<split>`` folder next to the images (see the class docstring)."""
        prefix = osp.normpath(self.img_prefix or '.')
        if 'leftImg8bit' in prefix:
            return prefix.replace('leftImg8bit', 'gtFine')
        return osp.join(osp.dirname(prefix), 'gtFine', osp.basename(prefix))
