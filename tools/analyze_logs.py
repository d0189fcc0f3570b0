"""Analyse the trainer's JSON logs (``work_dir/<timestamp>.log.json``).

    python tools/analyze_logs.py plot_curve LOG.json [LOG2.json ...] --keys loss_ins loss_cate \
        [--legend A B ...] [--title T] --out curve.png
    python tools/analyze_logs.py cal_train_time LOG.json [--include-outliers]

A log holds one JSON object per line: ``{"mode": "train", "epoch", "iter", "lr", "time",
"data_time", "loss_ins", ...}`` or ``{"mode": "val", "epoch", "segm_mAP", ...}``; lines without
``"mode"`` (environment / config metadata) are skipped.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

Record = Dict[str, Any]


def load_json_log(path: str) -> List[Record]:
    """The records of one log (lines with a ``mode``), in file order."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'log file not found: {path!r}')
    records: List[Record] = []
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}:{lineno}: not a JSON object ({e.msg}): '
                                 f'{line[:80]!r}') from e
            if not isinstance(obj, dict) or 'mode' not in obj:
                continue
            if 'epoch' not in obj:
                raise KeyError(f'{path}:{lineno}: a {obj["mode"]!r} record without "epoch"')
            records.append(obj)
    if not records:
        raise ValueError(f'{path}: no log records (lines with "mode") found')
    return records


def _train(records: Sequence[Record]) -> List[Record]:
    return [r for r in records if r['mode'] == 'train']


def iters_per_epoch(records: Sequence[Record]) -> int:
    """The last logged ``iter`` of the first training epoch (the x-axis unit, as mmdet)."""
    train = _train(records)
    if not train:
        return 1
    first = train[0]['epoch']
    return max(int(r.get('iter', 0)) for r in train if r['epoch'] == first) or 1


def curve(records: Sequence[Record], key: str, log_name: str = 'log'
          ) -> Tuple[np.ndarray, np.ndarray, str]:
    """``(xs, ys, unit)`` of ``key``: training values against the global iteration
    (``unit='iter'``), or validation values against the epoch (``unit='epoch'``)."""
    train = [r for r in _train(records) if key in r]
    if train:
        n = iters_per_epoch(records)
        xs = [(int(r['epoch']) - 1) * n + int(r.get('iter', 0)) for r in train]
        return np.asarray(xs, dtype=np.float64), np.asarray([r[key] for r in train], float), 'iter'
    val = [r for r in records if r['mode'] == 'val' and key in r]
    if val:
        return (np.asarray([r['epoch'] for r in val], dtype=np.float64),
                np.asarray([r[key] for r in val], float), 'epoch')
    known = sorted({k for r in records for k in r} - {'mode', 'epoch', 'iter'})
    raise KeyError(f'{log_name} has no {key!r} values; its keys: {known}')


def plot_curve(logs: Sequence[Tuple[str, List[Record]]], keys: Sequence[str],
               legend: Optional[Sequence[str]], out: str, title: Optional[str] = None,
               backend: str = 'Agg') -> str:
    """Plot ``keys`` of every ``(name, records)`` log on one axis; save the figure to ``out``."""
    import matplotlib
    matplotlib.use(backend)
    import matplotlib.pyplot as plt

    if legend is None:
        legend = [f'{osp.basename(name)}_{key}' for name, _ in logs for key in keys]
    if len(legend) != len(logs) * len(keys):
        raise ValueError(f'--legend: {len(legend)} labels for {len(logs)} log(s) x {len(keys)} '
                         f'key(s); give {len(logs) * len(keys)} (log-major order)')
    curves = [(recs, key, *curve(recs, key, name)) for name, recs in logs for key in keys]
    by_iter = any(unit == 'iter' for *_, unit in curves)
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, (recs, key, xs, ys, unit) in zip(legend, curves):
        if by_iter and unit == 'epoch':  # validation points at the end of their epoch
            xs = xs * iters_per_epoch(recs)
        ax.plot(xs, ys, label=label, marker='o' if unit == 'epoch' else None, linewidth=1)
    ax.set_xlabel('iter' if by_iter else 'epoch')
    ax.set_ylabel(keys[0] if len(keys) == 1 else 'value')
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    folder = osp.dirname(osp.abspath(out))
    if not osp.isdir(folder):
        raise FileNotFoundError(f'--out: folder {folder!r} does not exist')
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def cal_train_time(records: Sequence[Record], include_outliers: bool = False,
                   log_name: str = 'log') -> Dict[str, float]:
    """Iteration-time statistics from the training records' ``time``.

    The first record of each epoch is dropped (data-loader start-up) unless
    ``include_outliers`` or it is the epoch's only record. Returns ``average`` (mean over all
    kept records), ``slowest_epoch``/``slowest_time``, ``fastest_epoch``/``fastest_time``
    (per-epoch means) and ``std_over_epochs``.
    """
    per_epoch: Dict[int, List[float]] = OrderedDict()
    for r in _train(records):
        if 'time' in r:
            per_epoch.setdefault(int(r['epoch']), []).append(float(r['time']))
    if not per_epoch:
        raise KeyError(f'{log_name}: no training records with a "time" value')
    kept = {e: (t if include_outliers or len(t) == 1 else t[1:]) for e, t in per_epoch.items()}
    epochs = list(kept)
    means = np.asarray([np.mean(kept[e]) for e in epochs])
    slow, fast = int(means.argmax()), int(means.argmin())
    return dict(average=float(np.mean(np.concatenate([kept[e] for e in epochs]))),
                slowest_epoch=epochs[slow], slowest_time=float(means[slow]),
                fastest_epoch=epochs[fast], fastest_time=float(means[fast]),
                std_over_epochs=float(means.std()))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description='Analyse JSON training logs')
    sub = p.add_subparsers(dest='task', required=True)
    plot = sub.add_parser('plot_curve', help='plot metrics of one or more logs')
    plot.add_argument('json_logs', nargs='+', help='JSON log file(s)')
    plot.add_argument('--keys', nargs='+', default=['loss'], help='metrics to plot')
    plot.add_argument('--legend', nargs='+', help='one label per (log, key), log-major')
    plot.add_argument('--title', help='figure title')
    plot.add_argument('--out', required=True, help='output image (e.g. curve.png)')
    plot.add_argument('--backend', default='Agg', help='matplotlib backend (default Agg)')
    tt = sub.add_parser('cal_train_time', help='average / slowest / fastest iteration time')
    tt.add_argument('json_logs', nargs='+', help='JSON log file(s)')
    tt.add_argument('--include-outliers', '--include_outliers', dest='include_outliers',
                    action='store_true', help="keep each epoch's first record")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logs = [(path, load_json_log(path)) for path in args.json_logs]
    if args.task == 'plot_curve':
        out = plot_curve(logs, args.keys, args.legend, args.out, args.title, args.backend)
        print(f'curve of {", ".join(args.keys)} saved to {out}')
        return 0
    for path, records in logs:
        s = cal_train_time(records, args.include_outliers, path)
        print(f'-----Analyze train time of {path}-----')
        print(f"slowest epoch {s['slowest_epoch']}, average time is {s['slowest_time']:.4f}")
        print(f"fastest epoch {s['fastest_epoch']}, average time is {s['fastest_time']:.4f}")
        print(f"time std over epochs is {s['std_over_epochs']:.4f}")
        print(f"average iter time: {s['average']:.4f} s/iter\n")
    return 0


def _cli() -> int:
    try:
        return main()
    except (FileNotFoundError, KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f'analyze_logs: error: {msg}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(_cli())
