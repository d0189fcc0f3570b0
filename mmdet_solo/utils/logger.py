"""The package logger: console on every rank (errors only off rank 0), a file on rank 0."""
from __future__ import annotations

import logging
import os
from typing import Optional

LOGGER_NAME = 'mmdet_solo'
_FORMAT = '%(asctime)s - %(name)s - %(levelname)s - %(message)s'


def _rank() -> int:
    try:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank()
    except ImportError:  # pragma: no cover
        pass
    return int(os.environ.get('RANK', 0))


def get_root_logger(log_file: Optional[str] = None, log_level: int | str = logging.INFO
                    ) -> logging.Logger:
    """The ``mmdet_solo`` logger.

    The first call (per process) attaches a console handler; a call with ``log_file`` adds a
    file handler (append mode) on rank 0 unless that file already has one. Ranks other than 0
    log errors only, so a multi-process run prints each message once.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if isinstance(log_level, str):
        level = logging.getLevelName(log_level.upper())
        if not isinstance(level, int):
            raise ValueError(f"unknown log_level '{log_level}' (use DEBUG, INFO, WARNING, ERROR)")
        log_level = level
    rank = _rank()
    logger.setLevel(log_level if rank == 0 else logging.ERROR)
    logger.propagate = False
    formatter = logging.Formatter(_FORMAT)
    if not any(getattr(h, '_mmdet_solo_console', False) for h in logger.handlers):
        console = logging.StreamHandler()
        console.setFormatter(formatter)
        console._mmdet_solo_console = True  # type: ignore[attr-defined]
        logger.addHandler(console)
    if log_file is not None and rank == 0:
        path = os.path.abspath(log_file)
        if not any(isinstance(h, logging.FileHandler) and h.baseFilename == path
                   for h in logger.handlers):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            file_handler = logging.FileHandler(path, mode='a')
            file_handler.setFormatter(formatter)
            logger.addHandler(file_handler)
    return logger


def close_file_handlers(logger: Optional[logging.Logger] = None) -> None:
    """Detach and close the logger's file handlers (the console handler stays)."""
    logger = logger or logging.getLogger(LOGGER_NAME)
    for h in list(logger.handlers):
        if isinstance(h, logging.FileHandler):
            logger.removeHandler(h)
            h.close()


__all__ = ['get_root_logger', 'close_file_handlers', 'LOGGER_NAME']
