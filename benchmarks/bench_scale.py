"""Scale benchmark: COCO-sized annotation files without COCO; memory and time of the data,
test and evaluation paths. Prints a markdown block for BENCHMARKS.md.

    python benchmarks/bench_scale.py generate [--scale 1.0]   # train.json (118k images / 860k
                                                              # instances, ~450 MB), val.json, JPEGs
    python benchmarks/bench_scale.py dataset  [--iters 1000]  # build + 4 data-loader workers
    python benchmarks/bench_scale.py val [--val-images 2 42]  # tools/test_ins.py peak RSS per image
    python benchmarks/bench_scale.py eval                     # dataset.evaluate, both backends
    python benchmarks/bench_scale.py report                   # all results saved so far

Files go to ``--out-dir`` (default /tmp/mmdet_solo_scale), annotation files to
``<out-dir>/scale_<F>/``; ``--scale F`` multiplies every count (images, instances). Each
measurement runs in a fresh subprocess (this script calling itself with ``--child``); results
accumulate in ``<out-dir>/results.json``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import time
import warnings
from typing import Any, Dict, List, Optional

import numpy as np
from tqdm import tqdm

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
TRAIN_CFG = osp.join(ROOT, 'configs/solov2/solov2_r50_fpn_8gpu_1x.py')
VAL_MODEL_CFG = osp.join(ROOT, 'configs/solov2/solov2_light_448_r18_fpn_8gpu_3x.py')
COCO_CAT_IDS = [*range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67, 70,
                *range(72, 83), *range(84, 91)]
# (width, height, share of the images): COCO's common sizes; one JPEG per size
IMAGE_SIZES = [(640, 480, .32), (480, 640, .12), (640, 427, .18), (427, 640, .07),
               (640, 426, .08), (640, 428, .07), (500, 375, .08), (640, 360, .08)]
SPLITS = {'train': (118_000, 860_000), 'val': (5_000, 36_000)}
CROWD_SHARE, MAX_PER_IMAGE, DETS_PER_IMAGE = 0.01, 30, 100
WRAPPER = ('import json, resource, subprocess, sys, time; t = time.time(); '
           'rc = subprocess.run(sys.argv[2:]).returncode; '
           'json.dump(dict(rc=rc, seconds=time.time() - t, peak_rss_mb=resource.getrusage('
           'resource.RUSAGE_CHILDREN).ru_maxrss / 1024), open(sys.argv[1], "w"))')


# ------------------------------------------------------------------------ helpers
def proc_kb(field: str, pid: Any = 'self') -> int:
    """A ``/proc/<pid>/status`` field in kB (VmRSS, VmHWM)."""
    with open(f'/proc/{pid}/status') as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith(field + ':'))


def uss_kb(pid: int) -> int:
    """Unique set size: Private_Clean + Private_Dirty of ``/proc/<pid>/smaps_rollup``."""
    with open(f'/proc/{pid}/smaps_rollup') as f:
        return sum(int(ln.split()[1]) for ln in f if ln.startswith(('Private_Clean:', 'Private_Dirty:')))


def children(pid: int) -> List[int]:
    """Child pids of ``pid`` (all its threads' ``children`` files)."""
    out: List[int] = []
    for tid in os.listdir(f'/proc/{pid}/task'):
        with open(f'/proc/{pid}/task/{tid}/children') as f:
            out += [int(p) for p in f.read().split()]
    return sorted(out)


def data_dir(args: argparse.Namespace) -> str:
    """``<out-dir>/scale_<F>``, which must hold the files of ``generate --scale F``."""
    path = osp.join(args.out_dir, f'scale_{args.scale:g}')
    if args.cmd != 'generate' and not osp.isfile(osp.join(path, 'val.json')):
        sys.exit(f'{path}/ has no annotation files: run `generate --scale {args.scale:g} '
                 f'--out-dir {args.out_dir}` first')
    return path


def run_child(args: argparse.Namespace, argv: List[str]) -> Dict[str, Any]:
    """Run this script as ``argv + --child-result FILE`` in a fresh process; its JSON result."""
    path = osp.join(args.out_dir, f'child_{os.getpid()}.json')
    cmd = [sys.executable, osp.abspath(__file__), *argv, '--scale', f'{args.scale:g}',
           '--out-dir', args.out_dir, '--child-result', path]
    subprocess.run(cmd, check=True, cwd=ROOT)
    with open(path) as f:
        res = json.load(f)
    os.remove(path)
    return res


def save_result(args: argparse.Namespace, key: str, res: Dict[str, Any]) -> None:
    """Merge ``res`` into ``<out-dir>/results.json`` under ``key@scale``."""
    path = osp.join(args.out_dir, 'results.json')
    allres = json.load(open(path)) if osp.isfile(path) else {}
    allres[f'{key}@{args.scale:g}'] = dict(res, date=datetime.date.today().isoformat(),
                                           load=os.getloadavg()[0])
    with open(path, 'w') as f:
        json.dump(allres, f, indent=1)


# ------------------------------------------------------------------------ generate
def write_jpeg(path: str, w: int, h: int, seed: int) -> None:
    """A noisy JPEG with a few random shapes."""
    import cv2
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    for _ in range(8):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.circle(img, (cx, cy), int(rng.integers(10, h // 3)), color, -1)
        cv2.rectangle(img, (cx, cy), (cx + int(rng.integers(10, w // 3)), cy + 40), color[::-1], -1)
    cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 90])


def instance_counts(rng: np.random.Generator, n_images: int, total: int) -> np.ndarray:
    """Instances per image: negative binomial (mean total/n_images), clipped to 0..30, nudged
    so that they sum to ``total`` exactly."""
    mean = total / max(n_images, 1)
    c = np.minimum(rng.negative_binomial(3, 3 / (3 + mean), n_images), MAX_PER_IMAGE)
    while (diff := total - int(c.sum())) != 0 and n_images:
        idx = np.unique(rng.integers(0, n_images, abs(diff)))
        idx = idx[c[idx] < MAX_PER_IMAGE] if diff > 0 else idx[c[idx] > 0]
        c[idx] += np.sign(diff)
    return c


def polygons(rng: np.random.Generator, img_w: np.ndarray, img_h: np.ndarray) -> Dict[str, Any]:
    """One random star-shaped polygon (10-59 points) per entry of ``img_w``/``img_h``,
    vectorised: flat coordinates plus per-polygon offsets, boxes (xywh) and shoelace areas."""
    k = len(img_w)
    r = np.exp(rng.uniform(np.log(3), np.log(0.45 * np.minimum(img_w, img_h))))
    aspect = np.exp(rng.normal(0, 0.35, k))
    rx, ry = np.minimum(r * aspect, img_w / 2 - 1), np.minimum(r / aspect, img_h / 2 - 1)
    cx, cy = rng.uniform(rx, img_w - rx), rng.uniform(ry, img_h - ry)
    npts = 10 + (50 * rng.random(k) ** 1.6).astype(np.int64)
    off = np.concatenate([[0], np.cumsum(npts)[:-1]])
    inst = np.repeat(np.arange(k), npts)
    j = np.arange(len(inst)) - off[inst]
    theta = 2 * np.pi * (j + rng.uniform(0, 0.9, len(inst))) / npts[inst]
    rad = np.clip(1 + 0.2 * rng.normal(size=len(inst)), 0.5, 1.5)
    x = np.clip(cx[inst] + rx[inst] * rad * np.cos(theta), 0, img_w[inst]).round(2)
    y = np.clip(cy[inst] + ry[inst] * rad * np.sin(theta), 0, img_h[inst]).round(2)
    nxt = np.arange(len(inst)) + 1
    nxt[off + npts - 1] = off
    area = np.abs(np.add.reduceat(x * y[nxt] - x[nxt] * y, off)) / 2
    x1, y1 = np.minimum.reduceat(x, off), np.minimum.reduceat(y, off)
    x2, y2 = np.maximum.reduceat(x, off), np.maximum.reduceat(y, off)
    bbox = np.stack([x1, y1, x2 - x1, y2 - y1], 1).round(2)
    return dict(xy=np.stack([x, y], 1).ravel().tolist(), off=off.tolist(), npts=npts.tolist(),
                bbox=bbox, area=area.round(2).tolist())


def rect_rle(x: int, y: int, bw: int, bh: int, w: int, h: int) -> Dict[str, Any]:
    """Uncompressed (column-major) COCO RLE of a filled box (crowd annotations)."""
    mid = np.tile([bh, h - bh], bw)[:-1].tolist()
    return dict(counts=[x * h + y, *mid, h - y - bh + (w - x - bw) * h], size=[h, w])


def annotations(rng: np.random.Generator, img_ids: List[int], ws: np.ndarray, hs: np.ndarray,
                counts: np.ndarray, first_id: int) -> List[dict]:
    """COCO annotation dicts for a chunk of images (``counts`` instances each)."""
    img_w, img_h = np.repeat(ws, counts), np.repeat(hs, counts)
    poly = polygons(rng, img_w, img_h)
    k = len(img_w)
    crowd = rng.random(k) < CROWD_SHARE
    p = 1 / np.arange(1, 81) ** 0.9  # a long tail, 'person' most frequent
    cats = np.asarray(COCO_CAT_IDS)[rng.choice(80, k, p=p / p.sum())].tolist()
    image_of = np.repeat(np.asarray(img_ids), counts).tolist()
    bbox, xy = poly['bbox'], poly['xy']
    anns = []
    for i in range(k):
        if crowd[i]:
            bx, by, bw, bh = (int(v) for v in bbox[i])
            bw, bh = max(bw, 1), max(bh, 1)
            seg, area, box = rect_rle(bx, by, bw, bh, int(img_w[i]), int(img_h[i])), bw * bh, \
                [bx, by, bw, bh]
        else:
            o = 2 * poly['off'][i]
            seg, area, box = [xy[o:o + 2 * poly['npts'][i]]], poly['area'][i], bbox[i].tolist()
        anns.append({'segmentation': seg, 'area': area, 'iscrowd': int(crowd[i]),
                     'image_id': image_of[i], 'bbox': box, 'category_id': cats[i],
                     'id': first_id + i})
    return anns


def write_coco(path: str, split: str, n_images: int, n_inst: int, seed: int,
               sizes: Optional[List[tuple]] = None, names: Optional[List[str]] = None) -> None:
    """Write a COCO instances file chunk by chunk (json.dumps of 1000 images' annotations)."""
    from mmdet_solo.datasets import COCO_CLASSES
    rng = np.random.default_rng(seed)
    sizes = sizes or IMAGE_SIZES
    p = np.array([s[2] for s in sizes])
    which = rng.choice(len(sizes), n_images, p=p / p.sum())
    ws, hs = np.array([s[0] for s in sizes])[which], np.array([s[1] for s in sizes])[which]
    ids = np.sort(rng.choice(600_000, n_images, replace=False) + 1).tolist()
    counts = instance_counts(rng, n_images, n_inst)
    images = [{'license': 1 + i % 8, 'file_name': names[i] if names else f'{ws[i]}x{hs[i]}.jpg',
               'coco_url': f'http://images.cocodataset.org/{split}2017/{ids[i]:012d}.jpg',
               'height': int(hs[i]), 'width': int(ws[i]), 'date_captured': '2013-11-14 11:18:45',
               'flickr_url': f'http://farm4.staticflickr.com/3153/{ids[i]}_e2b5c7f2cd_z.jpg',
               'id': ids[i]} for i in range(n_images)]
    with open(path + '.tmp', 'w') as f:
        f.write('{"info": {"description": "synthetic COCO-sized (bench_scale.py)"}, '
                '"licenses": [], "images": ')
        json.dump(images, f)
        f.write(', "annotations": [')
        ann_id, step = 1, 1000
        for s in tqdm(range(0, n_images, step), desc=f'{split} annotations', unit='kimg'):
            anns = annotations(rng, ids[s:s + step], ws[s:s + step], hs[s:s + step],
                               counts[s:s + step], ann_id)
            if anns:
                f.write((',' if ann_id > 1 else '') + json.dumps(anns, separators=(',', ':'))[1:-1])
            ann_id += len(anns)
        cats = [{'supercategory': 'object', 'id': c, 'name': n}
                for c, n in zip(COCO_CAT_IDS, COCO_CLASSES)]
        f.write('], "categories": ' + json.dumps(cats) + '}')
    os.replace(path + '.tmp', path)


def cmd_generate(args: argparse.Namespace) -> Dict[str, Any]:
    """train.json / val.json at ``--scale`` and the JPEGs they point to."""
    import mmdet_solo.datasets  # noqa: F401  (imported here: not part of the timings)
    img_dir, out = osp.join(args.out_dir, 'images'), data_dir(args)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(out, exist_ok=True)
    for i, (w, h, _) in enumerate(IMAGE_SIZES):
        write_jpeg(osp.join(img_dir, f'{w}x{h}.jpg'), w, h, seed=i)
    res: Dict[str, Any] = {}
    for split, (n_img, n_inst) in SPLITS.items():
        t = time.perf_counter()
        n_img, n_inst = max(round(n_img * args.scale), 1), round(n_inst * args.scale)
        path = osp.join(out, f'{split}.json')
        write_coco(path, split, n_img, n_inst, seed=len(split))
        res[split] = dict(images=n_img, instances=n_inst, seconds=time.perf_counter() - t,
                          mb=osp.getsize(path) / 2 ** 20)
        print(f'{path}: {n_img} images, {n_inst} instances, {res[split]["mb"]:.1f} MB '
              f'in {res[split]["seconds"]:.1f} s')
    return res


# ------------------------------------------------------------------------ dataset
def measure_dataset(args: argparse.Namespace) -> Dict[str, Any]:
    """(child) Build the training dataset, then iterate ``--iters`` batches with 4 workers."""
    import torch
    from mmdet_solo.config import Config
    from mmdet_solo.datasets import build_dataloader, build_dataset
    torch.set_num_threads(1)
    warnings.filterwarnings('ignore', message='This DataLoader will create')  # 4 on 2 cores
    pipeline = [dict(t, img_scale=tuple(args.img_scale)) if t['type'] == 'Resize' else t
                for t in Config.fromfile(TRAIN_CFG).data.train.pipeline]
    ann_file = osp.join(data_dir(args), 'train.json')
    rss0 = proc_kb('VmRSS')
    t = time.perf_counter()
    dataset = build_dataset(dict(type='CocoDataset', ann_file=ann_file, pipeline=pipeline,
                                 img_prefix=osp.join(args.out_dir, 'images') + '/'))
    res: Dict[str, Any] = dict(
        build_s=time.perf_counter() - t, images=len(dataset), ann_mb=osp.getsize(ann_file) / 2 ** 20,
        rss_before_mb=rss0 / 1024, rss_after_mb=proc_kb('VmRSS') / 1024,
        peak_build_mb=proc_kb('VmHWM') / 1024, workers=4, imgs_per_gpu=2)
    loader = build_dataloader(dataset, imgs_per_gpu=2, workers_per_gpu=4, seed=0)
    iters = min(args.iters, len(loader))
    marks = sorted({min(args.early, iters - 2), *np.linspace(iters / 2, iters, 6).astype(int)})
    uss: Dict[int, Dict[int, float]] = {}
    t = time.perf_counter()
    for i, _ in enumerate(tqdm(loader, total=iters, desc='batches'), 1):
        if i in marks:  # USS of every worker (the children of this process)
            uss[i] = {p: uss_kb(p) / 1024 for p in children(os.getpid())}
        if i == iters:
            break
    pids = list(uss[marks[0]])
    res.update(iters=iters, batches=len(loader), loop_s=time.perf_counter() - t,
               rss_end_mb=proc_kb('VmRSS') / 1024, peak_mb=proc_kb('VmHWM') / 1024,
               uss={i: [v.get(p, float('nan')) for p in pids] for i, v in uss.items()})
    return res


def dataset_rows(r: Dict[str, Any], scale: str) -> List[List[str]]:
    """Markdown rows of a ``dataset`` result, with the per-worker epoch extrapolation: the
    slope of the workers' mean USS over the second half of the batches (least squares over 6
    samples), per batch a worker loaded (workers take batches round-robin), times the batches
    a worker loads in a COCO epoch, 118k / (2 images x 4 workers), added to the last sample."""
    w, inst = r['workers'], SPLITS['train'][1] * float(scale)
    marks = sorted(int(k) for k in r['uss'])
    uss = np.array([r['uss'][str(k)] for k in marks])  # (samples, workers)
    fit, cov = np.polyfit(np.array(marks[1:]) / w, uss[1:].mean(1), 1, cov=True)
    slope, se = fit[0], float(np.sqrt(cov[0, 0]))
    growing = slope > 2 * se  # otherwise allocator noise: no measurable growth
    epoch_batches = SPLITS['train'][0] / (r['imgs_per_gpu'] * w)
    proj = uss[-1] + (slope if growing else 0) * (epoch_batches - marks[-1] / w)
    per_k = f'{(r["rss_after_mb"] - r["rss_before_mb"]) / inst * 1000:.2f} MB per 1k instances'
    return [
        ['train.json → CocoDataset build', f'{r["build_s"]:.1f} s ({r["images"]} images, '
         f'{r["ann_mb"]:.0f} MB file)', f'{r["build_s"] / inst * 1e6:.1f} µs per instance'],
        ['main RSS before → after build (peak)', f'{r["rss_before_mb"]:.0f} → '
         f'{r["rss_after_mb"]:.0f} MB (peak {r["peak_build_mb"]:.0f})', per_k],
        [f'worker USS at batch {marks[0]} / {marks[len(marks) // 2]} / {marks[-1]} ({w} workers)',
         ', '.join(f'{a:.0f}/{b:.0f}/{c:.0f}' for a, b, c in
                   zip(uss[0], uss[len(marks) // 2], uss[-1])) + ' MB',
         f'{slope:+.4f} ± {se:.4f} MB per batch per worker (batches {marks[1]}-{marks[-1]}, '
         f'mean of the workers)'],
        [f'worker USS after a {SPLITS["train"][0] // 1000}k-image epoch (linear)',
         f'{proj.mean():.0f} MB per worker, {proj.sum():.0f} MB for {w}',
         f'{epoch_batches:.0f} batches per worker at that slope' + ('' if growing else
         ' (within 2 s.e. of 0: counted as flat)') + '; copy-on-write alone cannot exceed '
         f'the parent\'s {r["rss_after_mb"]:.0f} MB'],
        ['main RSS after the batches', f'{r["rss_end_mb"]:.0f} MB (peak {r["peak_mb"]:.0f})',
         f'{r["iters"]} batches in {r["loop_s"]:.0f} s'],
    ]


# ------------------------------------------------------------------------ val (test tool)
def prepare_val(args: argparse.Namespace) -> Dict[str, Any]:
    """(child) 427x640 val images/annotations, a config and a checkpoint giving ~100 detections."""
    import torch
    from mmdet_solo.apis import inference_detector, init_detector
    from mmdet_solo.datasets import COCO_CLASSES
    vdir = osp.join(args.out_dir, 'val_tool')
    os.makedirs(osp.join(vdir, 'images'), exist_ok=True)
    names = [f'val_{i:03d}.jpg' for i in range(max(args.val_images))]
    for i, name in enumerate(names):
        write_jpeg(osp.join(vdir, 'images', name), 640, 427, seed=100 + i)
    for n in args.val_images:
        write_coco(osp.join(vdir, f'val_{n}.json'), 'val', n, round(7.2 * n), seed=n,
                   sizes=[(640, 427, 1.0)], names=names[:n])
    model = init_detector(VAL_MODEL_CFG, None, device='cpu')
    with torch.no_grad():
        model.bbox_head.solo_cate.bias.zero_()  # every category score ~0.5
    dets = [len(inference_detector(model, osp.join(vdir, 'images', n))) for n in names[:3]]
    ckpt = osp.join(vdir, 'solov2_light_r18_dense.pth')
    torch.save({'meta': {'CLASSES': list(COCO_CLASSES)}, 'state_dict': model.state_dict()}, ckpt)
    ds = dict(type='CocoDataset', classes=list(COCO_CLASSES), img_prefix=osp.join(vdir, 'images/'),
              ann_file=osp.join(vdir, f'val_{max(args.val_images)}.json'))
    low = 'test_cfg = dict(score_thr=0.01, update_thr=0.01)\n' if min(dets) < 90 else ''
    cfg = osp.join(vdir, 'val_cfg.py')
    with open(cfg, 'w') as f:
        f.write(f'_base_ = {VAL_MODEL_CFG!r}\n{low}data = dict(workers_per_gpu=0, test={ds!r}, '
                f'val={ds!r})\n')
    return dict(dets_per_image=dets, cfg=cfg, ckpt=ckpt, vdir=vdir, lowered=bool(low))


def val_with_eval_hook(args: argparse.Namespace) -> Dict[str, Any]:
    """(child) Validation as in training: ``EvalHook(loader).after_epoch(stub trainer)``."""
    import logging
    from types import SimpleNamespace
    from mmdet_solo.apis import init_detector
    from mmdet_solo.config import Config
    from mmdet_solo.datasets import build_dataset, build_test_dataloader
    from mmdet_solo.engine.hooks import EvalHook
    vdir = osp.join(args.out_dir, 'val_tool')
    cfg = Config.fromfile(osp.join(vdir, 'val_cfg.py'))
    cfg.data.val.ann_file = osp.join(vdir, f'val_{args.n}.json')
    model = init_detector(cfg, osp.join(vdir, 'solov2_light_r18_dense.pth'), device='cpu')
    model.train()
    loader = build_test_dataloader(build_dataset(cfg.data.val, dict(test_mode=True)), cfg.data, 'val')
    stub = SimpleNamespace(epoch=1, max_epochs=1, model=model, rank=0, eval_results=None,
                           logger=logging.getLogger('bench_scale'))
    EvalHook(loader, interval=1, metric='segm').after_epoch(stub)
    return dict(segm_mAP=stub.eval_results.get('segm_mAP'))


def peak_rss(cmd: List[str], log: str) -> Dict[str, Any]:
    """Run ``cmd`` under a fresh Python parent; its peak RSS (RUSAGE_CHILDREN) and time."""
    out = log + '.json'
    with open(log, 'w') as f:
        subprocess.run([sys.executable, '-c', WRAPPER, out, *cmd], cwd=ROOT, stdout=f,
                       stderr=subprocess.STDOUT, check=True)
    res = json.load(open(out))
    if res['rc'] != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed (rc {res["rc"]}), see {log}')
    return res


def cmd_val(args: argparse.Namespace) -> Dict[str, Any]:
    prep = run_child(args, ['val', '--child', 'prep', '--val-images', *map(str, args.val_images)])
    res: Dict[str, Any] = dict(prep, test_ins={}, eval_hook={})
    for n in tqdm(args.val_images, desc='val runs'):
        ann = osp.join(prep['vdir'], f'val_{n}.json')
        res['test_ins'][n] = peak_rss(
            [sys.executable, 'tools/test_ins.py', prep['cfg'], prep['ckpt'], '--eval', 'segm',
             '--device', 'cpu', '--cfg-options', f'data.test.ann_file={ann}'],
            osp.join(prep['vdir'], f'test_ins_{n}.log'))
        res['eval_hook'][n] = peak_rss(
            [sys.executable, osp.abspath(__file__), 'val', '--child', 'hook', '--n', str(n),
             '--out-dir', args.out_dir, '--child-result', osp.join(prep['vdir'], 'hook.json')],
            osp.join(prep['vdir'], f'eval_hook_{n}.log'))
    return res


def val_rows(r: Dict[str, Any]) -> List[List[str]]:
    rows = []
    for key, what in (('test_ins', 'tools/test_ins.py --eval segm'),
                      ('eval_hook', 'EvalHook.after_epoch (validation in training)')):
        runs = {int(n): v for n, v in r[key].items()}
        (a, ra), (b, rb) = min(runs.items()), max(runs.items())
        per = (rb['peak_rss_mb'] - ra['peak_rss_mb']) / max(b - a, 1)
        rows.append([f'{what}: peak RSS, {a} / {b} images', f'{ra["peak_rss_mb"]:.0f} / '
                     f'{rb["peak_rss_mb"]:.0f} MB ({ra["seconds"]:.0f} / {rb["seconds"]:.0f} s)',
                     f'{per:+.2f} MB per image → {per * SPLITS["val"][0] / 1024:+.2f} GB '
                     f'for {SPLITS["val"][0]} images'])
    rows[0][1] += f'; {np.mean(r["dets_per_image"]):.0f} detections/image'
    return rows


# ------------------------------------------------------------------------ eval
def prepare_eval(args: argparse.Namespace) -> Dict[str, Any]:
    """(child) 100 detections per val.json image: jittered ground truth + random polygons,
    as compressed RLEs (pycocotools.mask.frPyObjects: the RLE ``encode`` gives for the
    rasterised polygon), saved as EncodedInstanceResult dicts."""
    import pycocotools.mask as mask_utils
    from mmdet_solo.config import Config
    from mmdet_solo.datasets import build_dataset
    cfg = Config.fromfile(TRAIN_CFG)
    ds = build_dataset(dict(type='CocoDataset', ann_file=osp.join(data_dir(args), 'val.json'),
                            img_prefix=osp.join(args.out_dir, 'images') + '/',
                            pipeline=cfg.data.test.pipeline, test_mode=True))
    rng = np.random.default_rng(0)
    out = []
    for i in tqdm(range(len(ds)), desc='detections'):
        info, ann = ds.img_infos[i], ds.get_ann_info(i)
        h, w = info['height'], info['width']
        k = min(len(ann['labels']), DETS_PER_IMAGE)
        polys = [[(np.asarray(m[0]) + rng.normal(0, 1.5, len(m[0]))).clip(0).tolist()]
                 for m in ann['masks'][:k]]
        rand = polygons(rng, np.full(DETS_PER_IMAGE - k, w), np.full(DETS_PER_IMAGE - k, h))
        polys += [[rand['xy'][2 * o:2 * (o + n)]] for o, n in zip(rand['off'], rand['npts'])]
        rles = [mask_utils.merge(mask_utils.frPyObjects(p, h, w)) for p in polys]
        for r in rles:
            r['counts'] = r['counts'].decode()
        labels = np.concatenate([np.where(rng.random(k) < 0.9, ann['labels'][:k],
                                          rng.integers(0, 80, k)),
                                 rng.integers(0, 80, DETS_PER_IMAGE - k)])
        scores = np.concatenate([rng.uniform(0.3, 1, k), rng.uniform(0, 0.6, DETS_PER_IMAGE - k)])
        box = mask_utils.toBbox(rles)
        box[:, 2:] += box[:, :2]
        out.append(dict(masks=rles, labels=labels.tolist(), scores=scores.tolist(),
                        bboxes=box.tolist(), height=h, width=w))
    with open(osp.join(data_dir(args), 'val_dets.json'), 'w') as f:
        json.dump(out, f)
    return dict(images=len(ds), dets=len(out) * DETS_PER_IMAGE)


def measure_eval(args: argparse.Namespace) -> Dict[str, Any]:
    """(child) ``dataset.evaluate(results, 'segm', backend=...)``: seconds and peak RSS."""
    from mmdet_solo.config import Config
    from mmdet_solo.datasets import build_dataset
    ann_file = osp.join(data_dir(args), 'val.json')
    ds = build_dataset(dict(type='CocoDataset', ann_file=ann_file, test_mode=True,
                            img_prefix=osp.join(args.out_dir, 'images') + '/',
                            pipeline=Config.fromfile(TRAIN_CFG).data.test.pipeline))
    dets = json.load(open(osp.join(data_dir(args), 'val_dets.json')))
    try:
        from mmdet_solo.structures import EncodedInstanceResult
        results, api = [EncodedInstanceResult.from_dict(d) for d in dets], 'dataset.evaluate'
    except ImportError:  # before the RLE results: COCO result dicts straight to coco_evaluate
        results, api = [dict(image_id=ds.img_ids[i], category_id=ds.cat_ids[l], score=s,
                             segmentation=m) for i, d in enumerate(dets)
                        for m, l, s in zip(d['masks'], d['labels'], d['scores'])], 'coco_evaluate'
    del dets
    rss0 = proc_kb('VmRSS')
    t = time.perf_counter()
    if api == 'dataset.evaluate':
        out = ds.evaluate(results, metric='segm', backend=args.backend)
    else:
        from mmdet_solo.evaluation import coco_evaluate
        out = coco_evaluate(ann_file, results, 'segm', backend=args.backend)
    return dict(api=api, seconds=time.perf_counter() - t, rss_before_mb=rss0 / 1024,
                peak_mb=proc_kb('VmHWM') / 1024, mAP=out['segm_mAP'], images=len(ds))


def cmd_eval(args: argparse.Namespace) -> Dict[str, Any]:
    res: Dict[str, Any] = dict(prep=run_child(args, ['eval', '--child', 'prep']))
    for backend in ('pycocotools', 'faster-coco-eval'):
        mod = 'faster_coco_eval' if backend != 'pycocotools' else 'pycocotools'
        if subprocess.run([sys.executable, '-c', f'import {mod}']).returncode:
            res[backend] = None
            print(f'{backend}: not installed, skipped')
            continue
        res[backend] = run_child(args, ['eval', '--child', 'measure', '--backend', backend])
    return res


def eval_rows(r: Dict[str, Any]) -> List[List[str]]:
    rows = []
    for b in ('pycocotools', 'faster-coco-eval'):
        m = r.get(b)
        if not m:
            rows.append([f'evaluate segm, {b}', 'not installed', ''])
            continue
        n = m['images']
        mb = (m['peak_mb'] - m['rss_before_mb']) / n
        rows.append([f'{m["api"]}(segm, backend={b}), {n} images x {DETS_PER_IMAGE} dets',
                     f'{m["seconds"]:.1f} s, peak RSS {m["peak_mb"]:.0f} MB (before '
                     f'{m["rss_before_mb"]:.0f}), mAP {m["mAP"]:.3f}',
                     f'{m["seconds"] / n * 1000:.1f} ms and {mb:.2f} MB per image → '
                     f'{m["seconds"] / n * 5000:.0f} s and {mb * 5000 / 1024:.1f} GB for 5000'])
    return rows


# ------------------------------------------------------------------------ report
def machine() -> str:
    import torch
    cpu = platform.processor()
    with open('/proc/cpuinfo') as f:
        cpu = next((ln.split(':', 1)[1].strip() for ln in f if ln.startswith('model name')), cpu)
    with open('/proc/meminfo') as f:
        mem = int(f.readline().split()[1])
    return (f'Machine: {cpu} ({platform.machine()}), {os.cpu_count()} cores, '
            f'{mem / 2 ** 20:.0f} GiB; Python {platform.python_version()}, torch '
            f'{torch.__version__}; printed {datetime.date.today().isoformat()} (load: the 1-minute '
            'load average at the end of each run).')


def across_scales(allres: Dict[str, Any]) -> List[List[str]]:
    """Rows comparing the smallest and largest scale measured: the growth per unit of data,
    free of the fixed costs (imports, library buffers) that a single run includes."""
    rows = []
    for cmd in ('dataset', 'eval'):
        runs = sorted((float(k.split('@')[1]), r) for k, r in allres.items()
                      if k.startswith(cmd + '@'))
        if len(runs) < 2:
            continue
        (sa, a), (sb, b) = runs[0], runs[-1]
        span = f'{sa:g} → {sb:g}'
        if cmd == 'dataset':
            k_inst = (sb - sa) * SPLITS['train'][1] / 1000
            end = [np.mean(r['uss'][max(r['uss'], key=int)]) for r in (a, b)]
            rows.append(['dataset, between scales', span, '-', f'build {a["build_s"]:.1f} → '
                         f'{b["build_s"]:.1f} s, main RSS after build {a["rss_after_mb"]:.0f} → '
                         f'{b["rss_after_mb"]:.0f} MB, worker USS at the end {end[0]:.0f} → '
                         f'{end[1]:.0f} MB', f'{(b["build_s"] - a["build_s"]) / k_inst * 1000:.0f} '
                         f'ms, {(b["rss_after_mb"] - a["rss_after_mb"]) / k_inst:.2f} MB (main) '
                         f'and {(end[1] - end[0]) / k_inst:.3f} MB (per worker) per 1k instances'])
        for be in ('pycocotools', 'faster-coco-eval'):
            ra, rb = (a.get(be), b.get(be)) if cmd == 'eval' else (None, None)
            if ra and rb:
                n = rb['images'] - ra['images']
                sec = (rb['seconds'] - ra['seconds']) / n
                mb = ((rb['peak_mb'] - rb['rss_before_mb']) - (ra['peak_mb'] - ra['rss_before_mb'])) / n
                rows.append([f'evaluate segm ({be}), between scales', span, '-',
                             f'{ra["images"]} → {rb["images"]} images',
                             f'{sec * 1000:.1f} ms and {mb:.3f} MB per image → '
                             f'{sec * 5000:.0f} s and {mb * 5000 / 1024:.2f} GB for 5000'])
    return rows


def report(args: argparse.Namespace, only: Optional[str] = None) -> None:
    """Print the markdown block of the saved results (``only``: one command's results)."""
    allres = json.load(open(osp.join(args.out_dir, 'results.json')))
    if only:
        allres = {k: v for k, v in allres.items() if k.split('@')[0] == only}
    rows: List[List[str]] = []
    order = ['generate', 'dataset', 'val', 'eval']
    for key, r in sorted(allres.items(), key=lambda kv: (order.index(kv[0].split('@')[0]),
                                                          float(kv[0].split('@')[1]))):
        cmd, scale = key.split('@')
        if cmd == 'generate':
            new = [[f'generate {s}.json', f'{v["images"]} images, {v["instances"]} instances, '
                    f'{v["mb"]:.1f} MB in {v["seconds"]:.1f} s',
                    f'{v["mb"] / v["instances"] * 1e6:.0f} B and '
                    f'{v["seconds"] / v["instances"] * 1e6:.0f} µs per instance']
                   for s, v in r.items() if isinstance(v, dict)]
        else:
            new = {'dataset': lambda: dataset_rows(r, scale), 'val': lambda: val_rows(r),
                   'eval': lambda: eval_rows(r)}[cmd]()
        load = r.get('load', float('nan'))
        when = f'{scale if cmd != "val" else "-"} | {r["date"]}, load {load:.1f}'
        rows += [[row[0], when, *row[1:]] for row in new]
    rows += across_scales(allres)
    print('\n' + machine() + '\n\n| measurement | scale | date, load | value | grows with the '
          'data |\n|---|---|---|---|---|')
    print('\n'.join('| ' + ' | '.join(row) + ' |' for row in rows))


COMMANDS = {'generate': cmd_generate,
            'dataset': lambda a: run_child(a, ['dataset', '--child', 'measure', '--iters',
                                               str(a.iters), '--early', str(a.early),
                                               '--img-scale', *map(str, a.img_scale)]),
            'val': cmd_val, 'eval': cmd_eval}
CHILDREN = {('dataset', 'measure'): measure_dataset, ('val', 'prep'): prepare_val,
            ('val', 'hook'): val_with_eval_hook, ('eval', 'prep'): prepare_eval,
            ('eval', 'measure'): measure_eval}


def main() -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--out-dir', default='/tmp/mmdet_solo_scale', help='where files go')
    common.add_argument('--scale', type=float, default=1.0, help='multiplies all counts')
    common.add_argument('--child', help=argparse.SUPPRESS)
    common.add_argument('--child-result', help=argparse.SUPPRESS)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    sub.add_parser('generate', parents=[common], help='write train.json, val.json and the JPEGs')
    d = sub.add_parser('dataset', parents=[common], help='dataset build + 4 loader workers')
    d.add_argument('--iters', type=int, default=1000, help='batches to iterate')
    d.add_argument('--early', type=int, default=10, help='batch of the first worker sample')
    d.add_argument('--img-scale', type=int, nargs=2, default=[333, 200],
                   help="the train pipeline's Resize img_scale (small to keep it fast)")
    v = sub.add_parser('val', parents=[common], help='tools/test_ins.py and EvalHook peak RSS')
    v.add_argument('--val-images', type=int, nargs='+', default=[2, 42], help='val set sizes')
    v.add_argument('--n', type=int, help=argparse.SUPPRESS)
    e = sub.add_parser('eval', parents=[common], help='dataset.evaluate on val.json, 2 backends')
    e.add_argument('--backend', help=argparse.SUPPRESS)
    sub.add_parser('report', parents=[common], help='print the markdown of all saved results')
    args = p.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    if args.child:
        res = CHILDREN[args.cmd, args.child](args)
        with open(args.child_result, 'w') as f:
            json.dump(res, f)
    elif args.cmd == 'report':
        report(args)
    else:
        if args.cmd in ('dataset', 'eval'):
            data_dir(args)
        t = time.perf_counter()
        res = COMMANDS[args.cmd](args)
        print(f'{args.cmd}: {time.perf_counter() - t:.0f} s')
        save_result(args, args.cmd, res)
        report(args, only=args.cmd)


if __name__ == '__main__':
    main()
