"""Export a detector, post-processing included, to ONNX (``torch.onnx.export``, dynamo)."""
from __future__ import annotations

import json
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..utils.io import atomic_write
from ..models.layers.deform_conv import has_deform_conv
from .graph import DEFAULT_MAX_CANDIDATES, OUTPUT_NAMES, ExportableDetector
from .runtime import METADATA_KEY

class UnsupportedExport(RuntimeError):
    """The model cannot be exported (raised before anything is written)."""


DEFAULT_OPSET = 18
DCN_OPSET = 19          # ONNX DeformConv
MAX_DYNAMIC_SIDE = 32 * 256   # largest exported height/width of a dynamic export (8192 px)
MAX_DYNAMIC_BATCH = 64


def check_export_args(shape: Sequence[int], batch_size: int, opset: int) -> Tuple[int, int]:
    """Refuse an example shape that is not a multiple of 32, a batch < 1 or an opset < 18."""
    if len(shape) != 2 or any(int(s) <= 0 or int(s) % 32 for s in shape):
        raise ValueError(f'--shape {list(shape)}: expected H W, positive multiples of 32 '
                         '(the padded input size)')
    if batch_size < 1:
        raise ValueError(f'--batch-size {batch_size}: expected >= 1')
    if opset < DEFAULT_OPSET:
        raise ValueError(f'--opset {opset}: expected >= {DEFAULT_OPSET}')
    return int(shape[0]), int(shape[1])


def export_onnx(detector: nn.Module, output_file: str, shape: Sequence[int] = (800, 1216),
                batch_size: int = 1, dynamic: bool = True, opset: Optional[int] = None,
                max_candidates: int = DEFAULT_MAX_CANDIDATES, seed: int = 0) -> torch.Tensor:
    """Write ``detector`` (network + static post-processing) as ONNX to ``output_file``.

    ``shape`` is the padded (H, W) of the example input. With ``dynamic`` the batch and the
    height/width (multiples of 32) are dynamic; the example then has a batch of at least 2
    (torch.export fixes a dimension of size 1). Models with deformable convolutions need
    opset 19 (ONNX ``DeformConv``; the default for them). Returns the example input.
    The file is written atomically; the export settings (classes, test_cfg,
    max_candidates) are stored in its metadata for :class:`~.runtime.ONNXRuntimeDetector`.
    """
    dcn = has_deform_conv(detector)
    if opset is None:
        opset = DCN_OPSET if dcn else DEFAULT_OPSET
    if dcn and opset < DCN_OPSET:
        raise ValueError(f'this model has deformable convolutions: ONNX DeformConv needs '
                         f'--opset {DCN_OPSET} or later, got {opset}')
    h, w = check_export_args(shape, batch_size, opset)
    module = ExportableDetector(detector, max_candidates).eval()
    example_batch = max(batch_size, 2) if dynamic else batch_size
    example = torch.randn(example_batch, 3, h, w, generator=torch.Generator().manual_seed(seed))
    kwargs = {}
    if dynamic:
        dims = dict(batch=torch.export.Dim('batch', min=1, max=MAX_DYNAMIC_BATCH),
                    h=torch.export.Dim('h', min=1, max=MAX_DYNAMIC_SIDE // 32),
                    w=torch.export.Dim('w', min=1, max=MAX_DYNAMIC_SIDE // 32))
        kwargs['dynamic_shapes'] = {'img': {0: dims['batch'], 2: 32 * dims['h'],
                                            3: 32 * dims['w']}}
    if dcn:
        from .deform_conv import deform_conv_translation
        kwargs['custom_translation_table'] = deform_conv_translation()
    metadata = dict(classes=list(detector.CLASSES) if getattr(detector, 'CLASSES', None) else None,
                    test_cfg=dict(detector.test_cfg), max_candidates=max_candidates, opset=opset,
                    dynamic=dynamic, example_shape=list(example.shape),
                    outputs=list(OUTPUT_NAMES), mask_stride=4)
    with torch.no_grad():
        program = torch.onnx.export(module, (example,), dynamo=True, opset_version=opset,
                                    input_names=['img'], output_names=list(OUTPUT_NAMES),
                                    optimize=True, verbose=False, **kwargs)
    onnx_model = program.model_proto
    entry = onnx_model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    _save(onnx_model, output_file)
    return example


def _save(onnx_model, output_file: str) -> None:
    """One self-contained file (models below 2 GB), written atomically."""
    data = onnx_model.SerializeToString()
    atomic_write(output_file, data)
