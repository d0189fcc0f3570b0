"""Read any supported checkpoint file and return it under our names."""
from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Optional, Tuple, Union

import torch

from ..pdparams import PdparamsError, is_pdparams_file, load_pdparams
from . import normalise_meta, to_solo

_logger = logging.getLogger(__name__)


def read_raw(path: str, map_location: Union[str, torch.device, None] = 'cpu',
             use_ema: bool = False) -> Tuple['OrderedDict[str, object]', dict]:
    """The file's own ``(state_dict, meta)``, names untouched (``.pdparams``: numpy values);
    ``use_ema``: its ``ema_state_dict`` when it has one (see ``load_state_dict_file``)."""
    from ..checkpoint import CheckpointError, load_state_dict_file
    if is_pdparams_file(path):
        try:
            return load_pdparams(path), {}
        except PdparamsError as e:
            raise CheckpointError(str(e)) from e
    return load_state_dict_file(path, map_location, use_ema=use_ema)


def read_checkpoint(path: str, map_location: Union[str, torch.device, None] = 'cpu',
                    fmt: str = 'auto', logger: Optional[logging.Logger] = None,
                    use_ema: bool = False) -> Tuple['OrderedDict[str, torch.Tensor]', dict, str]:
    """``(state_dict, meta, fmt)`` with foreign names converted to ours.

    Keys that no rule of the detected format maps are kept under their own names, so that
    the loader reports them as unexpected.
    """
    raw, meta = read_raw(path, map_location, use_ema=use_ema)
    state_dict, unmatched, fmt = to_solo(raw, fmt)
    if fmt not in ('solo', 'unknown'):
        (logger or _logger).info(f"checkpoint '{path}': {fmt} format, converted "
                                 f'{len(state_dict)} keys to mmdet_solo names')
        for k in unmatched:
            v = raw[k]
            state_dict[k] = v if isinstance(v, torch.Tensor) else torch.as_tensor(v)
    return state_dict, normalise_meta(meta), fmt
