"""``MultiScaleFlipAug``: run the inner transforms once per (scale, flip) combination."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple, Union

from ...registry import PIPELINES
from .compose import Compose
from .transforms import normalize_scales

Scale = Tuple[int, int]


@PIPELINES.register_module()
class MultiScaleFlipAug:
    """Test-time augmentation wrapper (mmdet v1 semantics).

    For every scale in ``img_scale`` and every flip in ``[False]`` (``[False, True]`` with
    ``flip=True``) a shallow copy of the sample gets ``scale`` and ``flip`` set and goes through
    ``transforms``. Returns a dict of lists: ``{key: [value for each augmentation]}``,
    scales outermost, e.g. ``{'img': [t0, ...], 'img_metas': [m0, ...]}``.
    """

    def __init__(self, transforms: Sequence, img_scale: Union[Scale, List[Scale]],
                 flip: bool = False) -> None:
        self.transforms = Compose(transforms)
        scales = normalize_scales(img_scale)
        self.img_scale = scales
        self.flip = flip

    def __call__(self, results: dict) -> Dict[str, list]:
        aug_data = []
        for scale in self.img_scale:
            for flip in ([False, True] if self.flip else [False]):
                sample = results.copy()
                sample['scale'] = scale
                sample['flip'] = flip
                for key in ('bbox_fields', 'mask_fields', 'seg_fields'):
                    if key in sample:
                        sample[key] = list(sample[key])
                out = self.transforms(sample)
                if out is None:
                    raise ValueError(f'MultiScaleFlipAug: the transforms dropped the sample at '
                                     f'scale={scale}, flip={flip}')
                aug_data.append(out)
        merged: Dict[str, list] = {key: [] for key in aug_data[0]}
        for data in aug_data:
            for key, val in data.items():
                merged[key].append(val)
        return merged

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(transforms={self.transforms!r}, img_scale={self.img_scale}, '
                f'flip={self.flip})')
