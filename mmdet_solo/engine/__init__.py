"""Training engine: the epoch-based trainer, its hooks, the test loop, optimizer building,
distributed helpers."""
from .dist import (all_gather_object, all_reduce_mean, barrier, get_dist_info, init_dist,
                   is_main_process)
from .hooks import (CheckpointHook, EvalHook, Hook, LrUpdaterHook, TensorboardLoggerHook,
                    TextLoggerHook)
from .ema import EMAHook
from .optim import build_optimizer
from .testing import gather_results, infer_dataset, run_test
from .trainer import EpochBasedTrainer, LogBuffer, NonFiniteLossError, clip_grads, parse_losses

__all__ = ['EpochBasedTrainer', 'LogBuffer', 'NonFiniteLossError', 'parse_losses', 'clip_grads',
           'Hook', 'LrUpdaterHook', 'EMAHook', 'CheckpointHook', 'EvalHook',
           'TextLoggerHook', 'TensorboardLoggerHook', 'run_test', 'infer_dataset',
           'gather_results', 'build_optimizer', 'init_dist', 'get_dist_info', 'is_main_process',
           'barrier', 'all_reduce_mean', 'all_gather_object']
