"""FLOPs, parameters and stage timings of a detector (tools/analysis/get_flops.py and
benchmark.py, and the scripts in benchmarks/).

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``: a convolution or matrix product
counts **2 FLOPs per multiply-accumulate** (``2 * MACs``); additions of biases, normalisation,
activations, resizing and the other element-wise operations are not counted. MMDetection's
``get_flops`` (mmcv's ``get_model_complexity_info``) reports MACs under the name "Flops", so its
figures compare with our ``GMACs`` column (= GFLOPs / 2). Deformable convolutions
(torchvision's ``deform_conv2d``) count as the convolution they are, without the bilinear
sampling.
"""
from __future__ import annotations

import contextlib
import statistics
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..models.detectors.single_stage_ins import outputs_float32
from ..ops.cpu_cache import cpu_allocation_cache

# module groups of a detector, in the order data flows through them
GROUPS = ('backbone', 'neck', 'mask_feat_head', 'bbox_head')


def input_shape(shape: Optional[Sequence[int]], default: Sequence[int]) -> Tuple[int, int]:
    """``--shape`` of the analysis tools: ``(H, W)``, one number for a square, ``default``
    for ``None``; ``ValueError`` unless both are at least 32."""
    if shape is None:
        return tuple(default)  # type: ignore[return-value]
    shape = list(shape) * 2 if len(shape) == 1 else list(shape)
    if len(shape) != 2 or min(shape) < 32:
        raise ValueError(f'--shape takes H W (or one size), each at least 32; got {shape}')
    return shape[0], shape[1]


# ------------------------------------------------------------------------------- timing
def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); a no-op on a CPU."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> Tuple[Any, float]:
    """``(fn(), seconds)``, the device synchronised before and after."""
    synchronize(device)
    t = time.perf_counter()
    out = fn()
    synchronize(device)
    return out, time.perf_counter() - t


@contextlib.contextmanager
def paste_timer(device: torch.device) -> Iterator[List[float]]:
    """Inside the block, every call of the heads' mask pasting
    (``models.heads.postprocess.paste_masks``) adds its seconds to the yielded list."""
    from ..models.heads import postprocess
    original = postprocess.paste_masks
    spent: List[float] = []

    def timed_paste(*args, **kwargs):
        out, seconds = timed(lambda: original(*args, **kwargs), device)
        spent.append(seconds)
        return out

    postprocess.paste_masks = timed_paste
    try:
        yield spent
    finally:
        postprocess.paste_masks = original


def _autocast(model: nn.Module, device: torch.device):
    dtype = getattr(model, 'inference_dtype', None)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None \
        else contextlib.nullcontext()


STAGES = ('backbone_neck', 'heads', 'postprocess', 'mask_paste')


@torch.no_grad()
def time_stages(model: nn.Module, img: torch.Tensor, img_metas: Sequence[dict], warmup: int = 1,
                iters: int = 5, whole_call: bool = False,
                load: Optional[Callable[[], Tuple[torch.Tensor, Sequence[dict]]]] = None
                ) -> Dict[str, Any]:
    """Median seconds per batch of each inference stage, as ``model.simple_test`` runs them.

    Stages: ``backbone_neck`` (``extract_feat``), ``heads`` (mask-feature and SOLO heads),
    ``postprocess`` (the heads' ``predict`` without mask pasting: scores, candidate masks,
    Matrix NMS) and ``mask_paste`` (resizing the kept masks to the original image); the
    network under autocast when ``model.inference_dtype`` is set (``init_detector(fp16=True)``).
    ``load`` (optional) is timed first as ``data`` and gives the batch instead of
    ``img``/``img_metas``. ``total`` is the median of the per-iteration sums; with
    ``whole_call`` the full ``model(img=..., return_loss=False)`` call is timed too
    (``model``). Also returns ``detections`` (of the first image) and ``iters``.
    """
    device = next(model.parameters()).device
    model.eval()
    rows: List[Dict[str, float]] = []
    detections = 0
    for i in range(warmup + iters):
        row: Dict[str, float] = {}
        if load is not None:
            (img, img_metas), row['data'] = timed(load, device)
        with cpu_allocation_cache(device):   # as simple_test
            with _autocast(model, device):
                feats, row['backbone_neck'] = timed(lambda: model.extract_feat(img), device)
                outs, row['heads'] = timed(lambda: model.forward_heads(feats), device)
            if getattr(model, 'inference_dtype', None) is not None:
                outs = outputs_float32(outs)
            feats = None
            with paste_timer(device) as pasted:
                res, predict = timed(
                    lambda: model.bbox_head.predict(outs, img_metas, model.test_cfg), device)
            outs = None
        row['mask_paste'] = sum(pasted)
        row['postprocess'] = predict - row['mask_paste']
        row['total'] = sum(row[k] for k in ('data',) + STAGES if k in row)
        if whole_call:
            res_fwd, row['model'] = timed(lambda: model(img=img, img_metas=img_metas,
                                                        return_loss=False, rescale=True), device)
            if len(res_fwd) != len(img_metas):
                raise RuntimeError(f'model() returned {len(res_fwd)} results for a batch of '
                                   f'{len(img_metas)}')
        detections = len(res[0])
        if i >= warmup:
            rows.append(row)
    out: Dict[str, Any] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    out.update(detections=detections, iters=iters)
    return out


# -------------------------------------------------------------------------------- FLOPs
def _deform_conv_flop(x_shape, weight_shape, *args, out_shape=None, **kwargs) -> int:
    """torchvision::deform_conv2d as the convolution it is (2 FLOPs per MAC)."""
    from torch.utils.flop_counter import conv_flop_count
    return conv_flop_count(list(x_shape), list(weight_shape), list(out_shape))


def _custom_flops() -> Dict[Any, Callable]:
    try:
        import torchvision  # noqa: F401  (registers torch.ops.torchvision)
        return {torch.ops.torchvision.deform_conv2d: _deform_conv_flop}
    except (ImportError, AttributeError):
        return {}


def count_flops(fn: Callable[[], Any]) -> Tuple[int, Any]:
    """(FLOPs of ``fn()`` as ``FlopCounterMode`` counts them, its output)."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False, custom_mapping=_custom_flops())
    with counter:
        out = fn()
    return counter.get_total_flops(), out


def num_params(module: Optional[nn.Module]) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


@torch.no_grad()
def detector_flops(model: nn.Module, img: torch.Tensor) -> Dict[str, Dict[str, int]]:
    """FLOPs and parameters of each module group of ``model`` (:data:`GROUPS`, plus ``total``)
    on the batch ``img``: the whole network of ``simple_test`` up to post-processing,
    including SOLOv2's mask-feature head. Post-processing (its dynamic mask convolution over
    the candidates, Matrix NMS) depends on the weights and is not counted."""
    model.eval()
    flops: Dict[str, int] = {}
    flops['backbone'], feats = count_flops(lambda: model.backbone(img))
    neck = getattr(model, 'neck', None)
    if neck is not None:
        flops['neck'], feats = count_flops(lambda: neck(feats))
    mask_feats = None
    mfh = getattr(model, 'mask_feat_head', None)
    if mfh is not None:
        flops['mask_feat_head'], mask_feats = count_flops(
            lambda: mfh(feats[mfh.start_level:mfh.end_level + 1]))
    flops['bbox_head'], _ = count_flops(lambda: model.bbox_head(feats, mask_feats))
    report = {g: dict(flops=flops[g], params=num_params(getattr(model, g, None)))
              for g in GROUPS if g in flops}
    report['total'] = dict(flops=sum(flops.values()), params=num_params(model))
    return report


__all__ = ['GROUPS', 'STAGES', 'input_shape', 'synchronize', 'timed', 'paste_timer', 'time_stages',
           'count_flops', 'num_params', 'detector_flops']
