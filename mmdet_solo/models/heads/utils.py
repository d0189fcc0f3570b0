"""Small functions shared by the SOLO-family heads."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


def _linspace(n: int, like: torch.Tensor) -> torch.Tensor:
    """``linspace(-1, 1, n)``. While exporting (ONNX), ``-1 + i * 2 / (n - 1)`` instead: an
    exported ``linspace`` would fix ``n`` to the export size; the two differ by ~1 ulp."""
    if torch.compiler.is_exporting():
        idx = torch.arange(n, device=like.device, dtype=like.dtype)
        return idx * (2.0 / max(n - 1, 1)) - 1.0
    return torch.linspace(-1, 1, n, device=like.device, dtype=like.dtype)


def coord_features(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) CoordConv channels: x then y, each ``linspace(-1, 1)`` over the map."""
    b, _, h, w = x.shape
    xs = _linspace(w, x)
    ys = _linspace(h, x)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([grid_x, grid_y]).unsqueeze(0).expand(b, -1, -1, -1)


def points_nms(heat: torch.Tensor, kernel: int = 2) -> torch.Tensor:
    """Keep a cell of (B, C, S, S) score maps only where it is the max of its 2x2 window."""
    if kernel != 2:
        raise ValueError(f'points_nms: only kernel=2 is defined (as in the original), got {kernel}')
    hmax = F.max_pool2d(heat, (kernel, kernel), stride=1, padding=1)
    keep = (hmax[:, :, :-1, :-1] == heat).to(heat.dtype)
    return heat * keep


def split_feats(feats: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
    """The five FPN levels as the heads see them: P2 halved, P6 resized to P5's size."""
    return (F.interpolate(feats[0], scale_factor=0.5, mode='bilinear'),
            feats[1], feats[2], feats[3],
            F.interpolate(feats[4], size=feats[3].shape[-2:], mode='bilinear'))


def normal_init(module: nn.Module, std: float = 0.01, bias: float = 0.0) -> None:
    """Weight ~ N(0, std), bias = ``bias`` (mmcv's ``normal_init``)."""
    nn.init.normal_(module.weight, 0.0, std)
    if getattr(module, 'bias', None) is not None:
        nn.init.constant_(module.bias, bias)


def bias_init_with_prob(prior_prob: float) -> float:
    """Bias whose sigmoid is ``prior_prob`` (``-log((1 - p) / p)``)."""
    return float(-torch.log(torch.tensor((1 - prior_prob) / prior_prob)))


def level_strides_per_cell(num_grids: Sequence[int], strides: Sequence[int],
                           device=None) -> torch.Tensor:
    """(sum S_l^2,) float32: the stride of the FPN level of every flattened grid cell."""
    return torch.cat([torch.full((s * s,), float(st), device=device)
                      for s, st in zip(num_grids, strides)])


def flatten_cate_preds(cate_preds: List[torch.Tensor]) -> torch.Tensor:
    """List of (B, C, S_l, S_l) maps → (B, sum S_l^2, C)."""
    return torch.cat([p.permute(0, 2, 3, 1).reshape(p.shape[0], -1, p.shape[1])
                      for p in cate_preds], dim=1)


def loss_normalizer(count: float, extra: float = 0.0, sync: bool = True, device=None) -> float:
    """``count + extra``, or with ``sync`` in a distributed run ``(sum of count over ranks +
    extra) / world_size``: the per-rank normaliser that makes DDP's gradient averaging equal to
    one process on the whole batch. (The original normalised per GPU; ``sync_normalizer=False``
    in ``train_cfg`` restores that.)"""
    if sync and torch.distributed.is_available() and torch.distributed.is_initialized():
        world = torch.distributed.get_world_size()
        if world > 1:
            t = torch.tensor([float(count)], dtype=torch.float64, device=device)
            torch.distributed.all_reduce(t)
            return (float(t.item()) + extra) / world
    return float(count) + extra


def batched_take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[i, index[i]]`` for every ``i``: (B, K, ...) and (B, N) → (B, N, ...), as one
    flat gather (smaller in ONNX than a GatherElements on an expanded index)."""
    b, k = x.shape[0], x.shape[1]
    offsets = torch.arange(b, device=x.device, dtype=index.dtype)[:, None] * k
    flat = x.reshape(b * k, *x.shape[2:])[(index + offsets).reshape(-1)]
    return flat.reshape(b, index.shape[1], *x.shape[2:])
