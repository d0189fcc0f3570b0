"""The ONNX support matrix (docs/DEPLOYMENT.md): export each config once (dynamic batch and
size, post-processing included) and compare ONNX Runtime with PyTorch on input sizes not used
at export and on a batch of two images of different sizes.

    python benchmarks/onnx_matrix.py                        # every config, all sizes
    python benchmarks/onnx_matrix.py --configs configs/shapes/*.py --sizes 427x640 480x360
    python benchmarks/onnx_matrix.py --checkpoint CONFIG=CKPT   # trained weights for CONFIG

Per case it checks: labels equal, scores within 1e-3, mask IoU >= 0.99 for matched instances,
counts within 2 (``mmdet_solo.deploy.compare``). Weights: a checkpoint where given, else the
config's random initialisation (seeded) with the head's output convs redrawn
(``mmdet_solo.deploy.compare.spread_head_outputs``; at initialisation every category score
is ~0.01, the prior, below ``score_thr``: nothing would be compared), and ``score_thr`` set so
that ~300 candidates pass (:func:`probe_score_thr`). Images: seeded smooth random
images; sizes are the resized image sizes (H x W), padded to multiples of 32 as the test
pipeline does. The table goes to stdout (markdown) and ``--out`` (JSON).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import sys
import tempfile
import time
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

DEFAULT_SIZES = ('427x640', '480x360', '800x1333')
EXPORT_SHAPE = (256, 320)     # example of the export (padded): none of the compared sizes


def default_configs(include_dcn: bool = False) -> List[str]:
    paths = []
    for folder in ('solo', 'solov2', 'shapes'):
        for path in sorted(glob.glob(osp.join(ROOT, 'configs', folder, '*.py'))):
            if include_dcn or 'dcn' not in osp.basename(path):
                paths.append(osp.relpath(path, ROOT))
    return paths


def smooth_image(h: int, w: int, seed: int) -> torch.Tensor:
    """(3, h, w) normalised-looking image: upsampled noise (blobs), seeded."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, 3, max(2, h // 32), max(2, w // 32), generator=gen) * 1.5
    return F.interpolate(coarse, size=(h, w), mode='bilinear')[0] \
        + 0.1 * torch.randn(3, h, w, generator=gen)


def padded_batch(sizes: Sequence[Tuple[int, int]], seed: int):
    """Images of ``sizes`` zero-padded to one batch (multiples of 32), and their img_metas."""
    ph = max(-(-h // 32) * 32 for h, _ in sizes)
    pw = max(-(-w // 32) * 32 for _, w in sizes)
    batch = torch.zeros(len(sizes), 3, ph, pw)
    metas = []
    for i, (h, w) in enumerate(sizes):
        batch[i, :, :h, :w] = smooth_image(h, w, seed + i)
        metas.append(dict(img_shape=(h, w, 3), ori_shape=(h, w, 3)))
    return batch, metas


def probe_score_thr(model, cases: Dict[str, List[Tuple[int, int]]], candidates: int) -> float:
    """Random weights: the score_thr that ``candidates`` (cell, class) pairs pass on the first
    image of the largest case, so that the candidate cap (1000) does not bite and masks are
    built for a few hundred candidates, as with trained weights."""
    from mmdet_solo.models.heads.utils import flatten_cate_preds, points_nms
    sizes = max(cases.values(), key=lambda s: s[0][0] * s[0][1])[:1]
    img, _ = padded_batch(sizes, seed=0)
    with torch.no_grad():
        outputs = model.forward_heads(model.extract_feat(img))
        scores = flatten_cate_preds([points_nms(p.sigmoid()) for p in outputs.cate_preds])
    return float(scores.flatten().topk(candidates).values[-1])


def run_config(config: str, checkpoint: str, cases: Dict[str, List[Tuple[int, int]]],
               workdir: str, score_thr: float = None, candidates: int = 300,
               max_candidates: int = None) -> List[dict]:
    from mmdet_solo.apis import init_detector
    from mmdet_solo.deploy.compare import compare_all, spread_head_outputs
    from mmdet_solo.deploy.export import export_onnx
    from mmdet_solo.deploy.runtime import ONNXRuntimeDetector
    torch.manual_seed(0)
    options = {'channels_last': False}
    if score_thr is not None:
        options['test_cfg.score_thr'] = score_thr
    model = init_detector(config, checkpoint, device='cpu', cfg_options=options)
    if checkpoint is None:
        spread_head_outputs(model)
        if score_thr is None:
            model.test_cfg['score_thr'] = probe_score_thr(model, cases, candidates)
    onnx_file = osp.join(workdir, osp.splitext(osp.basename(config))[0] + '.onnx')
    start = time.time()
    from mmdet_solo.deploy.graph import DEFAULT_MAX_CANDIDATES
    max_candidates = max_candidates or DEFAULT_MAX_CANDIDATES
    export_onnx(model, onnx_file, shape=EXPORT_SHAPE, dynamic=True, max_candidates=max_candidates)
    export_s = time.time() - start
    runner = ONNXRuntimeDetector(onnx_file, model.cfg, num_threads=2)
    rows = []
    for name, sizes in cases.items():
        img, metas = padded_batch(sizes, seed=len(rows))
        with torch.no_grad():
            t = time.time()
            ref = model.simple_test(img, metas)
            torch_s = time.time() - t
        t = time.time()
        got = runner(img, metas)
        ort_s = time.time() - t
        ok, comps = compare_all(ref, got)
        rows.append(dict(config=config, weights=checkpoint or 'random (seeded)', case=name,
                         score_thr=model.test_cfg.get('score_thr'),
                         max_candidates=max_candidates,
                         input=list(img.shape), ok=ok, export_s=round(export_s, 1),
                         torch_s=round(torch_s, 2), ort_s=round(ort_s, 2),
                         images=[vars(c) for c in comps]))
        print(f'{config} {name}: {"ok" if ok else "DIFFERENT"}; '
              + '; '.join(str(c) for c in comps), flush=True)
    os.remove(onnx_file)
    return rows


def table(rows: Sequence[dict]) -> str:
    lines = ['| config | weights | case (input) | instances PyTorch / ORT | matched '
             '| max score diff | min mask IoU | result |', '|---|---|---|---|---|---|---|---|']
    for r in rows:
        imgs = r['images']
        counts = ', '.join(f"{c['num_ref']}/{c['num_got']}" for c in imgs)
        matched = ', '.join(str(c['matched']) for c in imgs)
        diff = max(c['max_score_diff'] for c in imgs)
        iou = min(c['min_mask_iou'] for c in imgs)
        weights = 'trained' if r['weights'].endswith('.pth') else 'random'
        lines.append(f"| {osp.basename(r['config'])} | {weights} | {r['case']} "
                     f"({'x'.join(map(str, r['input']))}) | {counts} | {matched} | {diff:.1e} "
                     f"| {iou:.4f} | {'ok' if r['ok'] else 'DIFFERENT'} |")
    return '\n'.join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--configs', nargs='+', help='default: configs/{solo,solov2,shapes} without DCN')
    p.add_argument('--dcn', action='store_true', help='include the DCN configs in the default list')
    p.add_argument('--sizes', nargs='+', default=list(DEFAULT_SIZES),
                   help='resized image sizes HxW, one image each (default %(default)s)')
    p.add_argument('--no-mixed-batch', dest='mixed_batch', action='store_false',
                   help='skip the batch of the first two sizes')
    p.add_argument('--checkpoint', nargs='+', default=[], metavar='CONFIG=CKPT',
                   help='trained weights for a config (else random, seeded)')
    p.add_argument('--score-thr', type=float, help='override test_cfg.score_thr')
    p.add_argument('--candidates', type=int, default=300,
                   help='random weights: score_thr is set so that about this many candidates '
                        'pass on the largest image (default %(default)s)')
    p.add_argument('--max-candidates', type=int, help='the export option (default 1000)')
    p.add_argument('--out', help='write the rows as JSON here')
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    sizes = [tuple(int(v) for v in s.split('x')) for s in args.sizes]
    cases = {f'{h}x{w}': [(h, w)] for h, w in sizes}
    if args.mixed_batch and len(sizes) >= 2:
        cases[f'batch {args.sizes[0]} + {args.sizes[1]}'] = sizes[:2]
    ckpts = dict(item.split('=', 1) for item in args.checkpoint)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for config in args.configs or default_configs(args.dcn):
            rows += run_config(config, ckpts.get(config), cases, workdir, args.score_thr,
                               args.candidates, args.max_candidates)
            if args.out:
                from mmdet_solo.utils.io import atomic_write
                atomic_write(args.out, json.dumps(rows, indent=1))
    print(table(rows))
    return 0 if all(r['ok'] for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
