"""Compare a converted state dict with a model's: what maps, what is missing, what mismatches."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Mapping

import torch

_OPTIONAL = ('num_batches_tracked',)


@dataclass
class ConversionReport:
    """Keys no rule matched, model keys absent from the file, surplus keys and shape clashes."""

    fmt: str
    unmatched: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    shape_mismatch: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.unmatched or self.missing or self.unexpected or self.shape_mismatch)

    def format(self, limit: int = 50) -> str:
        parts = []
        for title, keys in (('keys no rule maps', self.unmatched),
                            ('model keys missing from the checkpoint', self.missing),
                            ('checkpoint keys the model does not have', self.unexpected),
                            ('shape mismatches', self.shape_mismatch)):
            if keys:
                shown = '\n'.join(f'    {k}' for k in keys[:limit])
                more = f'\n    ... and {len(keys) - limit} more' if len(keys) > limit else ''
                parts.append(f'{title} ({len(keys)}):\n{shown}{more}')
        return '\n'.join(parts) if parts else 'every key maps'


def compare_state_dicts(converted: Mapping[str, torch.Tensor], model: Mapping[str, torch.Tensor],
                        fmt: str, unmatched: List[str] = ()) -> ConversionReport:
    """Report of loading ``converted`` (our names) into a model with state dict ``model``."""
    report = ConversionReport(fmt, unmatched=list(unmatched))
    for k, v in model.items():
        if k not in converted:
            if not k.endswith(_OPTIONAL):
                report.missing.append(k)
        elif tuple(converted[k].shape) != tuple(v.shape):
            report.shape_mismatch.append(
                f'{k}: checkpoint {tuple(converted[k].shape)} vs model {tuple(v.shape)}')
    report.unexpected = [k for k in converted if k not in model]
    return report
