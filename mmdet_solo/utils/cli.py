"""Command-line options shared by the inference and test tools."""
from __future__ import annotations

import argparse


def add_model_loading_args(parser: argparse.ArgumentParser) -> None:
    """``--fp16`` and ``--allow-partial``: how ``init_detector`` loads and runs the model."""
    parser.add_argument('--fp16', action='store_true',
                        help='autocast the network (float16 on CUDA, bfloat16 on a CPU; '
                             'post-processing stays float32): faster, results differ slightly')
    parser.add_argument('--allow-partial', '--allow_partial', dest='allow_partial',
                        action='store_true',
                        help='run with a checkpoint that fills less than half of the model '
                             '(weights of another config); refused by default')
