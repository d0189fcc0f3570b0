"""COCO error analysis: how much precision each kind of error costs (the breakdown of the COCO
detection challenge's ``analyze`` figures, drawn by MMDetection's
tools/analysis_tools/coco_error_analysis.py).

For every category and area range, precision-recall curves (101 recall points, at most 100
detections per image) are computed under successively more forgiving settings:

- ``C75`` / ``C50``: PR at IoU 0.75 / 0.5 (the COCO AP75 / AP50 curves);
- ``Loc``: PR at IoU 0.1 (localisation errors forgiven);
- ``Sim``: also forgiving confusion with categories of the same ``supercategory`` (their
  ground truths become ignored regions of this category);
- ``Oth``: also forgiving confusion with any other category;
- ``BG``: also forgiving background false positives (precision 1 wherever ``Oth`` reaches);
- ``FN``: also forgiving missed objects (precision 1 everywhere).

The area under each curve is its "AP". Overall figures average over the categories that have
ground truth in that area range (as COCO's AP does; MMDetection's tool counts categories without
ground truth as 0). The ``C75``/``C50`` overall values of the ``all`` area equal COCOeval's AP75
and AP50.
"""
from __future__ import annotations

import contextlib
import io
import os
import os.path as osp
import re
from multiprocessing import Pool
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tqdm import tqdm

from ..utils.io import atomic_write

ERROR_TYPES = ('C75', 'C50', 'Loc', 'Sim', 'Oth', 'BG', 'FN')
AREA_NAMES = ('allarea', 'small', 'medium', 'large')
DEFAULT_AREAS = (32 ** 2, 96 ** 2, 1e10)
# fill colours of the stacked curves (MMDetection's / the COCO figures' palette)
COLORS = ((1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (0.31, 0.51, 0.74), (0.75, 0.31, 0.30),
          (0.36, 0.90, 0.38), (0.50, 0.39, 0.64), (1.0, 0.6, 0.0))
# text colours of C75/C50, whose fills are white: dark greys
_LINE = (0.35, 0.35, 0.35)


class ErrorBreakdown(NamedTuple):
    """``precision``: (7, 101, K, 4) by error type, recall point, category, area range
    (-1 where a category has no ground truth in that range); ``rec_thrs``: the recall points."""
    iou_type: str
    precision: np.ndarray
    rec_thrs: np.ndarray
    cat_ids: List[int]
    cat_names: List[str]
    area_rng: List[List[float]]

    @property
    def has_gt(self) -> np.ndarray:
        """(K, 4) bool: the category has ground truth in the area range."""
        return (self.precision[0] >= 0).all(axis=0)

    def ap(self, error_type: str, area: str = 'allarea', cat: Optional[int] = None) -> float:
        """Area under the ``error_type`` curve for one category index (``None``: the mean over
        categories with ground truth; NaN where there is none)."""
        t, a = ERROR_TYPES.index(error_type), AREA_NAMES.index(area)
        valid = self.has_gt[:, a]
        if cat is not None:
            return float(self.precision[t, :, cat, a].mean()) if valid[cat] else float('nan')
        if not valid.any():
            return float('nan')
        return float(self.precision[t, :, valid, a].mean())

    def curve(self, error_type: str, area: str = 'allarea', cat: Optional[int] = None
              ) -> np.ndarray:
        """The precision at each recall point (mean over categories with ground truth)."""
        t, a = ERROR_TYPES.index(error_type), AREA_NAMES.index(area)
        if cat is not None:
            return np.clip(self.precision[t, :, cat, a], 0, None)
        valid = self.has_gt[:, a]
        if not valid.any():
            return np.zeros(len(self.rec_thrs))
        return self.precision[t][:, valid, a].mean(axis=1)

    def summary(self) -> Dict[str, Dict[str, Dict[str, Optional[float]]]]:
        """{area: {error type: {'all' or category name: AP (None: no ground truth)}}}."""
        def num(v: float) -> Optional[float]:
            return None if np.isnan(v) else round(v, 6)
        return {area: {t: dict([('all', num(self.ap(t, area)))]
                                + [(n, num(self.ap(t, area, k)))
                                   for k, n in enumerate(self.cat_names)])
                       for t in ERROR_TYPES} for area in AREA_NAMES}


def area_ranges(areas: Sequence[float] = DEFAULT_AREAS) -> List[List[float]]:
    """``[all, small, medium, large]`` ranges from the upper bounds ``(small, medium, large)``."""
    if len(areas) != 3 or not 0 < areas[0] < areas[1] < areas[2]:
        raise ValueError(f'areas must be 3 increasing positive upper bounds (small, medium, '
                         f'large), got {list(areas)}')
    return [[0, areas[2]], [0, areas[0]], [areas[0], areas[1]], [areas[1], areas[2]]]


def _coco(dataset: Dict[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _precision(gt: COCO, dt: COCO, iou_type: str, img_ids: List[int], cat_ids: List[int],
               iou_thrs: Sequence[float], area_rng: List[List[float]]) -> np.ndarray:
    """COCOeval precision (T, 101, K, 4) at ``iou_thrs``, 100 detections per image."""
    ev = COCOeval(gt, dt, iou_type)
    p = ev.params
    p.imgIds, p.catIds, p.iouThrs, p.maxDets = img_ids, cat_ids, np.array(iou_thrs), [100]
    p.areaRng, p.areaRngLbl = area_rng, list(AREA_NAMES)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
    return ev.eval['precision'][..., 0]


# per-process state of the category workers (set once by _init_worker: no per-task pickling)
_STATE: Dict[str, Any] = {}


def _init_worker(gt: COCO, dt: COCO, iou_type: str, area_rng: List[List[float]]) -> None:
    _STATE.update(gt=gt, dt=dt, iou_type=iou_type, area_rng=area_rng)


def _category_errors(cat_id: int) -> np.ndarray:
    """(2, 101, 4): the IoU-0.1 precision of one category with same-supercategory (Sim) and
    all other-category (Oth) ground truths turned into ignored regions of it."""
    gt, dt = _STATE['gt'], _STATE['dt']
    img_ids = sorted(gt.getImgIds())
    supercat = gt.cats[cat_id].get('supercategory')
    similar = {c for c, cat in gt.cats.items()
               if supercat is not None and cat.get('supercategory') == supercat}
    own = [a for a in gt.dataset['annotations'] if a['category_id'] == cat_id]
    dets = dict(dt.dataset, annotations=[a for a in dt.dataset['annotations']
                                         if a['category_id'] == cat_id])
    dt_cat = _coco(dets)
    out = []
    for forgive in (similar, set(gt.cats)):
        ignored = [dict(a, iscrowd=1, ignore=1, category_id=cat_id)
                   for a in gt.dataset['annotations']
                   if a['category_id'] != cat_id and a['category_id'] in forgive]
        gt_cat = _coco(dict(gt.dataset, annotations=own + ignored))
        out.append(_precision(gt_cat, dt_cat, _STATE['iou_type'], img_ids, [cat_id], [0.1],
                              _STATE['area_rng'])[0, :, 0])
    return np.stack(out)


def error_breakdown(gt: COCO, dt: COCO, iou_type: str,
                    areas: Sequence[float] = DEFAULT_AREAS, nproc: int = 1) -> ErrorBreakdown:
    """The breakdown of ``dt`` (``gt.loadRes(...)``) against ``gt``; see the module docstring.
    ``nproc > 1`` analyses the categories in that many processes."""
    if iou_type not in ('segm', 'bbox'):
        raise ValueError(f"iou_type must be 'segm' or 'bbox', got {iou_type!r}")
    area_rng = area_ranges(areas)
    img_ids, cat_ids = sorted(gt.getImgIds()), sorted(gt.getCatIds())
    ps3 = _precision(gt, dt, iou_type, img_ids, cat_ids, [0.75, 0.5, 0.1], area_rng)
    ps = np.zeros((len(ERROR_TYPES), *ps3.shape[1:]), dtype=np.float64)
    ps[:3] = ps3
    init = (gt, dt, iou_type, area_rng)
    bar = dict(total=len(cat_ids), desc=f'{iou_type} categories', leave=False,
               disable=len(cat_ids) < 10)
    if nproc > 1 and len(cat_ids) > 1:
        with Pool(min(nproc, len(cat_ids)), _init_worker, init) as pool:
            per_cat = list(tqdm(pool.imap(_category_errors, cat_ids), **bar))
    else:
        _init_worker(*init)
        per_cat = [_category_errors(c) for c in tqdm(cat_ids, **bar)]
    _STATE.clear()
    for k, sim_oth in enumerate(per_cat):
        ps[3:5, :, k] = sim_oth
    no_gt = ps3[0] < 0                                   # (101, K, 4): same for every type
    ps = np.clip(ps, 0, None)
    ps[5] = ps[4] > 0                                    # BG: background errors forgiven
    ps[6] = 1.0                                          # FN: missed objects forgiven
    ps[:, no_gt] = -1
    names = [gt.cats[c]['name'] for c in cat_ids]
    return ErrorBreakdown(iou_type, ps, np.asarray(COCOeval(iouType=iou_type).params.recThrs),
                          cat_ids, names, area_rng)


def _safe(name: str) -> str:
    return re.sub(r'[^\w.+-]+', '_', name)


def plot_breakdown(eb: ErrorBreakdown, out_dir: str, cat: Optional[int] = None,
                   areas: Sequence[str] = AREA_NAMES) -> List[str]:
    """One stacked PR plot per area range (``<type>-<class or allclass>-<area>.png``), as the
    COCO analysis figures: each band is the precision one kind of error costs, the legend
    gives each curve's AP. Returns the files written."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    name = 'allclass' if cat is None else eb.cat_names[cat]
    files = []
    for area in areas:
        a = AREA_NAMES.index(area)
        if not (eb.has_gt[:, a].any() if cat is None else eb.has_gt[cat, a]):
            continue
        title = f'{eb.iou_type}-{name}-{area}'
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        below = np.zeros(len(eb.rec_thrs))
        for t, err in enumerate(ERROR_TYPES):
            curve = eb.curve(err, area, cat)
            ax.plot(eb.rec_thrs, curve, color=_LINE if t < 2 else (0, 0, 0), linewidth=0.6)
            ax.fill_between(eb.rec_thrs, below, curve, color=COLORS[t],
                            label=f'[{eb.ap(err, area, cat):.3f}] {err}')
            below = curve
        ax.set_xlabel('recall')
        ax.set_ylabel('precision')
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(title)
        ax.legend(loc='lower left', fontsize='small')
        path = osp.join(out_dir, _safe(title) + '.png')
        atomic_write(path, lambda f: fig.savefig(f, format='png', dpi=80))
        plt.close(fig)
        files.append(path)
    return files


def plot_bars(eb: ErrorBreakdown, out_dir: str) -> str:
    """Bar chart of the overall AP of each error type (but FN) per area range."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    x = np.arange(len(AREA_NAMES))
    width = 0.6 / (len(ERROR_TYPES) - 1)
    for t, err in enumerate(ERROR_TYPES[:-1]):
        aps = [eb.ap(err, area) for area in AREA_NAMES]  # NaN: no ground truth there
        bars = ax.bar(x - 0.3 + (t + 0.5) * width, np.nan_to_num(aps), width, label=err)
        ax.bar_label(bars, labels=['-' if np.isnan(v) else f'{100 * v:.0f}' for v in aps],
                     fontsize='x-small')
    ax.set_xticks(x, AREA_NAMES)
    ax.set_ylabel('AP')
    ax.set_ylim(0, 1.1)
    ax.set_title(f'{eb.iou_type}-allclass-ap bar plot')
    ax.legend(fontsize='small', ncol=3)
    path = osp.join(out_dir, f'{eb.iou_type}-allclass-ap_bar_plot.png')
    atomic_write(path, lambda f: fig.savefig(f, format='png', dpi=80))
    plt.close(fig)
    return path


def _plot_category(args: tuple) -> List[str]:
    eb, out_dir, k = args
    return plot_breakdown(eb, out_dir, k)


def write_breakdown(eb: ErrorBreakdown, out_dir: str, per_category: bool = True,
                    bars: bool = False, nproc: int = 1) -> List[str]:
    """Every plot of ``eb`` and ``error_analysis.json`` (its :meth:`summary`) under
    ``out_dir`` (the per-category plots in ``nproc`` processes); returns the files written."""
    from .results_io import dump_json_atomic
    os.makedirs(out_dir, exist_ok=True)
    files = plot_breakdown(eb, out_dir)
    if per_category:
        jobs = [(eb, out_dir, k) for k in range(len(eb.cat_ids))]
        bar = dict(total=len(jobs), desc=f'{eb.iou_type} plots', leave=False,
                   disable=len(jobs) < 10)
        if nproc > 1 and len(jobs) > 1:
            with Pool(min(nproc, len(jobs))) as pool:
                for done in tqdm(pool.imap(_plot_category, jobs), **bar):
                    files += done
        else:
            for job in tqdm(jobs, **bar):
                files += _plot_category(job)
    if bars:
        files.append(plot_bars(eb, out_dir))
    path = osp.join(out_dir, 'error_analysis.json')
    dump_json_atomic(dict(iou_type=eb.iou_type, area_ranges=dict(zip(AREA_NAMES, eb.area_rng)),
                          ap=eb.summary()), path)
    return files + [path]
