"""ONNX export of the deformable convolutions (``torchvision::deform_conv2d``) as ONNX
``DeformConv`` (opset 19), which ONNX Runtime runs on a CPU (checked by tests/deploy)."""
from __future__ import annotations

from typing import Dict


def deform_conv_translation() -> Dict:
    """``custom_translation_table`` for ``torch.onnx.export(dynamo=True)``."""
    import torch
    import torchvision.ops  # noqa: F401  (registers torch.ops.torchvision)
    from onnxscript import opset19 as op

    def deform_conv2d(input, weight, offset, mask, bias, stride_h: int, stride_w: int,
                      pad_h: int, pad_w: int, dil_h: int, dil_w: int, n_weight_grps: int,
                      n_offset_grps: int, use_mask: bool):
        attrs = dict(strides=[stride_h, stride_w], pads=[pad_h, pad_w, pad_h, pad_w],
                     dilations=[dil_h, dil_w], group=n_weight_grps, offset_group=n_offset_grps)
        if use_mask:
            return op.DeformConv(input, weight, offset, bias, mask, **attrs)
        return op.DeformConv(input, weight, offset, bias, **attrs)

    return {torch.ops.torchvision.deform_conv2d.default: deform_conv2d}
