"""Run a trained SOLO/SOLOv2 model on your own images and draw the instances.

    python tools/demo.py --config CONFIG --checkpoint CKPT --input a.jpg b.jpg [dir/ ...] \
        [--output demo_out] [--score-thr 0.3] [--device cpu] [--json] [--cfg-options ...]

For every input image ``OUT/<name>`` is written with the instances scoring above
``--score-thr`` drawn on it (mask, outline, "class score"); with ``--json`` also
``OUT/<stem>.json``: the image size and the instances as COCO-style results (``category``
name, ``category_id`` = 0-based label + 1, ``score``, ``bbox`` ``[x, y, w, h]`` and the mask as
compressed RLE ``segmentation``). A folder given to ``--input`` means every image in it.
Class names come from the checkpoint (else the config's test dataset).

Videos and cameras:

    python tools/demo.py --config CONFIG --checkpoint CKPT --input video.mp4 --output out.mp4
    python tools/demo.py --config CONFIG --checkpoint CKPT --camera 0 [--output rec.avi]

A video ``--input`` (the only input) is written frame by frame, annotated, to the video
``--output`` (default ``demo_out/<stem>.mp4``) at the input's fps and size (codec by the
extension: mp4v for .mp4/.mov/.m4v, Motion-JPEG for .avi, XVID for .mkv). ``--camera ID`` shows
the annotated frames live in a window (``q``/Esc or closing it stops); it needs a display and
an OpenCV with a GUI or an interactive matplotlib backend, checked before the model loads.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence

from mmdet_solo.config import DictAction
from mmdet_solo.utils.cli import add_model_loading_args, model_cfg_options

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description='Instance segmentation of your own images',
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 2)[2] if __doc__ else None)
    p.add_argument('--config', required=True, help='model config file')
    p.add_argument('--checkpoint', required=True, help='checkpoint file (.pth)')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--input', nargs='+',
                     help='image files and/or folders of images, or one video file')
    src.add_argument('--camera', type=int, metavar='ID',
                     help='run on the frames of camera ID (0: the default webcam) in a window')
    p.add_argument('--output', default=None,
                   help='output folder for images (default demo_out); the output video file '
                        'for a video input (default demo_out/<stem>.mp4) or a camera '
                        '(default: not recorded)')
    p.add_argument('--score-thr', '--score_thr', dest='score_thr', type=float, default=0.3,
                   help='draw (and write with --json) instances scoring above this (default 0.3)')
    p.add_argument('--device', default=None,
                   help="'cpu', 'cuda', 'cuda:1', ... (default: cuda:0 if available, else cpu)")
    p.add_argument('--show', action='store_true',
                   help='also show each result in a window (images: one at a time; videos: '
                        'live, and then written only with --output)')
    p.add_argument('--json', action='store_true',
                   help='also write OUT/<stem>.json with the instances (RLE masks)')
    add_model_loading_args(p)
    p.add_argument('--cfg-options', '--cfg_options', dest='cfg_options', nargs='+',
                   action=DictAction, metavar='KEY=VALUE',
                   help='override config keys, e.g. test_cfg.mask_thr=0.4')
    return p


def collect_inputs(inputs: Sequence[str]) -> List[str]:
    """Files as given, folders expanded to their images (sorted); missing paths are errors."""
    files: List[str] = []
    for path in inputs:
        if osp.isdir(path):
            found = sorted(osp.join(path, n) for n in os.listdir(path)
                           if n.lower().endswith(IMG_EXTENSIONS))
            if not found:
                raise FileNotFoundError(f'--input folder {path!r} holds no images '
                                        f'({", ".join(IMG_EXTENSIONS)})')
            files += found
        elif osp.isfile(path):
            files.append(path)
        else:
            raise FileNotFoundError(f'--input {path!r}: no such file or folder')
    return files


def output_names(files: Sequence[str]) -> List[str]:
    """Base names for the outputs, made unique (``a.jpg``, ``a_1.jpg``) when inputs share one."""
    seen: dict = {}
    names = []
    for f in files:
        base = osp.basename(f)
        stem, ext = osp.splitext(base)
        if ext.lower() not in IMG_EXTENSIONS:
            ext = '.jpg'
        key = (stem + ext).lower()
        n = seen.get(key, 0)
        seen[key] = n + 1
        names.append(f'{stem}{ext}' if n == 0 else f'{stem}_{n}{ext}')
    return names


def result_to_json(result, classes: Optional[Sequence[str]], score_thr: float,
                   file_name: str) -> dict:
    """The instances above ``score_thr`` as COCO-style result dicts (compressed RLE masks)."""
    import numpy as np
    import pycocotools.mask as mask_utils
    h, w = result.masks.shape[1:] if result.masks.ndim == 3 else (0, 0)
    instances = []
    for i in np.nonzero(result.scores > score_thr)[0]:
        rle = mask_utils.encode(np.asfortranarray(result.masks[i].astype(np.uint8)))
        rle['counts'] = rle['counts'].decode('ascii')
        x1, y1, x2, y2 = (float(v) for v in result.bboxes[i])
        label = int(result.labels[i])
        instances.append(dict(
            category=classes[label] if classes is not None else str(label),
            category_id=label + 1, label=label, score=round(float(result.scores[i]), 5),
            bbox=[x1, y1, x2 - x1, y2 - y1], area=int(result.masks[i].sum()),
            segmentation=rle))
    return dict(file_name=file_name, height=int(h), width=int(w), score_thr=score_thr,
                instances=instances)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0.0 <= args.score_thr <= 1.0:
        parser.error(f'--score-thr must be in [0, 1], got {args.score_thr}')
    for path, what in ((args.config, '--config'), (args.checkpoint, '--checkpoint')):
        if not osp.isfile(path):
            parser.error(f'{what} {path!r}: no such file')
    from mmdet_solo.utils.video import is_video
    if args.camera is not None or any(is_video(p) for p in args.input):
        return run_video(parser, args)
    args.output = args.output or 'demo_out'
    if osp.isfile(args.output):
        parser.error(f'--output {args.output!r} is a file, not a folder')
    try:
        files = collect_inputs(args.input)
    except FileNotFoundError as e:
        parser.error(str(e))

    from mmdet_solo.apis import inference_detector, show_result_ins
    from mmdet_solo.utils.misc import refuse_overwriting_inputs
    window = None
    if args.show:
        from mmdet_solo.utils.display import open_window
        window, why = open_window()
        if window is None:
            parser.error(f'--show: no window can open here: {why}')
    model = load_model(args)
    classes = model.CLASSES
    names = output_names(files)
    outputs = [osp.join(args.output, n) for n in names]
    if args.json:
        outputs += [osp.join(args.output, osp.splitext(n)[0] + '.json') for n in names]
    try:
        refuse_overwriting_inputs(outputs, files, '--output')
    except ValueError as e:
        parser.error(str(e))
    os.makedirs(args.output, exist_ok=True)
    t_all = time.time()
    failed = []
    for k, (path, name) in enumerate(zip(files, names)):
        t0 = time.time()
        try:
            result = inference_detector(model, path)
            out_img = osp.join(args.output, name)
            drawn = show_result_ins(path, result, classes, score_thr=args.score_thr,
                                    out_file=out_img)
            if window is not None:
                window.show(drawn, osp.basename(path))
        except Exception as e:  # one bad file must not stop the others: named, counted
            failed.append((path, f'{type(e).__name__}: {e}'))
            print(f'[{k + 1}/{len(files)}] {path}: FAILED: {failed[-1][1]}', file=sys.stderr,
                  flush=True)
            continue
        n = int((result.scores > args.score_thr).sum())
        msg = f'[{k + 1}/{len(files)}] {path}: {n} instance(s) > {args.score_thr} -> {out_img}'
        if args.json:
            out_json = osp.join(args.output, osp.splitext(name)[0] + '.json')
            with open(out_json, 'w') as f:
                json.dump(result_to_json(result, classes, args.score_thr, osp.basename(path)), f)
            msg += f', {out_json}'
        print(f'{msg} ({time.time() - t0:.2f} s)', flush=True)
    print(f'{len(files) - len(failed)} image(s) in {time.time() - t_all:.1f} s; results in '
          f'{args.output}', flush=True)
    if failed:
        print(f'{len(failed)} of {len(files)} image(s) failed:', file=sys.stderr)
        for path, why in failed:
            print(f'  {path}: {why}', file=sys.stderr)
        return 1
    return 0


def load_model(args):
    import torch

    from mmdet_solo.apis import init_detector
    device = args.device or ('cuda:0' if torch.cuda.is_available() else 'cpu')
    return init_detector(args.config, args.checkpoint, device=device,
                         cfg_options=model_cfg_options(args),
                         allow_partial=args.allow_partial, fp16=args.fp16,
                         use_ema=not args.no_ema)


def run_video(parser: argparse.ArgumentParser, args) -> int:
    """A video file or a camera: every frame annotated, written to a video and/or shown."""
    from mmdet_solo.utils.video import FOURCC_BY_EXT, VideoSink, VideoSource, fps_or_default
    if args.json:
        parser.error('--json writes one file per image; it does not apply to videos')
    window = None
    if args.camera is not None or args.show:
        from mmdet_solo.utils.display import LiveWindow, window_backend
        backend, why = window_backend()
        if backend is None:
            what = '--camera shows a live window' if args.camera is not None else '--show'
            parser.error(f'{what}, but no window can open here: {why}')
        name = f'camera {args.camera}' if args.camera is not None else 'video'
        window = LiveWindow(backend, f'{name} (q: quit)')
    if args.camera is not None:
        source_name = f'camera {args.camera}'
    else:
        if len(args.input) != 1:
            parser.error(f'a video must be the only --input, got {len(args.input)} inputs')
        source_name = args.input[0]
        if not osp.isfile(source_name):
            parser.error(f'--input {source_name!r}: no such file')
        if args.output is None and not args.show:
            stem = osp.splitext(osp.basename(source_name))[0]
            args.output = osp.join('demo_out', stem + '.mp4')
    if args.output is not None:
        if osp.splitext(args.output)[1].lower() not in FOURCC_BY_EXT:
            parser.error(f'--output {args.output!r}: a video output needs one of the '
                         f"extensions {', '.join(FOURCC_BY_EXT)}")
        if args.camera is None and osp.realpath(args.output) == osp.realpath(source_name):
            parser.error(f'--output {args.output!r} is the input video; choose another file')
    try:
        source = VideoSource(args.camera if args.camera is not None else source_name,
                             '--camera' if args.camera is not None else '--input')
    except OSError as e:
        parser.error(str(e))

    from tqdm import tqdm

    from mmdet_solo.apis import inference_detector, show_result_ins
    model = load_model(args)
    sink = None
    frames = 0
    t0 = time.time()
    try:
        for frame in tqdm(source, total=source.frame_count, unit='frame',
                          desc=osp.basename(source_name), dynamic_ncols=True):
            result = inference_detector(model, frame)
            drawn = show_result_ins(frame, result, model.CLASSES, score_thr=args.score_thr)
            if args.output is not None:
                if sink is None:  # the size of the frames themselves, fps of the source
                    sink = VideoSink(args.output, fps_or_default(source.fps),
                                     (drawn.shape[1], drawn.shape[0]))
                sink.write(drawn)
            frames += 1
            if window is not None and not window.show(drawn):
                break
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    finally:
        source.close()
        if window is not None:
            window.close()
    if sink is not None:
        sink.close()
    secs = time.time() - t0
    where = f' -> {args.output}' if sink is not None else ''
    print(f'{frames} frame(s) of {source_name} in {secs:.1f} s '
          f'({frames / max(secs, 1e-9):.2f} frames/s){where}', flush=True)
    if frames == 0:
        print(f'{source_name}: no frame could be read', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
