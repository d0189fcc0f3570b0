"""SOLO v1 head (Wang et al., "SOLO: Segmenting Objects by Locations", 2020).

Every grid cell of every level predicts one full mask (``S²`` mask channels per level) and a
category score. Module and parameter names follow the original release so that its
checkpoints load unchanged (``ins_convs``, ``cate_convs``, ``solo_ins_list``, ``solo_cate``).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import HEADS, LOSSES
from ...structures import InstanceResult
from ..layers import ConvModule
from ..losses import dice_loss
from .postprocess import cfg_get, segm_postprocess, select_candidates
from .targets import assign_grid_cells, rescale_masks
from .utils import (bias_init_with_prob, coord_features, flatten_cate_preds, loss_normalizer,
                    level_strides_per_cell, points_nms, split_feats)

DEFAULT_NORM_CFG = dict(type='GN', num_groups=32, requires_grad=True)


def normal_init(module: nn.Module, std: float = 0.01, bias: float = 0.0) -> None:
    """Weight ~ N(0, std), bias = ``bias`` (mmcv's ``normal_init``)."""
    nn.init.normal_(module.weight, 0.0, std)
    if getattr(module, 'bias', None) is not None:
        nn.init.constant_(module.bias, bias)


@HEADS.register_module()
class SOLOHead(nn.Module):
    """SOLO v1 head.

    Args follow the original config (``num_classes`` here counts object classes only, 80 for
    COCO; the original's 81 included background):
        in_channels: FPN channels (256).
        seg_feat_channels: channels of the mask and category towers (256).
        stacked_convs: convs per tower (7).
        strides: per-level stride used for the mask-size filter and the mask-target
            resolution (``stride / 2``): (8, 8, 16, 32, 32).
        base_edge_list: unused by the original (kept for config compatibility).
        scale_ranges: per-level ``(lower, upper)`` of ``sqrt(w * h)``, both inclusive.
        sigma: centre-region scale (0.2 in the configs).
        num_grids: grid sizes S per level (40, 36, 24, 16, 12).
        cate_down_pos: index of the category-tower conv before which the features are
            resized to S x S (0).
        with_deform: unused by the original; must stay False.
        loss_ins: dice-loss config; as in the original only ``loss_weight`` matters.
        loss_cate: focal-loss config.
        conv_cfg: conv config of the tower convs (None = plain conv, as the original).
        norm_cfg: norm of the tower convs; None means GN(32), which the original hard-codes.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 seg_feat_channels: int = 256,
                 stacked_convs: int = 4,
                 strides: Sequence[int] = (4, 8, 16, 32, 64),
                 base_edge_list: Sequence[int] = (16, 32, 64, 128, 256),
                 scale_ranges: Sequence[Sequence[float]] = ((8, 32), (16, 64), (32, 128),
                                                             (64, 256), (128, 512)),
                 sigma: float = 0.4,
                 num_grids: Optional[Sequence[int]] = None,
                 cate_down_pos: int = 0,
                 with_deform: bool = False,
                 loss_ins: Optional[dict] = None,
                 loss_cate: Optional[dict] = None,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        name = type(self).__name__
        if num_grids is None:
            raise ValueError(f'{name}: num_grids is required (e.g. [40, 36, 24, 16, 12])')
        if not (len(num_grids) == len(strides) == len(scale_ranges)):
            raise ValueError(f'{name}: num_grids ({len(num_grids)}), strides ({len(strides)}) and '
                             f'scale_ranges ({len(scale_ranges)}) must have one entry per level')
        if len(num_grids) != 5:
            raise ValueError(f'{name}: the SOLO heads use exactly 5 FPN levels, got {len(num_grids)}')
        if with_deform:
            raise NotImplementedError(f'{name}: with_deform=True is not implemented (the original '
                                      'ignores it); use DecoupledSOLOLightHead(use_dcn_in_tower=True)')
        if loss_ins is None or loss_cate is None:
            raise ValueError(f'{name}: loss_ins and loss_cate configs are required')
        self.num_classes = num_classes
        self.cate_out_channels = num_classes
        self.seg_num_grids = list(num_grids)
        self.in_channels = in_channels
        self.seg_feat_channels = seg_feat_channels
        self.stacked_convs = stacked_convs
        self.strides = list(strides)
        self.sigma = sigma
        self.cate_down_pos = cate_down_pos
        self.base_edge_list = base_edge_list
        self.scale_ranges = [tuple(r) for r in scale_ranges]
        self.with_deform = with_deform
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.loss_cate = LOSSES.build(loss_cate)
        # the original reads only loss_weight from loss_ins and always uses the dice loss
        self.loss_ins = LOSSES.build(dict(type='DiceLoss', loss_weight=loss_ins['loss_weight']))
        self.ins_loss_weight = float(loss_ins['loss_weight'])
        self._init_layers()

    # ------------------------------------------------------------------ layers
    def _tower_conv(self, in_ch: int, conv_cfg: Optional[dict] = None) -> ConvModule:
        norm_cfg = self.norm_cfg if self.norm_cfg is not None else DEFAULT_NORM_CFG
        return ConvModule(in_ch, self.seg_feat_channels, 3, stride=1, padding=1,
                          conv_cfg=conv_cfg, norm_cfg=norm_cfg, bias=norm_cfg is None)

    def _init_layers(self) -> None:
        self.ins_convs = nn.ModuleList()
        self.cate_convs = nn.ModuleList()
        for i in range(self.stacked_convs):
            chn = self.in_channels + 2 if i == 0 else self.seg_feat_channels
            self.ins_convs.append(self._tower_conv(chn, self.conv_cfg))
            chn = self.in_channels if i == 0 else self.seg_feat_channels
            self.cate_convs.append(self._tower_conv(chn, self.conv_cfg))
        self.solo_ins_list = nn.ModuleList(
            nn.Conv2d(self.seg_feat_channels, s ** 2, 1) for s in self.seg_num_grids)
        self.solo_cate = nn.Conv2d(self.seg_feat_channels, self.cate_out_channels, 3, padding=1)

    def init_weights(self) -> None:
        """Tower convs N(0, 0.01); mask and category outputs N(0, 0.01) with prior-0.01 bias."""
        for m in list(self.ins_convs) + list(self.cate_convs):
            normal_init(m.conv, std=0.01)
        prior_bias = bias_init_with_prob(0.01)
        for m in self.solo_ins_list:
            normal_init(m, std=0.01, bias=prior_bias)
        normal_init(self.solo_cate, std=0.01, bias=prior_bias)

    # ----------------------------------------------------------------- forward
    def _cate_branch(self, x: torch.Tensor, idx: int) -> torch.Tensor:
        """(B, C_in, h, w) → (B, num_classes, S, S) category logits of level ``idx``."""
        cate_feat = x
        for i, cate_layer in enumerate(self.cate_convs):
            if i == self.cate_down_pos:
                cate_feat = F.interpolate(cate_feat, size=self.seg_num_grids[idx], mode='bilinear')
            cate_feat = cate_layer(cate_feat)
        return self._cate_out_conv()(cate_feat)

    def _cate_out_conv(self) -> nn.Conv2d:
        """The final category conv (named differently in the decoupled heads)."""
        return self.solo_cate

    def forward_single(self, x: torch.Tensor, idx: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """One level: (B, C_in, h, w) → mask logits (B, S², 2h, 2w), category logits (B, C, S, S)."""
        ins_feat = torch.cat([x, coord_features(x)], 1)
        for ins_layer in self.ins_convs:
            ins_feat = ins_layer(ins_feat)
        ins_feat = F.interpolate(ins_feat, scale_factor=2, mode='bilinear')
        ins_pred = self.solo_ins_list[idx](ins_feat)
        return ins_pred, self._cate_branch(x, idx)

    def forward(self, feats: Sequence[torch.Tensor]
                ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Five FPN maps (P2..P6) → (ins_preds, cate_preds), raw logits per level.

        ins_preds[l]: (B, S_l², H_l, W_l) with (H_l, W_l) = (H_pad, W_pad) / (stride_l / 2)
        (for the configs: 1/4, 1/4, 1/8, 1/16, 1/16 of the padded input);
        cate_preds[l]: (B, num_classes, S_l, S_l).
        """
        self._check_feats(feats)
        ins_preds, cate_preds = [], []
        for idx, x in enumerate(split_feats(feats)):
            ins_pred, cate_pred = self.forward_single(x, idx)
            ins_preds.append(ins_pred)
            cate_preds.append(cate_pred)
        return ins_preds, cate_preds

    def _check_feats(self, feats: Sequence[torch.Tensor]) -> None:
        if len(feats) != len(self.seg_num_grids):
            raise ValueError(f'{type(self).__name__}: expected {len(self.seg_num_grids)} feature '
                             f'maps (P2..P6), got {len(feats)}')

    # ----------------------------------------------------------------- targets
    @torch.no_grad()
    def get_targets(self,
                    gt_bboxes: Sequence[torch.Tensor],
                    gt_labels: Sequence[torch.Tensor],
                    gt_masks: Sequence,
                    featmap_sizes: Sequence[Sequence[int]],
                    device: Optional[torch.device] = None
                    ) -> Tuple[List[torch.Tensor], List[torch.Tensor], List[torch.Tensor]]:
        """Grid targets of a batch, as the original ``solo_target_single``.

        Args:
            gt_bboxes: per image (K, 4) boxes in input pixels.
            gt_labels: per image (K,) 0-based labels.
            gt_masks: per image (K, H_pad, W_pad) 0/1 masks (numpy or tensor).
            featmap_sizes: per level (H_l, W_l) of the mask predictions; level 0 × 4 is the
                padded input size the original maps centres to cells with.

        Returns:
            cate_targets: per level (B, S, S) int64, background = ``num_classes``.
            pos_masks: per level (B, S²) bool, the positive cells (later instance wins).
            mask_targets: per level (P_l, H_l, W_l) uint8, one per positive cell, image-major
                then ascending cell index (the order of ``pos_masks[l].nonzero()``).
        """
        if not (len(gt_bboxes) == len(gt_labels) == len(gt_masks)):
            raise ValueError(f'{type(self).__name__}.get_targets: gt_bboxes ({len(gt_bboxes)}), '
                             f'gt_labels ({len(gt_labels)}) and gt_masks ({len(gt_masks)}) must '
                             'have one entry per image')
        featmap_sizes = [(int(s[0]), int(s[1])) for s in featmap_sizes]
        if device is None:
            device = gt_bboxes[0].device if len(gt_bboxes) else torch.device('cpu')
        input_size = (featmap_sizes[0][0] * 4, featmap_sizes[0][1] * 4)
        num_levels = len(self.seg_num_grids)
        cate_targets = [[] for _ in range(num_levels)]
        pos_masks = [[] for _ in range(num_levels)]
        mask_targets = [[] for _ in range(num_levels)]
        for bboxes, labels, masks in zip(gt_bboxes, gt_labels, gt_masks):
            masks_t = torch.as_tensor(masks)
            if masks_t.dim() != 3 or len(masks_t) != len(bboxes) or len(labels) != len(bboxes):
                raise ValueError(f'{type(self).__name__}.get_targets: an image has '
                                 f'{len(bboxes)} boxes, {len(labels)} labels and masks of shape '
                                 f'{tuple(masks_t.shape)}; expected (K, 4), (K,), (K, H, W)')
            bboxes = torch.as_tensor(bboxes).float().to(device)
            labels = torch.as_tensor(labels).long().to(device)
            levels = assign_grid_cells(bboxes, masks_t.to(device), self.scale_ranges,
                                       self.seg_num_grids, self.sigma, input_size)
            for lvl, (assign, stride, size) in enumerate(zip(levels, self.strides, featmap_sizes)):
                owner = assign.cell_owner()
                pos = owner >= 0
                cate_targets[lvl].append(assign.cate_target(labels, self.num_classes))
                pos_masks[lvl].append(pos)
                owner_inst = assign.inst_inds[owner[pos]]
                if len(owner_inst) == 0:
                    mask_targets[lvl].append(torch.zeros((0, *size), dtype=torch.uint8, device=device))
                    continue
                # rescale only the masks that own a cell, then repeat them per cell
                uniq, inverse = torch.unique(owner_inst, return_inverse=True)
                src = masks_t[uniq.cpu()] if isinstance(masks, torch.Tensor) \
                    else np.asarray(masks)[uniq.cpu().numpy()]
                scaled = torch.from_numpy(rescale_masks(src, 1. / (stride / 2), size)).to(device)
                mask_targets[lvl].append(scaled[inverse])
        return ([torch.stack(t) for t in cate_targets], [torch.stack(p) for p in pos_masks],
                [torch.cat(m) for m in mask_targets])

    # -------------------------------------------------------------------- loss
    def _cate_loss(self, cate_preds: Sequence[torch.Tensor], cate_targets: Sequence[torch.Tensor],
                   num_pos: int, sync: bool = True) -> torch.Tensor:
        """Focal loss over all cells of all levels and images, normalised by ``num_pos + 1``
        (summed over ranks in a distributed run, see ``loss_normalizer``)."""
        flat_preds = torch.cat([p.permute(0, 2, 3, 1).reshape(-1, self.cate_out_channels)
                                for p in cate_preds])
        flat_labels = torch.cat([t.flatten() for t in cate_targets])
        avg = loss_normalizer(num_pos, 1, sync, flat_preds.device)
        return self.loss_cate(flat_preds, flat_labels, avg_factor=avg)

    def _dice_loss(self, mask_probs: Sequence[torch.Tensor], mask_targets: Sequence[torch.Tensor],
                   connect_to: Sequence[torch.Tensor], sync: bool = True) -> torch.Tensor:
        """Mean dice loss over the targets of all levels × loss weight (level sizes differ).

        ``0 * sum(connect_to)`` keeps every level's mask branch in the graph even when that
        level (or the whole batch) has no positive cell, so DDP sees the same parameters used
        on every rank."""
        zero = sum(p.sum() for p in connect_to) * 0.0
        per_target = [dice_loss(p.float(), t, self.loss_ins.eps)
                      for p, t in zip(mask_probs, mask_targets) if len(p)]
        num = loss_normalizer(sum(len(t) for t in per_target), sync=sync, device=zero.device)
        if num == 0:  # no positive cell anywhere
            return zero
        return torch.cat(per_target).sum() / num * self.ins_loss_weight + zero

    def loss(self,
             ins_preds: Sequence[torch.Tensor],
             cate_preds: Sequence[torch.Tensor],
             gt_bboxes: Sequence[torch.Tensor],
             gt_labels: Sequence[torch.Tensor],
             gt_masks: Sequence,
             img_metas: Sequence[dict],
             cfg=None,
             gt_bboxes_ignore=None) -> Dict[str, torch.Tensor]:
        """Dice loss on the positive cells' masks and focal loss on all category cells."""
        featmap_sizes = [p.shape[-2:] for p in ins_preds]
        cate_targets, pos_masks, mask_targets = self.get_targets(
            gt_bboxes, gt_labels, gt_masks, featmap_sizes, device=ins_preds[0].device)
        mask_probs = [p.flatten(0, 1)[pos.flatten()].sigmoid()
                      for p, pos in zip(ins_preds, pos_masks)]
        num_pos = int(sum(int(p.sum()) for p in pos_masks))
        sync = cfg_get(cfg, 'sync_normalizer', True)
        return dict(loss_ins=self._dice_loss(mask_probs, mask_targets, ins_preds, sync),
                    loss_cate=self._cate_loss(cate_preds, cate_targets, num_pos, sync))

    # --------------------------------------------------------------- inference
    def _level_of_cells(self, cells: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Flat cell indices over all levels → (level, cell index within the level)."""
        sizes = torch.tensor([s * s for s in self.seg_num_grids], device=cells.device)
        ends = sizes.cumsum(0)
        level = torch.searchsorted(ends, cells, right=True)
        return level, cells - (ends - sizes)[level]

    def _candidate_masks(self, ins_preds: Sequence[torch.Tensor], img_id: int, cells: torch.Tensor,
                         out_size: Tuple[int, int]) -> torch.Tensor:
        """(K, H_pad/4, W_pad/4) soft masks of the candidate cells: sigmoid, then bilinear
        resizing of only those channels (bit-identical to resizing all of them)."""
        level, local = self._level_of_cells(cells)
        dtype = ins_preds[0].dtype
        masks = ins_preds[0].new_empty((len(cells), *out_size), dtype=dtype)
        for lvl, pred in enumerate(ins_preds):
            sel = (level == lvl).nonzero().flatten()
            if len(sel) == 0:
                continue
            uniq, inverse = torch.unique(local[sel], return_inverse=True)
            probs = pred[img_id, uniq].sigmoid()[None]
            masks[sel] = F.interpolate(probs, size=out_size, mode='bilinear')[0][inverse]
        return masks

    def _cate_scores(self, cate_preds: Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, sum S², C) category scores after sigmoid and 2×2 point NMS."""
        return flatten_cate_preds([points_nms(p.sigmoid(), kernel=2) for p in cate_preds])

    def get_seg(self,
                ins_preds: Sequence[torch.Tensor],
                cate_preds: Sequence[torch.Tensor],
                img_metas: Sequence[dict],
                cfg,
                rescale: bool = True,
                encode_masks: bool = False) -> List[InstanceResult]:
        """Detections of every image (the original ``get_seg`` with ``eval=True`` outputs)."""
        out_size = tuple(ins_preds[0].shape[-2:])
        all_scores = self._cate_scores([p.detach() for p in cate_preds])
        strides = level_strides_per_cell(self.seg_num_grids, self.strides, all_scores.device)
        results = []
        for img_id, meta in enumerate(img_metas):
            cells, labels, scores = select_candidates(all_scores[img_id], cfg_get(cfg, 'score_thr', 0.1))
            uniq, inverse = torch.unique(cells, return_inverse=True)
            masks = self._candidate_masks([p.detach() for p in ins_preds], img_id, uniq, out_size)
            results.append(segm_postprocess(masks, labels, scores, strides[cells],
                                            meta['img_shape'], meta['ori_shape'], cfg, rescale,
                                            mask_inds=inverse, encode=encode_masks))
        return results

