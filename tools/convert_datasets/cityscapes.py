"""Convert Cityscapes ``gtFine`` polygon annotations into the COCO files of CityscapesDataset.

    python tools/convert_datasets/cityscapes.py data/cityscapes [--gt-dir gtFine]
        [--out-dir data/cityscapes/annotations] [--splits train val test] [--nproc 4] [--force]

Reads ``CITYSCAPES/<gt-dir>/<split>/<city>/*_gtFine_polygons.json`` and writes
``OUT/instancesonly_filtered_gtFine_<split>.json`` as MMDetection's converter
(tools/dataset_converters/cityscapes.py) does from the ``*_gtFine_instanceIds.png`` images that
cityscapesScripts draws from these polygons: the polygons are drawn the same way (file order,
later objects occlude earlier ones), each instance of the 8 evaluated thing classes becomes an
RLE mask with its box and area, ``*group`` polygons become ``iscrowd = 1`` regions, category
ids are the Cityscapes label ids. ``file_name`` is ``<city>/<frame>_leftImg8bit.png``
(relative to the config's ``img_prefix``). Differences: image and annotation ids start at 1
(pycocotools takes a matched annotation id 0 for "unmatched"), an empty split keeps an empty
``annotations`` list. Existing output files are kept unless ``--force``.
"""
from __future__ import annotations

import argparse
import glob
import os
import os.path as osp
import sys
from multiprocessing import Pool
from typing import Any, Dict, List, Optional, Sequence

from tqdm import tqdm

SPLITS = ('train', 'val', 'test')


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description='Convert Cityscapes gtFine polygons to COCO format')
    p.add_argument('cityscapes_path', help='Cityscapes root (holding gtFine/)')
    p.add_argument('--gt-dir', '--gt_dir', dest='gt_dir', default='gtFine',
                   help='annotation folder under cityscapes_path (default gtFine)')
    p.add_argument('-o', '--out-dir', '--out_dir', dest='out_dir', default=None,
                   help='output folder (default CITYSCAPES_PATH/annotations)')
    p.add_argument('--splits', nargs='+', choices=SPLITS, default=list(SPLITS))
    p.add_argument('--nproc', type=int, default=1, help='worker processes (default 1)')
    p.add_argument('--force', action='store_true', help='overwrite existing output files')
    return p


def out_name(split: str) -> str:
    return f'instancesonly_filtered_gtFine_{split}.json'


def collect_files(gt_split_dir: str) -> List[str]:
    """The polygon files of one split, sorted (``<city>/<frame>_gtFine_polygons.json``)."""
    from mmdet_solo.datasets.cityscapes import POLYGON_SUFFIX
    files = sorted(glob.glob(osp.join(gt_split_dir, '*', '*' + POLYGON_SUFFIX)))
    if not files:
        raise FileNotFoundError(f'no *{POLYGON_SUFFIX} files in {gt_split_dir!r}/<city>/ '
                                '(expected the gtFine folder of the Cityscapes download)')
    return files


def to_coco(image_infos: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The COCO dict of a split: ids from 1, the 8 evaluated thing categories."""
    from mmdet_solo.datasets.cityscapes import cityscapes_categories
    images, annotations = [], []
    for img_id, info in enumerate(image_infos, 1):
        info = dict(info)
        anns = info.pop('anno_info')
        images.append(dict(info, id=img_id))
        for ann in anns:
            annotations.append(dict(ann, image_id=img_id, id=len(annotations) + 1))
    return dict(images=images, annotations=annotations, categories=cityscapes_categories())


def convert_split(gt_split_dir: str, out_file: str, nproc: int = 1) -> Dict[str, Any]:
    """Convert one split and write ``out_file`` (atomically); return the COCO dict."""
    from mmdet_solo.datasets.cityscapes import polygon_file_to_coco
    from mmdet_solo.evaluation.results_io import dump_json_atomic
    files = collect_files(gt_split_dir)
    desc = osp.basename(osp.normpath(gt_split_dir))
    if nproc > 1:
        with Pool(nproc) as pool:
            infos = list(tqdm(pool.imap(polygon_file_to_coco, files, chunksize=4),
                              total=len(files), desc=desc))
    else:
        infos = [polygon_file_to_coco(f) for f in tqdm(files, desc=desc)]
    coco = to_coco(infos)
    dump_json_atomic(coco, out_file)
    return coco


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.nproc < 1:
        print(f'cityscapes.py: --nproc must be >= 1, got {args.nproc}', file=sys.stderr)
        return 2
    out_dir = args.out_dir or osp.join(args.cityscapes_path, 'annotations')
    outs = {s: osp.join(out_dir, out_name(s)) for s in dict.fromkeys(args.splits)}
    existing = [p for p in outs.values() if osp.exists(p)]
    if existing and not args.force:
        print(f'cityscapes.py: {existing} exist; pass --force to overwrite them', file=sys.stderr)
        return 1
    os.makedirs(out_dir, exist_ok=True)
    for split, out_file in outs.items():
        try:
            coco = convert_split(osp.join(args.cityscapes_path, args.gt_dir, split), out_file,
                                 args.nproc)
        except (OSError, KeyError, ValueError) as e:
            print(f'cityscapes.py: {split}: {e}', file=sys.stderr)
            return 1
        crowd = sum(a['iscrowd'] for a in coco['annotations'])
        print(f'{split}: {len(coco["images"])} images, {len(coco["annotations"])} instances '
              f'({crowd} crowd) -> {out_file}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
