"""Train a SOLO/SOLOv2 detector.

    python tools/train.py CONFIG [--work-dir DIR] [--resume-from CKPT | --auto-resume] ...
    tools/dist_train.sh CONFIG GPUS [same options]          # torchrun, --launcher pytorch
    tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR [GPUS] [same options]  # --launcher slurm

Options written with ``_`` or ``-`` are the same (``--work_dir`` == ``--work-dir``).
"""
from __future__ import annotations

import argparse
import glob
import os
import os.path as osp
import sys
import time

import torch

from mmdet_solo.config import ConfigError, DictAction

CHECKPOINT_GLOB = '*.pth'


def _add(parser: argparse.ArgumentParser, name: str, **kwargs) -> None:
    """Add ``--a_b`` and ``--a-b`` as the same option."""
    flags = [f'--{name}']
    if '_' in name:
        flags.append(f"--{name.replace('_', '-')}")
    elif '-' in name:
        flags.append(f"--{name.replace('-', '_')}")
    parser.add_argument(*flags, **kwargs)


def parse_args(argv=None) -> argparse.Namespace:
    from mmdet_solo.apis.config_check import CFG_OPTIONS_RULE
    parser = argparse.ArgumentParser(
        description='Train a detector', formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Options may be written with "_" or "-" (--work_dir or --work-dir).')
    parser.add_argument('config', help='train config file path')
    _add(parser, 'work_dir', help='where to save logs and checkpoints (default: the config\'s '
                                  'work_dir, else ./work_dirs/<config name>)')
    _add(parser, 'resume_from', help='checkpoint to resume from (model, optimizer, epoch, RNG)')
    _add(parser, 'load_from', help='checkpoint to start from (weights only, epoch 1)')
    _add(parser, 'auto_resume', action='store_true',
         help='resume from work_dir/latest.pth if it exists')
    parser.add_argument('--overwrite', action='store_true',
                        help='train into a work dir that already holds checkpoints (they are '
                             'overwritten as training proceeds)')
    val = parser.add_mutually_exclusive_group()
    val.add_argument('--validate', dest='validate', action='store_true', default=None,
                     help='evaluate during training (default: when the config has `evaluation`)')
    val.add_argument('--no-validate', '--no_validate', dest='validate', action='store_false',
                     help='do not evaluate during training')
    parser.add_argument('--gpus', type=int, default=None,
                        help='number of GPUs (non-distributed: only 1 is supported)')
    parser.add_argument('--seed', type=int, default=None, help='random seed')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic algorithms (torch.use_deterministic_algorithms, '
                             'cuDNN deterministic)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='job launcher (pytorch: started by torchrun; slurm: by srun, one '
                             'task per GPU)')
    _add(parser, 'auto_scale_lr', action='store_true',
         help='scale optimizer.lr linearly by the total batch size (processes x imgs_per_gpu) / '
              'auto_scale_lr.base_batch_size (same as auto_scale_lr.enable=True)')
    _add(parser, 'sync_bn', action='store_true',
         help='convert the BatchNorm layers to SyncBatchNorm (distributed training on GPUs)')
    _add(parser, 'local_rank', type=int, default=0, help=argparse.SUPPRESS)
    _add(parser, 'cfg_options', nargs='+', action=DictAction, metavar='KEY=VALUE',
         help='override config settings, e.g. total_epochs=2 optimizer.lr=0.005. '
              + CFG_OPTIONS_RULE)
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: float16 autocast + GradScaler on CUDA, bfloat16 '
                             'autocast on CPU (same as fp16 = dict(loss_scale="dynamic"))')
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _existing_checkpoints(work_dir: str) -> list:
    return sorted(glob.glob(osp.join(work_dir, CHECKPOINT_GLOB)))


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmdet_solo.apis.config_check import framework_keys, load_config
    from mmdet_solo.apis.train import SyncBNError, train_detector
    from mmdet_solo.datasets import build_dataset
    from mmdet_solo.engine.dist import get_dist_info, init_dist
    from mmdet_solo.models import build_detector
    from mmdet_solo.utils.logger import get_root_logger
    from mmdet_solo.utils.misc import check_writable, format_env, set_random_seed

    def fail(msg: str) -> int:
        print(f'tools/train.py: error: {msg}', file=sys.stderr)
        return 2

    try:
        cfg = load_config(args.config, args.cfg_options)
    except ConfigError as e:
        return fail(str(e))

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.work_dir = osp.abspath(cfg.work_dir)
    if args.resume_from is not None:
        cfg.resume_from = args.resume_from
    if args.load_from is not None:
        cfg.load_from = args.load_from
    if args.gpus is not None:
        cfg.gpus = args.gpus
    if cfg.get('gpus') is None:
        cfg.gpus = 1
    if args.amp and cfg.get('fp16') is None:
        cfg.fp16 = dict(loss_scale='dynamic')
    if args.seed is not None:
        cfg.seed = args.seed
    if args.auto_scale_lr:
        if not isinstance(cfg.get('auto_scale_lr'), dict) or \
                'base_batch_size' not in cfg.auto_scale_lr:
            return fail('--auto-scale-lr needs auto_scale_lr = dict(base_batch_size=N) in the '
                        'config (N: the total batch size its optimizer.lr was set for; the '
                        'shipped configs inherit 16 from configs/_base_/default_runtime.py)')
        cfg.auto_scale_lr.enable = True
    validate = args.validate if args.validate is not None else bool(cfg.get('evaluation'))

    # mmdet options that may be set in the config as well as on the command line
    args.auto_resume = args.auto_resume or bool(cfg.get('auto_resume', False))
    args.deterministic = args.deterministic or bool(cfg.get('deterministic', False))
    workflow = [tuple(w) for w in cfg.get('workflow') or [('train', 1)]]
    if workflow != [('train', 1)]:
        return fail(f"workflow {cfg.workflow!r} is not supported: only [('train', 1)]; "
                    "validate with evaluation = dict(interval=1, metric='segm') and --validate")
    if cfg.get('cudnn_benchmark', False):
        torch.backends.cudnn.benchmark = True

    # resuming / clobber protection
    latest = osp.join(cfg.work_dir, 'latest.pth')
    if args.auto_resume and args.resume_from is None and osp.isfile(latest):
        cfg.resume_from = latest
    if cfg.get('resume_from') and not osp.isfile(cfg.resume_from):
        return fail(f"resume_from '{cfg.resume_from}' does not exist")
    existing = _existing_checkpoints(cfg.work_dir)
    if existing and not (cfg.get('resume_from') or args.auto_resume or args.overwrite):
        names = ', '.join(osp.basename(p) for p in existing[:5])
        return fail(f"work dir '{cfg.work_dir}' already holds checkpoints ({names}"
                    f"{', ...' if len(existing) > 5 else ''}); not overwriting them. Pass "
                    '--resume-from CKPT or --auto-resume to continue that run, --overwrite to '
                    'start over in it, or choose another --work-dir.')

    distributed = args.launcher != 'none'
    if distributed:
        init_dist(args.launcher, backend=(cfg.get('dist_params') or {}).get('backend'))
    rank, world_size = get_dist_info()
    moved_aside = None
    if args.overwrite and not cfg.get('resume_from') and rank == 0 and osp.isfile(latest):
        # a later --auto-resume must not pick up the previous run's latest.pth if this run
        # dies before its first save: keep it under another name
        stamp = time.strftime('%Y%m%d_%H%M%S')
        moved_aside = osp.join(cfg.work_dir, f'latest_before_overwrite_{stamp}.pth')
        os.replace(latest, moved_aside)

    try:
        check_writable(cfg.work_dir, 'work_dir')
    except OSError as e:
        return fail(str(e))
    os.makedirs(cfg.work_dir, exist_ok=True)
    timestamp = time.strftime('%Y%m%d_%H%M%S')
    logger = get_root_logger(osp.join(cfg.work_dir, f'{timestamp}.log'),
                             cfg.get('log_level', 'INFO'))
    if rank == 0:
        framework_keys(cfg).dump(osp.join(cfg.work_dir, osp.basename(args.config)))
    logger.info('Environment:\n' + format_env())
    logger.info(f'Distributed training: {distributed} ({world_size} process(es))')
    if moved_aside:
        logger.info(f'--overwrite: the previous run\'s latest.pth is kept as {moved_aside}')
    if args.auto_resume and args.resume_from is None:
        logger.info(f"--auto-resume: resuming from {cfg.resume_from}" if cfg.get('resume_from')
                    else f'--auto-resume: no latest.pth in {cfg.work_dir}: training starts fresh')
    logger.info(f'Config:\n{cfg.pretty_text}')

    if cfg.get('seed') is not None:
        logger.info(f'Set random seed to {cfg.seed}, deterministic: {args.deterministic}')
        set_random_seed(cfg.seed + rank, deterministic=args.deterministic)
    elif args.deterministic:
        set_random_seed(0, deterministic=True)
        cfg.seed = 0
        logger.info('--deterministic without --seed: using seed 0')

    model = build_detector(cfg.model, train_cfg=cfg.get('train_cfg'),
                           test_cfg=cfg.get('test_cfg'))
    dataset = build_dataset(cfg.data.train)
    model.CLASSES = getattr(dataset, 'CLASSES', None)
    num_classes = getattr(model.bbox_head, 'num_classes', None)
    if model.CLASSES is not None and num_classes is not None and \
            len(model.CLASSES) != num_classes:
        return fail(f'model.bbox_head.num_classes={num_classes} but the training set '
                    f'(data.train.classes) has {len(model.CLASSES)} classes; set '
                    'num_classes=len(classes) (object classes only, no background)')
    meta = dict(config_file=osp.basename(args.config), exp_name=osp.basename(args.config),
                seed=cfg.get('seed'))
    try:
        train_detector(model, dataset, cfg, distributed=distributed, validate=validate,
                       timestamp=timestamp, meta=meta, sync_bn=args.sync_bn)
    except SyncBNError as e:
        return fail(str(e))
    finally:
        if distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


if __name__ == '__main__':
    sys.exit(main())
