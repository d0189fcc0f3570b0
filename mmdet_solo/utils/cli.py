"""Command-line options shared by the inference and test tools."""
from __future__ import annotations

import argparse
from typing import Optional


def add_model_loading_args(parser: argparse.ArgumentParser) -> None:
    """``--fp16``, ``--fuse-conv-bn``, ``--allow-partial`` and ``--no-ema``: how
    ``init_detector`` loads and runs the model (see :func:`model_cfg_options`)."""
    parser.add_argument('--fp16', action='store_true',
                        help='autocast the network (float16 on CUDA, bfloat16 on a CPU; '
                             'post-processing stays float32): faster, results differ slightly')
    parser.add_argument('--fuse-conv-bn', '--fuse_conv_bn', dest='fuse_conv_bn',
                        action='store_true',
                        help='fold BatchNorm into the convolutions before it (config '
                             'fuse_conv_bn=True): a little faster, results equal up to rounding')
    parser.add_argument('--allow-partial', '--allow_partial', dest='allow_partial',
                        action='store_true',
                        help='run with a checkpoint that fills less than half of the model '
                             '(weights of another config); refused by default')
    parser.add_argument('--no-ema', '--no_ema', dest='no_ema', action='store_true',
                        help='load the raw weights of a checkpoint trained with EMAHook (by '
                             'default its averaged weights, ema_state_dict, are used)')


def model_cfg_options(args: argparse.Namespace) -> Optional[dict]:
    """``--cfg-options`` with the model-loading flags that are config settings merged in
    (``--fuse-conv-bn`` → ``fuse_conv_bn=True``)."""
    options = dict(args.cfg_options or {})
    if getattr(args, 'fuse_conv_bn', False):
        options['fuse_conv_bn'] = True
    return options or None
