"""ResNeXt backbone: ResNet with grouped 3x3 convs in the Bottlenecks (mmdetection v1 names)."""
from __future__ import annotations

from ...registry import BACKBONES
from .resnet import Bottleneck, ResNet


@BACKBONES.register_module()
class ResNeXt(ResNet):
    """ResNeXt-50/101/152, e.g. X101-64x4d: ``ResNeXt(depth=101, groups=64, base_width=4)``.

    The Bottleneck width is ``floor(planes * base_width / 64) * groups`` (256 for the first
    stage of 64x4d and 32x4d, 512 for 32x8d); ``conv2`` is a grouped 3x3 conv (or a grouped
    DCN, its offsets from ``conv2.conv_offset``). Key names and shapes equal torchvision's
    ``resnext*`` models. The other arguments are those of :class:`ResNet`.
    """

    arch_settings = {
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, groups: int = 1, base_width: int = 4, **kwargs):
        if groups < 1 or base_width < 1:
            raise ValueError(f'ResNeXt: groups ({groups}) and base_width ({base_width}) must be '
                             '>= 1')
        super().__init__(groups=groups, base_width=base_width, **kwargs)
