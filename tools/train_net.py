"""AdelaiDet's training / evaluation command, on top of tools/train.py and tools/test_ins.py.

    python tools/train_net.py --config-file configs/SOLOv2/R50_3x.yaml --num-gpus 8 \
        OUTPUT_DIR training_dir/SOLOv2_R50_3x
    python tools/train_net.py --config-file configs/SOLOv2/R50_3x.yaml --eval-only --num-gpus 8 \
        OUTPUT_DIR training_dir/SOLOv2_R50_3x MODEL.WEIGHTS training_dir/SOLOv2_R50_3x/model_final.pth

The YAML config and the trailing ``KEY VALUE`` overrides (detectron2's ``opts``: ``OUTPUT_DIR``,
``MODEL.WEIGHTS``, ``SOLVER.IMS_PER_BATCH`` (total over the processes), ``SOLVER.BASE_LR``,
``SOLVER.MAX_ITER``, ``DATASETS.TRAIN``, ...) are translated into our config
(mmdet_solo/config_yaml.py), written to ``OUTPUT_DIR/<config name>.py``, and run by
tools/train.py (``--work-dir OUTPUT_DIR``) or, with ``--eval-only``, tools/test_ins.py
(``--eval segm bbox``). ``--num-gpus N`` starts N processes itself (on CPUs: N processes with
the gloo backend). ``--resume`` continues from ``OUTPUT_DIR/latest.pth`` when it exists, else
starts from ``MODEL.WEIGHTS``. A ``.pth`` ``MODEL.WEIGHTS`` (ours, or AdelaiDet's
``model_final.pth``) is loaded; ImageNet ``.pkl`` weights (``detectron2://...R-50.pkl``) are
pickles and are not: training then starts from the initial weights (a warning says so).
After training, the last checkpoint is also saved as ``OUTPUT_DIR/model_final.pth``.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
from typing import List, Optional, Sequence

TOOLS = osp.dirname(osp.abspath(__file__))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--config-file', '--config_file', dest='config_file', required=True,
                   metavar='FILE', help='AdelaiDet YAML config (configs/SOLOv2/*.yaml)')
    p.add_argument('--resume', action='store_true',
                   help='resume from OUTPUT_DIR/latest.pth if it exists')
    p.add_argument('--eval-only', '--eval_only', dest='eval_only', action='store_true',
                   help='evaluate MODEL.WEIGHTS on DATASETS.TEST instead of training')
    p.add_argument('--num-gpus', '--num_gpus', dest='num_gpus', type=int, default=1,
                   help='processes to start (one per GPU; CPU processes without CUDA)')
    p.add_argument('--num-machines', '--num_machines', dest='num_machines', type=int, default=1,
                   help='only 1 is supported here (use tools/dist_train.sh across machines)')
    p.add_argument('opts', nargs=argparse.REMAINDER, metavar='KEY VALUE',
                   help='config overrides, e.g. OUTPUT_DIR out SOLVER.BASE_LR 0.005')
    return p


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f'{name}_tool', osp.join(TOOLS, f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_tool(name: str, argv: List[str], num_procs: int) -> int:
    """tools/<name>.py with ``argv``: in this process, or ``num_procs`` processes with the
    torchrun environment (``--launcher pytorch``); the first failure stops the others."""
    if num_procs == 1:
        return _tool(name).main(argv)
    port = str(_free_port())
    procs = []
    for rank in range(num_procs):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(num_procs),
                   LOCAL_WORLD_SIZE=str(num_procs), MASTER_ADDR='127.0.0.1', MASTER_PORT=port)
        env['PYTHONPATH'] = osp.dirname(TOOLS) + os.pathsep + env.get('PYTHONPATH', '')
        procs.append(subprocess.Popen([sys.executable, osp.join(TOOLS, f'{name}.py')] + argv
                                      + ['--launcher', 'pytorch'], env=env))
    codes: List[Optional[int]] = [None] * num_procs
    try:
        while None in codes:
            for i, p in enumerate(procs):
                if codes[i] is None:
                    try:
                        codes[i] = p.wait(timeout=0.5)
                    except subprocess.TimeoutExpired:
                        continue
                    if codes[i] != 0:
                        raise RuntimeError(f'process {i} exited with {codes[i]}')
    except (RuntimeError, KeyboardInterrupt) as e:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait()
        print(f'tools/train_net.py: {e}; stopped the other processes', file=sys.stderr)
        return next((c for c in codes if c), 1)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.num_gpus < 1:
        parser.error('--num-gpus must be >= 1')
    if args.num_machines != 1:
        parser.error('--num-machines: only 1 is supported; across machines use '
                     'tools/dist_train.sh with NNODES/NODE_RANK/MASTER_ADDR')
    if not osp.isfile(args.config_file):
        parser.error(f'--config-file {args.config_file!r}: no such file')
    from mmdet_solo.config import ConfigError
    from mmdet_solo.config_yaml import load_d2_cfg, load_yaml_config
    try:
        d2 = load_d2_cfg(args.config_file, args.opts)
        cfg = load_yaml_config(args.config_file, args.opts, num_gpus=args.num_gpus)
    except ConfigError as e:
        parser.error(str(e))
    out_dir = d2['OUTPUT_DIR']
    weights = d2['MODEL']['WEIGHTS']
    os.makedirs(out_dir, exist_ok=True)
    config = osp.join(out_dir, osp.splitext(osp.basename(args.config_file))[0] + '.py')
    cfg.dump(config)
    print(f'tools/train_net.py: {args.config_file} translated to {config}', flush=True)

    if args.eval_only:
        if not weights or not osp.isfile(weights):
            parser.error(f'--eval-only needs MODEL.WEIGHTS, a checkpoint file; got {weights!r}')
        return run_tool('test_ins', [config, weights, '--eval', 'segm', 'bbox'], args.num_gpus)

    train_args = [config, '--work-dir', out_dir]
    if weights and not weights.endswith('.pkl') and '://' not in weights:
        if not osp.isfile(weights):
            parser.error(f'MODEL.WEIGHTS {weights!r}: no such file')
        train_args += ['--load-from', weights]
    elif weights:
        print(f'tools/train_net.py: warning: MODEL.WEIGHTS {weights!r} is a pickled detectron2 '
              'file, which is not loaded (untrusted pickle); training starts from the initial '
              'weights. Convert it to a .pth and pass that as MODEL.WEIGHTS.', file=sys.stderr)
    if args.resume:
        train_args.append('--auto-resume')
    if d2['SEED'] >= 0:
        train_args += ['--seed', str(d2['SEED'])]
    rc = run_tool('train', train_args, args.num_gpus)
    latest = osp.join(out_dir, 'latest.pth')
    if rc == 0 and osp.isfile(latest):
        from mmdet_solo.utils.io import atomic_write
        final = osp.join(out_dir, 'model_final.pth')
        with open(osp.realpath(latest), 'rb') as src:
            atomic_write(final, lambda f: shutil.copyfileobj(src, f))
        print(f'tools/train_net.py: final weights in {final}', flush=True)
    return rc


if __name__ == '__main__':
    sys.exit(main())
