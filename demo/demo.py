"""AdelaiDet's demo command, on top of tools/demo.py.

    python demo/demo.py --config-file configs/SOLOv2/R50_3x.yaml \
        --input input1.jpg input2.jpg --output out/ --opts MODEL.WEIGHTS SOLOv2_R50_3x.pth

Options as AdelaiDet's demo/demo.py: ``--input`` image files, a folder or one glob pattern;
``--output`` a folder (it must exist, as in AdelaiDet) or, for a single input, a file name
(without ``--output`` the results are shown in a window where one can open);
``--video-input FILE`` (annotated video to ``--output``: a file, or ``FOLDER/<name>.mkv``);
``--webcam`` (camera 0, live window); ``--confidence-threshold`` (default 0.3) draws the
instances scoring above it; ``--opts KEY VALUE ...`` overrides the config (``MODEL.WEIGHTS``:
the checkpoint, ours or AdelaiDet's ``.pth``; ``MODEL.DEVICE cpu``). The YAML config is
translated by mmdet_solo/config_yaml.py; a ``.py`` config of ours works too.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import os.path as osp
import sys
import tempfile
from typing import List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description='SOLOv2 demo (AdelaiDet command line)',
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--config-file', '--config_file', dest='config_file', required=True,
                   metavar='FILE', help='path to config file (AdelaiDet .yaml or ours .py)')
    p.add_argument('--webcam', action='store_true', help='take inputs from webcam')
    p.add_argument('--video-input', '--video_input', dest='video_input',
                   help='path to video file')
    p.add_argument('--input', nargs='+', help='a list of space separated input images')
    p.add_argument('--output', help='a file or directory to save output visualizations; if '
                                    'not given, shows them in a window')
    p.add_argument('--confidence-threshold', '--confidence_threshold',
                   dest='confidence_threshold', type=float, default=0.3,
                   help='minimum score for instance predictions to be shown')
    p.add_argument('--opts', default=[], nargs=argparse.REMAINDER,
                   help="modify config options using the command-line 'KEY VALUE' pairs")
    return p


def _demo_tool():
    spec = importlib.util.spec_from_file_location('demo_tool', osp.join(ROOT, 'tools', 'demo.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def expand_inputs(inputs: Sequence[str]) -> List[str]:
    """AdelaiDet's rules: a folder means its files, a single argument may be a glob."""
    if osp.isdir(inputs[0]):
        return sorted(osp.join(inputs[0], n) for n in os.listdir(inputs[0]))
    if len(inputs) == 1:
        return sorted(glob.glob(osp.expanduser(inputs[0])))
    return list(inputs)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    sources = [bool(args.input), args.webcam, bool(args.video_input)]
    if sum(sources) != 1:
        parser.error('give exactly one of --input, --webcam, --video-input')
    if not osp.isfile(args.config_file):
        parser.error(f'--config-file {args.config_file!r}: no such file')
    from mmdet_solo.config import Config, ConfigError
    from mmdet_solo.config_yaml import load_d2_cfg, load_yaml_config
    yaml_cfg = osp.splitext(args.config_file)[1].lower() in ('.yaml', '.yml')
    try:
        if yaml_cfg:
            d2 = load_d2_cfg(args.config_file, args.opts)
            cfg = load_yaml_config(args.config_file, args.opts)
            weights, device = d2['MODEL']['WEIGHTS'], d2['MODEL']['DEVICE']
        else:
            opts = dict(zip(args.opts[0::2], args.opts[1::2]))
            weights, device = opts.pop('MODEL.WEIGHTS', ''), opts.pop('MODEL.DEVICE', 'cuda')
            if opts:
                parser.error(f'--opts {sorted(opts)}: with a .py config only MODEL.WEIGHTS and '
                             'MODEL.DEVICE (use tools/demo.py --cfg-options for the rest)')
            cfg = Config.fromfile(args.config_file)
    except ConfigError as e:
        parser.error(str(e))
    if not weights or not osp.isfile(weights):
        parser.error(f'MODEL.WEIGHTS must name a checkpoint file (--opts MODEL.WEIGHTS '
                     f'model.pth); got {weights!r}')
    import torch
    if device == 'cuda' and not torch.cuda.is_available():
        device = 'cpu'

    with tempfile.TemporaryDirectory() as tmp:
        config = osp.join(tmp, osp.splitext(osp.basename(args.config_file))[0] + '.py')
        cfg.dump(config)
        common = ['--config', config, '--checkpoint', weights, '--device', device,
                  '--score-thr', str(args.confidence_threshold)]
        demo = _demo_tool()
        if args.webcam:
            return demo.main(common + ['--camera', '0'])
        if args.video_input:
            if not osp.isfile(args.video_input):
                parser.error(f'--video-input {args.video_input!r}: no such file')
            if args.output is None:
                return demo.main(common + ['--input', args.video_input, '--show'])
            out = args.output
            if osp.isdir(out):
                out = osp.join(out, osp.splitext(osp.basename(args.video_input))[0] + '.mkv')
            if osp.exists(out):
                parser.error(f'--output {out!r} exists; it is not overwritten')
            return demo.main(common + ['--input', args.video_input, '--output', out])
        files = expand_inputs(args.input)
        if not files:
            parser.error(f'--input {args.input}: the input path(s) was not found')
        if args.output is None:  # shown only (written to a temporary folder)
            return demo.main(common + ['--input'] + files + ['--show', '--output',
                                                             osp.join(tmp, 'out')])
        if osp.isdir(args.output):
            return demo.main(common + ['--input'] + files + ['--output', args.output])
        if len(files) != 1:
            parser.error(f'--output {args.output!r} is not a folder: give a folder for '
                         f'{len(files)} inputs')
        folder = osp.join(tmp, 'out')  # a single image to the file --output
        rc = demo.main(common + ['--input', files[0], '--output', folder])
        drawn = osp.join(folder, os.listdir(folder)[0]) if osp.isdir(folder) else None
        if rc == 0 and drawn:
            import cv2
            img = cv2.imread(drawn)
            os.makedirs(osp.dirname(osp.abspath(args.output)), exist_ok=True)
            if img is None or not cv2.imwrite(args.output, img):
                parser.error(f'--output {args.output!r}: cannot write an image there '
                             '(unknown extension?)')
        return rc


if __name__ == '__main__':
    sys.exit(main())
