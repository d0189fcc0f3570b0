"""The official Cityscapes instance-level AP (cityscapesScripts'
``evalInstanceLevelSemanticLabeling``) of ``InstanceResult`` lists: metric ``'cityscapes'`` of
:class:`~mmdet_solo.datasets.CityscapesDataset`.

The results are written in the Cityscapes submission format (per image
``<frame>_leftImg8bit_pred.txt`` with one ``<mask png> <label id> <score>`` line per instance,
one PNG per instance), then evaluated against ``<gt_dir>/<city>/<frame>_gtFine_instanceIds.png``;
where those images are missing they are drawn from the ``*_gtFine_polygons.json`` next to them
(as cityscapesScripts' ``json2instanceImg`` draws them) into the output folder. AP = mean over
IoU 0.5:0.95 and the 8 classes (``cityscapes_mAP``), ``cityscapes_AP50`` at IoU 0.5.
Needs ``pip install cityscapesscripts`` (requirements/optional.txt).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import tempfile
from typing import Any, Dict, List, Optional, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from .coco_eval import _check_result, format_table, print_log

CITYSCAPES_METRIC = 'cityscapes'


class _NumpyWithIn1d:
    """numpy for cityscapesScripts (2.3.0 calls ``np.in1d``, removed in NumPy 2.4): every
    attribute is numpy's, plus ``in1d`` as ``isin`` of the flattened input (its definition)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def in1d(ar1: Any, ar2: Any, assume_unique: bool = False, invert: bool = False) -> np.ndarray:
        return np.isin(np.ravel(ar1), ar2, assume_unique=assume_unique, invert=invert)


def _import_cseval() -> Any:
    try:
        import cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling as cseval
    except ImportError as e:
        raise ImportError("metric 'cityscapes' needs the official Cityscapes scripts: pip install "
                          'cityscapesscripts (requirements/optional.txt); the COCO metrics '
                          "'segm'/'bbox' need nothing extra") from e
    # NumPy 2 compatibility, in that module's names only (numpy itself is untouched)
    if not hasattr(np, 'in1d') and not hasattr(cseval.np, 'in1d'):
        cseval.np = _NumpyWithIn1d()
    cseval.writeDict2JSON = _write_json
    return cseval


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return o.__dict__


def _write_json(d: Any, path: str) -> None:
    """cityscapesScripts' ``writeDict2JSON`` for NumPy 2, whose counts are NumPy scalars
    (the original serialises objects through ``__dict__``, which they lack)."""
    with open(path, 'w') as f:
        f.write(json.dumps(d, default=_json_default, sort_keys=True, indent=4))


def _frame(filename: str) -> str:
    """``aachen/aachen_000000_000019_leftImg8bit.png`` -> ``aachen_000000_000019``."""
    stem = osp.splitext(osp.basename(filename))[0]
    return stem[:-len('_leftImg8bit')] if stem.endswith('_leftImg8bit') else stem


def gt_instance_files(dataset: Any, gt_dir: str, work_dir: str) -> List[str]:
    """The ``*_gtFine_instanceIds.png`` of every dataset image, drawn from its polygon file
    into ``work_dir/gtFine`` where the PNG is missing."""
    from ..datasets.cityscapes import instance_id_image, read_polygons
    files = []
    for i in range(len(dataset)):
        name = dataset.img_infos[i]['filename']
        city, frame = osp.basename(osp.dirname(name)), _frame(name)
        base = osp.join(gt_dir, city, frame + '_gtFine_')
        png = base + 'instanceIds.png'
        if not osp.isfile(png):
            poly = base + 'polygons.json'
            if not osp.isfile(poly):
                raise FileNotFoundError(f"metric 'cityscapes': neither {png!r} nor {poly!r} "
                                        f'exists for image {name!r}; pass gt_dir=<gtFine/split '
                                        'folder> (evaluation.gt_dir in a config)')
            png = osp.join(work_dir, 'gtFine', city, frame + '_gtFine_instanceIds.png')
            os.makedirs(osp.dirname(png), exist_ok=True)
            # 16-bit PNG, as the released instanceIds images (ids < 34000)
            cv2.imwrite(png, instance_id_image(read_polygons(poly), poly).astype(np.uint16))
        files.append(png)
    return files


def write_predictions(dataset: Any, results: Sequence[Any], pred_dir: str) -> List[str]:
    """Write the results in the Cityscapes format under ``pred_dir``; return the txt files."""
    from ..datasets.cityscapes import NAME2LABEL
    label_ids = np.array([NAME2LABEL[c].id for c in dataset.CLASSES], dtype=np.int64)
    txts = []
    for i, res in enumerate(tqdm(results, desc='cityscapes results', leave=False,
                                 disable=len(results) < 200)):
        info = dataset.img_infos[i]
        _check_result(i, res, info, len(dataset.CLASSES))
        frame = _frame(info['filename'])
        lines = []
        if len(res):
            masks = np.asarray(res.masks, dtype=bool)
            ids = label_ids[np.asarray(res.labels)]
            for j, (mask, cid, score) in enumerate(zip(masks, ids, np.asarray(res.scores))):
                png = f'{frame}_{j}_{dataset.CLASSES[res.labels[j]].replace(" ", "_")}.png'
                cv2.imwrite(osp.join(pred_dir, png), mask.astype(np.uint8) * 255)
                lines.append(f'{png} {int(cid)} {float(score):.6f}\n')
        txt = osp.join(pred_dir, f'{frame}_leftImg8bit_pred.txt')
        with open(txt, 'w') as f:
            f.writelines(lines)
        txts.append(txt)
    return txts


def cityscapes_evaluate(dataset: Any, results: Sequence[Any], gt_dir: str,
                        outfile_prefix: Optional[str] = None, logger: Any = None
                        ) -> Dict[str, Any]:
    """Official Cityscapes AP of ``results`` (one per dataset image, in order); the prediction
    files go to ``outfile_prefix`` (a new folder, default: a temporary one)."""
    cseval = _import_cseval()
    if len(results) != len(dataset):
        raise ValueError(f"metric 'cityscapes': {len(results)} results for {len(dataset)} images")
    tmp = None
    if outfile_prefix is None:
        tmp = tempfile.TemporaryDirectory()
        out_dir = tmp.name
    else:
        out_dir = outfile_prefix
        if osp.exists(out_dir) and os.listdir(out_dir):
            raise FileExistsError(f"metric 'cityscapes': outfile_prefix {out_dir!r} is not "
                                  'empty; give a new folder')
    try:
        out_dir = osp.abspath(out_dir)
        pred_dir = osp.join(out_dir, 'pred')
        os.makedirs(pred_dir, exist_ok=True)
        gts = gt_instance_files(dataset, osp.abspath(gt_dir), out_dir)
        preds = write_predictions(dataset, results, pred_dir)
        args = cseval.args
        args.predictionPath, args.predictionWalk = pred_dir, None
        args.gtInstancesFile = osp.join(out_dir, 'gtInstances.json')
        args.exportFile = osp.join(out_dir, 'resultInstanceLevelSemanticLabeling.json')
        args.JSONOutput, args.colorized, args.quiet, args.csv = False, False, True, False
        cwd = os.getcwd()
        os.chdir(out_dir)  # the scripts write matches.json into the working directory
        try:
            res = cseval.evaluateImgLists(preds, gts, args)
        except SystemExit as e:  # cityscapesScripts' printError exits
            raise RuntimeError(f"metric 'cityscapes': cityscapesScripts stopped (see the "
                               f'message above), exit status {e.code}') from None
        finally:
            os.chdir(cwd)
    finally:
        if tmp is not None:
            tmp.cleanup()
    avg = res['averages']
    out = {'cityscapes_mAP': float(avg['allAp']), 'cityscapes_AP50': float(avg['allAp50%'])}
    rows = [(name, f"{float(v['ap']):.3f}") for name, v in avg['classes'].items()]
    print_log('Cityscapes instance AP per class:\n' + format_table(rows), logger)
    print_log(f"Cityscapes AP {out['cityscapes_mAP']:.3f}  AP50 {out['cityscapes_AP50']:.3f}",
              logger)
    return out
