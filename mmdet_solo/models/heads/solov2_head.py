"""SOLOv2 head: category branch + dynamic-kernel branch (Wang et al. 2020)."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import HEADS, LOSSES
from ...structures import InstanceResult
from ..layers import ConvModule, resolve_conv_bias
from .postprocess import cfg_get, segm_postprocess, select_candidates
from .targets import assign_grid_cells, rescale_masks
from .utils import (bias_init_with_prob, coord_features, flatten_cate_preds, level_strides_per_cell,
                    loss_normalizer, points_nms, split_feats)

_DEFAULT_SCALE_RANGES = ((8, 32), (16, 64), (32, 128), (64, 256), (128, 512))


@HEADS.register_module()
class SOLOv2Head(nn.Module):
    """Predicts, per grid cell of each level, C category logits and an E-channel 1x1 kernel
    that is convolved with the unified mask feature (``MaskFeatHead``) to give the mask.

    Args follow the original release; ``num_classes`` counts object classes only.
    ``use_dcn_in_tower`` with ``type_dcn`` ('DCN' or 'DCNv2') makes the tower convs deformable.
    ``conv_bias`` is the tower convs' bias: ``'auto'`` (mmcv's rule: none, as a norm follows;
    the original), ``True``/``False``, or ``'dcn'`` (deformable convs only, as PaddleDetection).
    """

    dcn_on_last_conv_only = False

    def __init__(self, num_classes: int, in_channels: int, seg_feat_channels: int = 256,
                 stacked_convs: int = 4, strides: Sequence[int] = (4, 8, 16, 32, 64),
                 base_edge_list: Sequence[int] = (16, 32, 64, 128, 256),
                 scale_ranges: Sequence[Sequence[float]] = _DEFAULT_SCALE_RANGES,
                 sigma: float = 0.2, num_grids: Optional[Sequence[int]] = None,
                 ins_out_channels: int = 64, loss_ins: Optional[dict] = None,
                 loss_cate: Optional[dict] = None, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, use_dcn_in_tower: bool = False,
                 type_dcn: Optional[str] = None, conv_bias: Union[str, bool] = 'auto'):
        super().__init__()
        resolve_conv_bias(conv_bias, None, type(self).__name__)  # validate even without convs
        if num_grids is None or len(num_grids) != len(strides) or len(scale_ranges) != len(strides):
            raise ValueError(f'{type(self).__name__}: num_grids {num_grids}, strides {strides} and '
                             f'scale_ranges {scale_ranges} must have one entry per level')
        self.num_classes = num_classes
        self.cate_out_channels = num_classes
        self.in_channels = in_channels
        self.seg_feat_channels = seg_feat_channels
        self.stacked_convs = stacked_convs
        self.strides = list(strides)
        self.base_edge_list = base_edge_list
        self.scale_ranges = [tuple(r) for r in scale_ranges]
        self.sigma = sigma
        self.seg_num_grids = list(num_grids)
        self.ins_out_channels = ins_out_channels
        self.kernel_out_channels = ins_out_channels
        self.loss_ins = LOSSES.build(loss_ins or dict(type='DiceLoss', loss_weight=3.0))
        self.loss_cate = LOSSES.build(loss_cate or dict(type='FocalLoss', gamma=2.0, alpha=0.25))
        # the original hard-codes GN(32) in the towers; a given norm_cfg is honoured
        tower_norm = norm_cfg or dict(type='GN', num_groups=32, requires_grad=True)
        self.kernel_convs = nn.ModuleList()
        self.cate_convs = nn.ModuleList()
        for i in range(stacked_convs):
            dcn = use_dcn_in_tower and (not self.dcn_on_last_conv_only or i == stacked_convs - 1)
            cfg_conv = dict(type=type_dcn) if dcn else conv_cfg
            bias = resolve_conv_bias(conv_bias, cfg_conv, type(self).__name__)
            for tower, cin in ((self.kernel_convs, in_channels + 2), (self.cate_convs, in_channels)):
                tower.append(ConvModule(cin if i == 0 else seg_feat_channels, seg_feat_channels, 3,
                                        padding=1, conv_cfg=cfg_conv, norm_cfg=tower_norm,
                                        bias=bias))
        self.solo_cate = nn.Conv2d(seg_feat_channels, self.cate_out_channels, 3, padding=1)
        self.solo_kernel = nn.Conv2d(seg_feat_channels, self.kernel_out_channels, 3, padding=1)

    def init_weights(self) -> None:
        for m in list(self.cate_convs) + list(self.kernel_convs):
            nn.init.normal_(m.conv.weight, std=0.01)   # plain or deformable, as the original
            if m.conv.bias is not None:
                nn.init.zeros_(m.conv.bias)
        nn.init.normal_(self.solo_cate.weight, std=0.01)
        nn.init.constant_(self.solo_cate.bias, bias_init_with_prob(0.01))
        nn.init.normal_(self.solo_kernel.weight, std=0.01)
        nn.init.zeros_(self.solo_kernel.bias)

    # ------------------------------------------------------------------ forward
    def forward(self, feats: Sequence[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Returns per level: category logits (B, C, S, S) and kernels (B, E, S, S)."""
        cate_preds, kernel_preds = [], []
        for x, num_grid in zip(split_feats(feats), self.seg_num_grids):
            kernel_feat = torch.cat([x, coord_features(x)], 1)
            kernel_feat = F.interpolate(kernel_feat, size=num_grid, mode='bilinear')
            cate_feat = kernel_feat[:, :-2].contiguous()
            for conv in self.kernel_convs:
                kernel_feat = conv(kernel_feat)
            for conv in self.cate_convs:
                cate_feat = conv(cate_feat)
            kernel_preds.append(self.solo_kernel(kernel_feat))
            cate_preds.append(self.solo_cate(cate_feat))
        return cate_preds, kernel_preds

    # ------------------------------------------------------------------ training
    @torch.no_grad()
    def get_targets(self, gt_bboxes: torch.Tensor, gt_labels: torch.Tensor, gt_masks,
                    mask_feat_size: Tuple[int, int]):
        """Targets of one image: per level ``LevelAssignment`` and (S, S) category grid, plus
        the (K, h, w) uint8 mask targets at 1/4 resolution (indexed by ``inst_inds``)."""
        h, w = mask_feat_size
        masks_t = torch.as_tensor(gt_masks)
        levels = assign_grid_cells(gt_bboxes, masks_t, self.scale_ranges, self.seg_num_grids,
                                   self.sigma, (h * 4, w * 4))
        cate_targets = [lvl.cate_target(gt_labels, self.num_classes) for lvl in levels]
        mask_targets = torch.from_numpy(rescale_masks(masks_t, 1. / 4, (h, w)))
        return levels, cate_targets, mask_targets.to(gt_bboxes.device)

    def loss(self, cate_preds: List[torch.Tensor], kernel_preds: List[torch.Tensor],
             mask_feats: torch.Tensor, gt_bboxes: List[torch.Tensor], gt_labels: List[torch.Tensor],
             gt_masks: list, img_metas: list, cfg=None) -> dict:
        """Dice loss on the masks of all positive (instance, cell) pairs; focal loss on all cells."""
        b, e, h, w = mask_feats.shape
        mask_preds, mask_targets, cate_targets = [], [], [[] for _ in cate_preds]
        num_pos = 0
        for i in range(b):
            levels, cates, masks = self.get_targets(gt_bboxes[i], gt_labels[i], gt_masks[i], (h, w))
            kernels = torch.cat([kp[i].flatten(1)[:, lvl.cells].t()
                                 for kp, lvl in zip(kernel_preds, levels)])          # (P, E)
            inst = torch.cat([lvl.inst_inds for lvl in levels])
            mask_preds.append((kernels @ mask_feats[i].reshape(e, h * w)).view(-1, h, w))
            mask_targets.append(masks[inst.to(masks.device)])
            for lvl_targets, cate in zip(cate_targets, cates):
                lvl_targets.append(cate.flatten())
                num_pos += int((cate != self.num_classes).sum())
        sync = cfg_get(cfg, 'sync_normalizer', True)
        mask_preds = torch.cat(mask_preds)
        device = mask_preds.device
        loss_ins = self.loss_ins(mask_preds.sigmoid(), torch.cat(mask_targets),
                                 avg_factor=loss_normalizer(len(mask_preds), sync=sync, device=device))
        flat_labels = torch.cat([torch.cat(t) for t in cate_targets])
        flat_preds = torch.cat([p.permute(0, 2, 3, 1).reshape(-1, self.cate_out_channels)
                                for p in cate_preds])
        loss_cate = self.loss_cate(flat_preds, flat_labels,
                                   avg_factor=loss_normalizer(num_pos, 1, sync, device))
        return dict(loss_ins=loss_ins, loss_cate=loss_cate)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def get_seg(self, cate_preds: List[torch.Tensor], kernel_preds: List[torch.Tensor],
                mask_feats: torch.Tensor, img_metas: list, cfg, rescale: bool = True,
                encode_masks: bool = False) -> List[InstanceResult]:
        """One ``InstanceResult`` per image from the raw head outputs (an
        ``EncodedInstanceResult`` with RLE masks if ``encode_masks``)."""
        cate_scores = flatten_cate_preds([points_nms(p.sigmoid()) for p in cate_preds])
        kernels = flatten_cate_preds(kernel_preds)                      # (B, cells, E)
        strides = level_strides_per_cell(self.seg_num_grids, self.strides, mask_feats.device)
        h, w = mask_feats.shape[-2:]
        score_thr = cfg_get(cfg, 'score_thr', 0.1)
        results = []
        for i, meta in enumerate(img_metas):
            cells, labels, scores = select_candidates(cate_scores[i], score_thr)
            # one mask per distinct cell: a cell's mask does not depend on the class
            uniq, inverse = torch.unique(cells, return_inverse=True)
            seg_preds = (kernels[i][uniq] @ mask_feats[i].flatten(1)).view(-1, h, w).sigmoid()
            results.append(segm_postprocess(seg_preds, labels, scores, strides[cells],
                                            meta['img_shape'], meta['ori_shape'], cfg, rescale,
                                            mask_inds=inverse, encode=encode_masks))
        return results


@HEADS.register_module()
class SOLOv2LightHead(SOLOv2Head):
    """SOLOv2 head of the original light-512-DCN model: DCN only in the last tower conv."""

    dcn_on_last_conv_only = True
