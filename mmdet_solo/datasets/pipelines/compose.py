"""``Compose``: chain pipeline transforms built from config dicts or given as callables."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, List, Optional, Union

from ...registry import PIPELINES, build_from_cfg

Transform = Union[dict, Callable[[dict], Optional[dict]]]


@PIPELINES.register_module()
class Compose:
    """Apply transforms in order; a transform that returns ``None`` drops the sample.

    Args:
        transforms: config dicts (``dict(type='Resize', ...)``, built from ``PIPELINES``)
            or callables taking and returning a results dict.
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        if isinstance(transforms, (str, bytes, dict)) or not isinstance(transforms, Sequence):
            raise TypeError(f'Compose: transforms must be a list of dicts or callables, '
                            f'got {type(transforms).__name__}: {transforms!r}')
        self.transforms: List[Callable[[dict], Optional[dict]]] = []
        for i, t in enumerate(transforms):
            if isinstance(t, dict):
                self.transforms.append(build_from_cfg(t, PIPELINES))
            elif callable(t):
                self.transforms.append(t)
            else:
                raise TypeError(f'Compose: transform #{i} must be a dict or a callable, '
                                f'got {type(t).__name__}: {t!r}')

    def __call__(self, data: dict) -> Optional[Any]:
        for t in self.transforms:
            data = t(data)
            if data is None:
                return None
        return data

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        inner = ''.join(f'\n    {t!r}' for t in self.transforms)
        return f'{self.__class__.__name__}({inner}\n)'
