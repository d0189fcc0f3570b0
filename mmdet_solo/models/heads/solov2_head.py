"""SOLOv2 head: category branch + dynamic-kernel branch (Wang et al. 2020)."""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import HEADS
from .base_head import BaseGridHead
from .postprocess import KernelSoftMasks
from .targets import LevelAssignment, rescale_masks
from .utils import batched_take, coord_features, flatten_cate_preds


class SOLOv2Outputs(NamedTuple):
    """Raw outputs of :class:`SOLOv2Head`: per level category logits and kernels, and the
    unified mask feature of the detector's ``MaskFeatHead``."""

    cate_preds: List[torch.Tensor]     # (B, num_classes, S, S)
    kernel_preds: List[torch.Tensor]   # (B, E, S, S)
    mask_feats: torch.Tensor           # (B, E, H_pad / 4, W_pad / 4)


@HEADS.register_module()
class SOLOv2Head(BaseGridHead):
    """Predicts, per grid cell of each level, C category logits and an E-channel 1x1 kernel
    (``ins_out_channels``) that is convolved with the unified mask feature to give the mask.

    Arguments as :class:`BaseGridHead`; here ``use_dcn_in_tower`` makes every tower conv
    deformable (:class:`SOLOv2LightHead`: the last one only). Module names follow the original
    release (``kernel_convs``, ``cate_convs``, ``solo_cate``, ``solo_kernel``).
    """

    dcn_on_last_conv_only = False
    uses_mask_feats = True

    def __init__(self, num_classes: int, in_channels: int, *, ins_out_channels: int = 64,
                 **kwargs) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        self.ins_out_channels = ins_out_channels
        self.kernel_convs = self._tower(in_channels + 2)
        self.cate_convs = self._tower(in_channels)
        self.solo_cate = nn.Conv2d(self.seg_feat_channels, num_classes, 3, padding=1)
        self.solo_kernel = nn.Conv2d(self.seg_feat_channels, ins_out_channels, 3, padding=1)

    def init_weights(self) -> None:
        """Tower convs N(0, 0.01); category output with prior-0.01 bias, kernel output zero bias."""
        self._init_convs([self.cate_convs, self.kernel_convs], [self.solo_cate, self.solo_kernel],
                         zero_bias=[self.solo_kernel])

    # ------------------------------------------------------------------ forward
    def forward(self, feats: Sequence[torch.Tensor],
                mask_feats: Optional[torch.Tensor] = None) -> SOLOv2Outputs:
        """Five FPN maps (P2..P6) and the mask-feature head's (B, E, H/4, W/4) output →
        per level category logits (B, C, S, S) and kernels (B, E, S, S), plus ``mask_feats``."""
        cate_preds, kernel_preds = [], []
        for x, num_grid in zip(self._split_feats(feats, mask_feats), self.seg_num_grids):
            kernel_feat = torch.cat([x, coord_features(x)], 1)
            kernel_feat = F.interpolate(kernel_feat, size=num_grid, mode='bilinear')
            cate_feat = kernel_feat[:, :-2].contiguous()
            kernel_preds.append(self.solo_kernel(self.kernel_convs(kernel_feat)))
            cate_preds.append(self.solo_cate(self.cate_convs(cate_feat)))
        return SOLOv2Outputs(cate_preds, kernel_preds, mask_feats)

    # ------------------------------------------------------------------ training
    @torch.no_grad()
    def _mask_targets(self, assigns: List[List[LevelAssignment]], gt_masks: Sequence,
                      size: Tuple[int, int]) -> List[torch.Tensor]:
        """Per image the (P, h, w) uint8 mask target at 1/4 of the input of every positive
        (instance, cell) pair, levels in order (a cell claimed twice has two)."""
        targets = []
        for levels, masks in zip(assigns, gt_masks):
            inst = torch.cat([lvl.inst_inds for lvl in levels])
            scaled = torch.from_numpy(rescale_masks(torch.as_tensor(masks), 1. / 4, size))
            targets.append(scaled.to(inst.device)[inst])
        return targets

    def _mask_loss_inputs(self, outputs: SOLOv2Outputs, assigns: List[List[LevelAssignment]],
                          gt_masks: Sequence) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """The masks of all positive (instance, cell) pairs, image-major, and their targets."""
        _, e, h, w = outputs.mask_feats.shape
        preds = []
        for i, levels in enumerate(assigns):
            kernels = torch.cat([kp[i].flatten(1)[:, lvl.cells].t()
                                 for kp, lvl in zip(outputs.kernel_preds, levels)])   # (P, E)
            preds.append((kernels @ outputs.mask_feats[i].reshape(e, h * w)).view(-1, h, w))
        return ([torch.cat(preds).sigmoid()],
                [torch.cat(self._mask_targets(assigns, gt_masks, (h, w)))])

    # ------------------------------------------------------------------ inference
    def _mask_size(self, outputs: SOLOv2Outputs) -> Tuple[int, int]:
        return tuple(outputs.mask_feats.shape[-2:])

    def _candidate_masks(self, outputs: SOLOv2Outputs, img_id: int,
                         cells: torch.Tensor) -> torch.Tensor:
        """The cells' kernels convolved with the image's mask feature, sigmoid."""
        masks = self._candidate_soft_masks(outputs, img_id, cells)
        return masks.take(torch.arange(masks.num, device=cells.device))

    def _candidate_soft_masks(self, outputs: SOLOv2Outputs, img_id: int,
                              cells: torch.Tensor) -> KernelSoftMasks:
        """The same masks, made a few at a time as post-processing reads them."""
        kernels = flatten_cate_preds([k[img_id:img_id + 1] for k in outputs.kernel_preds])[0]
        return KernelSoftMasks(kernels[cells], outputs.mask_feats[img_id])

    def _candidate_masks_static(self, outputs: SOLOv2Outputs, cells: torch.Tensor) -> torch.Tensor:
        """(B, K) cells → (B, K, h, w) soft masks, batched (the exported graph's version of
        ``_candidate_masks``, see ``mmdet_solo.deploy.graph``)."""
        b, _, h, w = outputs.mask_feats.shape
        kernels = batched_take(flatten_cate_preds(outputs.kernel_preds), cells)   # (B, K, E)
        return (kernels @ outputs.mask_feats.flatten(2)).reshape(b, -1, h, w).sigmoid()


@HEADS.register_module()
class SOLOv2LightHead(SOLOv2Head):
    """SOLOv2 head of the original light-512-DCN model: DCN only in the last tower conv."""

    dcn_on_last_conv_only = True
