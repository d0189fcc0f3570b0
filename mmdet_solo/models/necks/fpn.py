"""Feature Pyramid Network with the mmdetection v1 names (``lateral_convs.i``, ``fpn_convs.i``)."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import NECKS
from ..layers import ConvModule
from ..layers.inplace import accumulate


def upsample_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Nearest upsampling of ``x`` to ``ref``'s spatial size.

    The original uses ``scale_factor=2``, which breaks (a shape error in the sum) when a level is
    not exactly twice the next one, i.e. when the input is not a multiple of the total stride.
    We use ``scale_factor=2`` whenever it fits, exactly as the original, and ``size=`` otherwise.
    """
    h, w = ref.shape[-2:]
    if (h, w) == (2 * x.shape[-2], 2 * x.shape[-1]):
        return F.interpolate(x, scale_factor=2, mode='nearest')
    return F.interpolate(x, size=(h, w), mode='nearest')


@NECKS.register_module()
class FPN(nn.Module):
    """FPN (mmdetection v1 behaviour).

    Args:
        in_channels: channels of each backbone level, e.g. ``[256, 512, 1024, 2048]``.
        out_channels: channels of every output level.
        num_outs: number of outputs; levels beyond the backbone's are extra levels.
        start_level / end_level: backbone levels used (``end_level=-1``: up to the last).
        add_extra_convs: extra levels from stride-2 3x3 convs instead of
            ``max_pool2d(kernel 1, stride 2)`` of the last output.
        extra_convs_on_inputs: the first extra conv reads the last backbone level (else the last
            FPN output).
        relu_before_extra_convs: ReLU before the second and later extra convs.
        no_norm_on_lateral: no norm layer in the lateral 1x1 convs.
        conv_cfg / norm_cfg / activation: of every ConvModule (``activation`` None or 'relu').

    ``forward``: tuple of ``(B, in_channels[i], H_i, W_i)`` -> tuple of ``num_outs`` maps
    ``(B, out_channels, H_l, W_l)``, finest first. Top-down: nearest 2x upsampling + sum.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int, num_outs: int,
                 start_level: int = 0, end_level: int = -1, add_extra_convs: bool = False,
                 extra_convs_on_inputs: bool = True, relu_before_extra_convs: bool = False,
                 no_norm_on_lateral: bool = False, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, activation: Optional[str] = None):
        super().__init__()
        if not isinstance(in_channels, (list, tuple)) or not in_channels:
            raise TypeError(f'FPN: in_channels must be a non-empty list of ints, '
                            f'got {in_channels!r}')
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(in_channels)
        self.num_outs = num_outs
        self.activation = activation
        self.relu_before_extra_convs = relu_before_extra_convs
        self.no_norm_on_lateral = no_norm_on_lateral
        if not 0 <= start_level < self.num_ins:
            raise ValueError(f'FPN: start_level={start_level} must be in 0..{self.num_ins - 1} '
                             f'for {self.num_ins} input levels')
        if end_level == -1:
            self.backbone_end_level = self.num_ins
            if num_outs < self.num_ins - start_level:
                raise ValueError(f'FPN: num_outs={num_outs} must be >= the number of used input '
                                 f'levels ({self.num_ins - start_level})')
        else:
            # with an explicit end_level no extra level is allowed (as in the original)
            if not start_level < end_level <= self.num_ins:
                raise ValueError(f'FPN: end_level={end_level} must be in '
                                 f'{start_level + 1}..{self.num_ins}')
            if num_outs != end_level - start_level:
                raise ValueError(f'FPN: num_outs={num_outs} must equal end_level - start_level '
                                 f'= {end_level - start_level} when end_level is given')
            self.backbone_end_level = end_level
        self.start_level = start_level
        self.end_level = end_level
        self.add_extra_convs = add_extra_convs
        self.extra_convs_on_inputs = extra_convs_on_inputs

        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(start_level, self.backbone_end_level):
            self.lateral_convs.append(ConvModule(
                in_channels[i], out_channels, 1, conv_cfg=conv_cfg,
                norm_cfg=None if no_norm_on_lateral else norm_cfg, activation=activation,
                inplace=False))
            self.fpn_convs.append(ConvModule(
                out_channels, out_channels, 3, padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                activation=activation, inplace=False))
        extra_levels = num_outs - self.backbone_end_level + start_level
        if add_extra_convs and extra_levels >= 1:
            for i in range(extra_levels):
                c_in = (self.in_channels[self.backbone_end_level - 1]
                        if i == 0 and extra_convs_on_inputs else out_channels)
                self.fpn_convs.append(ConvModule(
                    c_in, out_channels, 3, stride=2, padding=1, conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg, activation=activation, inplace=False))
        self.init_weights()

    def init_weights(self) -> None:
        """Xavier-uniform conv weights, zero biases (norm layers keep weight 1, bias 0)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != self.num_ins:
            raise ValueError(f'FPN: expected {self.num_ins} input levels (in_channels='
                             f'{self.in_channels}), got {len(inputs)}')
        for i, (x, c) in enumerate(zip(inputs, self.in_channels)):
            if x.dim() != 4 or x.shape[1] != c:
                raise ValueError(f'FPN: input level {i} must be (B, {c}, H, W), '
                                 f'got {tuple(x.shape)}')
        laterals: List[torch.Tensor] = [conv(inputs[i + self.start_level])
                                        for i, conv in enumerate(self.lateral_convs)]
        used = len(laterals)
        for i in range(used - 1, 0, -1):
            laterals[i - 1] = accumulate(laterals[i - 1],
                                         upsample_like(laterals[i], laterals[i - 1]))
        outs = [self.fpn_convs[i](laterals[i]) for i in range(used)]
        if self.num_outs > used:
            if not self.add_extra_convs:
                for _ in range(self.num_outs - used):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                src = (inputs[self.backbone_end_level - 1] if self.extra_convs_on_inputs
                       else outs[-1])
                outs.append(self.fpn_convs[used](src))
                for i in range(used + 1, self.num_outs):
                    x = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
                    outs.append(self.fpn_convs[i](x))
        return tuple(outs)
