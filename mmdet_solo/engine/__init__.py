"""Training engine: the epoch-based trainer, its hooks, optimizer building, distributed helpers."""
from .dist import (all_gather_object, all_reduce_mean, barrier, collect_results, get_dist_info,
                   init_dist, is_main_process)
from .hooks import (CheckpointHook, EvalHook, Hook, IterTimerHook, LrUpdaterHook, OptimizerHook,
                    TensorboardLoggerHook, TextLoggerHook, run_test)
from .optim import build_optimizer
from .trainer import EpochBasedTrainer, LogBuffer, NonFiniteLossError, parse_losses

__all__ = ['EpochBasedTrainer', 'LogBuffer', 'NonFiniteLossError', 'parse_losses', 'Hook',
           'LrUpdaterHook', 'OptimizerHook', 'IterTimerHook', 'CheckpointHook', 'EvalHook',
           'TextLoggerHook', 'TensorboardLoggerHook', 'run_test', 'build_optimizer',
           'init_dist', 'get_dist_info', 'is_main_process', 'barrier', 'all_reduce_mean',
           'all_gather_object', 'collect_results']
