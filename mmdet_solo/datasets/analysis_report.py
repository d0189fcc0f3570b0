"""The dataset doctor's verdict: findings, a config suggestion, the printed report and its plot.

Works on the report dict of :meth:`mmdet_solo.datasets.analysis.DatasetStats.report`.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

# instances below this sqrt(w*h) at the input are 2 px or less in the 1/4-resolution masks
MIN_USEFUL_SIZE = 8.0
# the share of instances outside every scale range above which a config change is suggested
SUGGEST_ABOVE = 0.01


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f'{v:g}'


def suggest(report: Dict[str, Any], scale: np.ndarray,
            img_scale: Optional[List[Tuple[int, int]]] = None) -> Optional[Dict[str, Any]]:
    """A ``scale_ranges`` (and ``img_scale``) change when more than :data:`SUGGEST_ABOVE` of
    the instances fall outside every range: the lowest bound lowered to the smallest
    instance, the highest raised to the largest one, gaps between levels closed; if many
    instances are below :data:`MIN_USEFUL_SIZE` px, a larger input size (at most x2).
    ``None`` if nothing needs changing."""
    n = report['instances']['total']
    if n == 0:
        return None
    outside = report['assignment']['unassigned_outside_ranges']
    small = report['scale']['below_min_useful']
    if outside <= SUGGEST_ABOVE * n and small <= SUGGEST_ABOVE * n:
        return None
    ranges = [list(r) for r in report['head']['scale_ranges']]
    if outside > SUGGEST_ABOVE * n:
        ranges[0][0] = min(ranges[0][0], float(max(math.floor(float(scale.min())), 0)))
        ranges[-1][1] = max(ranges[-1][1], float(math.ceil(float(scale.max()))))
        for i in range(1, len(ranges)):
            ranges[i][0] = min(ranges[i][0], ranges[i - 1][1])
    lines = ['model = dict(bbox_head=dict(scale_ranges=('
             + ', '.join(f'({_fmt(lo)}, {_fmt(hi)})' for lo, hi in ranges) + ')))']
    out: Dict[str, Any] = dict(scale_ranges=ranges)
    if small > SUGGEST_ABOVE * n and img_scale:
        p5 = float(np.percentile(scale, 5))
        factor = min(2.0, MIN_USEFUL_SIZE / max(p5, 1e-6))
        if factor > 1.05:
            new = [(int(round(a * factor)), int(round(b * factor))) for a, b in img_scale]
            out['img_scale'] = new
            out['img_scale_factor'] = round(factor, 3)
            shown = new[0] if len(new) == 1 else new
            lines.append(f'img_scale = {tuple(shown) if len(new) == 1 else shown}  # in both '
                         'pipelines; scale_ranges and num_grids with it')
    out['snippet'] = '\n'.join(lines)
    return out


def findings(report: Dict[str, Any]) -> List[str]:
    """The problems of a report, worst first, in words."""
    out = []
    n = report['instances']['total']
    cls = report['classes']
    if not cls['match']:
        out.append(f"bbox_head.num_classes={cls['num_classes']} but the dataset has "
                   f"{cls['dataset_classes']} classes: set num_classes=len(classes) (object "
                   'classes only, no background)')
    if cls['labels_out_of_range']:
        out.append(f"{cls['labels_out_of_range']} instances have a label outside "
                   f"0..{cls['num_classes'] - 1}")
    a = report['assignment']
    if a['unassigned_outside_ranges']:
        out.append(f"{a['unassigned_outside_ranges']} of {n} instances "
                   f"({100 * a['unassigned_outside_ranges'] / max(n, 1):.1f} %) are outside every "
                   f"scale range ({a['unassigned_below_lowest']} below, "
                   f"{a['unassigned_above_highest']} above, {a['unassigned_in_gaps']} in gaps): "
                   'never learnt')
    if a['unassigned_empty_mask']:
        out.append(f"{a['unassigned_empty_mask']} instances have an empty mask after the "
                   'pipeline: never learnt')
    if report['instances']['classes_without_instances']:
        out.append('classes without any instance: '
                   f"{report['instances']['classes_without_instances']}")
    if a['never_labelled']:
        out.append(f"{a['never_labelled']} instances lose every one of their cells to later "
                   'instances (their class is never a category target)')
    if report['scale']['below_min_useful']:
        out.append(f"{report['scale']['below_min_useful']} instances are smaller than "
                   f'{MIN_USEFUL_SIZE:g} px (sqrt(w*h)) at the input: 2 px or less in the masks')
    for lvl in report['levels']:
        if n and lvl['instances'] == 0:
            out.append(f"level {lvl['level']} (S={lvl['num_grid']}, range "
                       f"{lvl['scale_range']}) gets no instance")
    if report['images']['corrupt']:
        out.append(f"{report['images']['corrupt']} image files cannot be decoded")
    return out


def format_report(report: Dict[str, Any]) -> str:
    """The report as readable text."""
    im, ins, a, pc = (report['images'], report['instances'], report['assignment'],
                      report['positive_cells'])
    n = max(ins['total'], 1)
    lines = [f"images analysed: {im['analysed']}   without instances: {im['without_instances']}"
             f"   dropped by the pipeline: {im['dropped_by_pipeline']}   corrupt: {im['corrupt']}"]
    for why, count in im['filtered_out'].items():
        if count:
            lines.append(f'images filtered out by the dataset ({why}): {count}')
    lines.append(f"instances: {ins['total']}   crowd regions (ignored): {ins['crowd_regions']}"
                 f"   empty after the pipeline: {ins['empty_after_pipeline']}")
    for why, entry in ins['dropped_annotations'].items():
        lines.append(f"annotations dropped ({why}): {entry['count']} (e.g. ids "
                     f"{entry['example_ids']})")
    width = max([len(c) for c in ins['per_class']] + [5])
    lines.append('instances per class:')
    lines += [f'  {name:<{width}} {count:>8}' for name, count in ins['per_class'].items()]
    cls = report['classes']
    lines.append(f"num_classes (head): {cls['num_classes']}   classes (dataset): "
                 f"{cls['dataset_classes']}   {'ok' if cls['match'] else 'MISMATCH'}")
    s = report['scale']['after_resize']
    if s['count']:
        lines.append('sqrt(w*h) at the input: ' + '  '.join(
            f'p{p} {s[f"p{p}"]:g}' for p in (0, 5, 50, 95, 100)))
    lines.append('level  S    scale range       instances  only here  pos.cells  pairs  '
                 'shared cells  lost claims')
    for lvl in report['levels']:
        lo, hi = lvl['scale_range']
        lines.append(f"{lvl['level']:>5}  {lvl['num_grid']:<4} {f'[{_fmt(lo)}, {_fmt(hi)}]':<16}"
                     f"  {lvl['instances']:>9}  {lvl['only_here']:>9}  {lvl['positive_cells']:>9}"
                     f"  {lvl['instance_cell_pairs']:>5}  {lvl['shared_cells']:>12}"
                     f"  {lvl['lost_claims']:>11}")
    per = a['levels_per_instance']
    lines.append(f"instances in 1 level: {per['1']}   in 2: {per['2']}   in 3+: {per['3+']}   "
                 f"in none: {a['unassigned']} ({100 * a['unassigned'] / n:.1f} %: "
                 f"{a['unassigned_outside_ranges']} outside the ranges, "
                 f"{a['unassigned_empty_mask']} empty masks)")
    lines.append(f"fit inside one cell of their finest level: {a['fits_in_one_cell']}   "
                 f"never a category target (all cells lost): {a['never_labelled']}")
    pi, pim = pc['per_instance'], pc['per_image']
    if pi['count']:
        lines.append(f"positive cells per instance: mean {pi['mean']:g}, median {pi['p50']:g}, "
                     f"max {pi['p100']:g}   per image: mean {pim['mean']:g}, max {pim['p100']:g}")
    lines.append(f"cells claimed by 2+ instances: {pc['shared_cells']}   claims lost to a later "
                 f"instance: {pc['lost_claims']} (instances losing some: "
                 f"{pc['instances_losing_cells']})")
    if report['findings']:
        lines.append('findings:')
        lines += [f'  - {f}' for f in report['findings']]
    else:
        lines.append('findings: none')
    if report['suggestion']:
        lines.append('suggested config change:')
        lines += ['    ' + line for line in report['suggestion']['snippet'].splitlines()]
    return '\n'.join(lines)


def plot_report(report: Dict[str, Any], path: str) -> None:
    """A PNG of the report: the sqrt(w*h) histogram under the levels' scale ranges (unassigned
    instances in red), positive cells per instance, and instances per class."""
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    from ..utils.io import atomic_write

    hist = report['scale']['histogram']
    classes = report['instances']['per_class']
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5),
                             gridspec_kw=dict(width_ratios=[2.2, 1.2, 1.4]))
    ax = axes[0]
    if hist['edges']:
        edges = np.asarray(hist['edges'])
        widths = np.diff(edges)
        assigned = np.asarray(hist['all']) - np.asarray(hist['unassigned'])
        ax.bar(edges[:-1], assigned, widths, align='edge', color='#4c72b0', label='assigned')
        ax.bar(edges[:-1], hist['unassigned'], widths, bottom=assigned, align='edge',
               color='#d62728', label='in no level (never learnt)')
        top = max(max(hist['all']), 1)
        cmap = plt.get_cmap('viridis')
        num_levels = len(report['levels'])
        for lvl in report['levels']:
            lo, hi = lvl['scale_range']
            y = top * (1.06 + 0.11 * lvl['level'])
            color = cmap(lvl['level'] / max(num_levels - 1, 1))
            ax.plot([max(lo, edges[0] * 0.8), min(hi, edges[-1] * 1.25)], [y, y], lw=5,
                    color=color, solid_capstyle='butt')
            ax.text(max(lo, edges[0] * 0.8), y + top * 0.02, f"L{lvl['level']} S={lvl['num_grid']}"
                    f" ({lvl['instances']})", va='bottom', fontsize=8)
        ax.set_xscale('log')
        ax.set_ylim(0, top * (1.15 + 0.11 * num_levels))
        ax.legend(loc='upper right', fontsize=8, bbox_to_anchor=(1, 0.7))
    ax.set_xlabel('sqrt(w*h) of the box at the input (px), log scale')
    ax.set_ylabel('instances')
    ax.set_title('instance sizes vs. the scale ranges (instances per level)')
    counts = report['positive_cells']['per_instance_counts']
    axes[1].bar(list(counts), list(counts.values()), color='#55a868')
    axes[1].set_xlabel('positive cells per instance (all levels)')
    axes[1].set_title(f"positive cells: {report['positive_cells']['shared_cells']} shared")
    names = list(classes)
    axes[2].barh(range(len(names)), list(classes.values()), color='#8172b2')
    axes[2].set_yticks(range(len(names)))
    axes[2].set_yticklabels(names, fontsize=max(4, min(9, int(400 / max(len(names), 1)))))
    axes[2].invert_yaxis()
    axes[2].set_title('instances per class')
    fig.tight_layout()
    try:
        atomic_write(path, lambda f: fig.savefig(f, format='png', dpi=90))
    finally:
        plt.close(fig)


__all__ = ['suggest', 'findings', 'format_report', 'plot_report', 'MIN_USEFUL_SIZE',
           'SUGGEST_ABOVE']
