"""Decoupled SOLO head: the mask of cell (i, j) is ``sigmoid(x_j) * sigmoid(y_i)``.

Instead of ``S²`` mask channels per level it predicts ``S`` X-masks and ``S`` Y-masks from two
towers (the X tower sees the x coordinate channel, the Y tower the y channel). Names follow
the original release (``ins_convs_x/y``, ``dsolo_ins_list_x/y``, ``cate_convs``, ``dsolo_cate``).
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import HEADS
from ...structures import InstanceResult
from .postprocess import cfg_get, segm_postprocess, select_candidates
from .solo_head import SOLOHead, normal_init
from .utils import bias_init_with_prob, coord_features, level_strides_per_cell, split_feats


@HEADS.register_module()
class DecoupledSOLOHead(SOLOHead):
    """Decoupled SOLO head; constructor arguments as :class:`SOLOHead`."""

    def _init_layers(self) -> None:
        self.ins_convs_x = nn.ModuleList()
        self.ins_convs_y = nn.ModuleList()
        self.cate_convs = nn.ModuleList()
        for i in range(self.stacked_convs):
            chn = self.in_channels + 1 if i == 0 else self.seg_feat_channels
            self.ins_convs_x.append(self._tower_conv(chn, self.conv_cfg))
            self.ins_convs_y.append(self._tower_conv(chn, self.conv_cfg))
            chn = self.in_channels if i == 0 else self.seg_feat_channels
            self.cate_convs.append(self._tower_conv(chn, self.conv_cfg))
        self._init_output_layers()

    def _init_output_layers(self) -> None:
        """The per-level X/Y mask convs (3×3, S outputs) and the category conv."""
        self.dsolo_ins_list_x = nn.ModuleList(
            nn.Conv2d(self.seg_feat_channels, s, 3, padding=1) for s in self.seg_num_grids)
        self.dsolo_ins_list_y = nn.ModuleList(
            nn.Conv2d(self.seg_feat_channels, s, 3, padding=1) for s in self.seg_num_grids)
        self.dsolo_cate = nn.Conv2d(self.seg_feat_channels, self.cate_out_channels, 3, padding=1)

    def _cate_out_conv(self) -> nn.Conv2d:
        return self.dsolo_cate

    def _tower_modules(self) -> List[nn.Module]:
        return list(self.ins_convs_x) + list(self.ins_convs_y) + list(self.cate_convs)

    def init_weights(self) -> None:
        """Tower convs N(0, 0.01); X/Y mask and category outputs N(0, 0.01), prior-0.01 bias."""
        for m in self._tower_modules():
            normal_init(m.conv, std=0.01)
        prior_bias = bias_init_with_prob(0.01)
        for m in list(self.dsolo_ins_list_x) + list(self.dsolo_ins_list_y):
            normal_init(m, std=0.01, bias=prior_bias)
        normal_init(self.dsolo_cate, std=0.01, bias=prior_bias)

    # ----------------------------------------------------------------- forward
    def _ins_towers(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, C_in, h, w) → X and Y tower features (B, C, 2h, 2w)."""
        coords = coord_features(x)
        feat_x = torch.cat([x, coords[:, :1]], 1)
        feat_y = torch.cat([x, coords[:, 1:]], 1)
        for layer_x, layer_y in zip(self.ins_convs_x, self.ins_convs_y):
            feat_x = layer_x(feat_x)
            feat_y = layer_y(feat_y)
        return (F.interpolate(feat_x, scale_factor=2, mode='bilinear'),
                F.interpolate(feat_y, scale_factor=2, mode='bilinear'))

    def forward_single(self, x: torch.Tensor, idx: int
                       ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One level: (B, C_in, h, w) → X logits (B, S, 2h, 2w), Y logits (B, S, 2h, 2w),
        category logits (B, C, S, S)."""
        feat_x, feat_y = self._ins_towers(x)
        return (self.dsolo_ins_list_x[idx](feat_x), self.dsolo_ins_list_y[idx](feat_y),
                self._cate_branch(x, idx))

    def forward(self, feats: Sequence[torch.Tensor]
                ) -> Tuple[List[torch.Tensor], List[torch.Tensor], List[torch.Tensor]]:
        """Five FPN maps (P2..P6) → (ins_preds_x, ins_preds_y, cate_preds), raw logits.

        ins_preds_x[l], ins_preds_y[l]: (B, S_l, H_l, W_l), (H_l, W_l) = padded input /
        (stride_l / 2); cate_preds[l]: (B, num_classes, S_l, S_l).
        """
        self._check_feats(feats)
        outs = ([], [], [])
        for idx, x in enumerate(split_feats(feats)):
            for out, o in zip(outs, self.forward_single(x, idx)):
                out.append(o)
        return outs

    # -------------------------------------------------------------------- loss
    def loss(self,
             ins_preds_x: Sequence[torch.Tensor],
             ins_preds_y: Sequence[torch.Tensor],
             cate_preds: Sequence[torch.Tensor],
             gt_bboxes: Sequence[torch.Tensor],
             gt_labels: Sequence[torch.Tensor],
             gt_masks: Sequence,
             img_metas: Sequence[dict],
             cfg=None,
             gt_bboxes_ignore=None) -> Dict[str, torch.Tensor]:
        """Dice loss of ``sigmoid(x_j) * sigmoid(y_i)`` on positive cells (i, j), focal loss
        on all category cells."""
        featmap_sizes = [p.shape[-2:] for p in ins_preds_x]
        cate_targets, pos_masks, mask_targets = self.get_targets(
            gt_bboxes, gt_labels, gt_masks, featmap_sizes, device=ins_preds_x[0].device)
        mask_probs = []
        for pred_x, pred_y, pos, num_grid in zip(ins_preds_x, ins_preds_y, pos_masks,
                                                 self.seg_num_grids):
            img, cell = pos.nonzero(as_tuple=True)
            rows, cols = cell // num_grid, cell % num_grid
            mask_probs.append(pred_x[img, cols].sigmoid() * pred_y[img, rows].sigmoid())
        num_pos = int(sum(int(p.sum()) for p in pos_masks))
        sync = cfg_get(cfg, 'sync_normalizer', True)
        return dict(
            loss_ins=self._dice_loss(mask_probs, mask_targets, list(ins_preds_x) + list(ins_preds_y),
                                     sync),
            loss_cate=self._cate_loss(cate_preds, cate_targets, num_pos, sync))

    # --------------------------------------------------------------- inference
    def _candidate_masks_xy(self, ins_preds_x: Sequence[torch.Tensor],
                            ins_preds_y: Sequence[torch.Tensor], img_id: int, cells: torch.Tensor,
                            out_size: Tuple[int, int]) -> torch.Tensor:
        """(K, H_pad/4, W_pad/4) soft masks ``x_up[j] * y_up[i]`` of the candidate cells, the
        X/Y probabilities resized bilinearly to ``out_size`` first (as the original)."""
        level, local = self._level_of_cells(cells)
        masks = ins_preds_x[0].new_empty((len(cells), *out_size))
        for lvl, (pred_x, pred_y) in enumerate(zip(ins_preds_x, ins_preds_y)):
            sel = (level == lvl).nonzero().flatten()
            if len(sel) == 0:
                continue
            num_grid = self.seg_num_grids[lvl]
            up_x = F.interpolate(pred_x[img_id:img_id + 1].sigmoid(), size=out_size, mode='bilinear')[0]
            up_y = F.interpolate(pred_y[img_id:img_id + 1].sigmoid(), size=out_size, mode='bilinear')[0]
            rows, cols = local[sel] // num_grid, local[sel] % num_grid
            masks[sel] = up_x[cols] * up_y[rows]
        return masks

    def get_seg(self,
                ins_preds_x: Sequence[torch.Tensor],
                ins_preds_y: Sequence[torch.Tensor],
                cate_preds: Sequence[torch.Tensor],
                img_metas: Sequence[dict],
                cfg,
                rescale: bool = True,
                encode_masks: bool = False) -> List[InstanceResult]:
        """Detections of every image (the original ``get_seg`` with ``eval=True`` outputs)."""
        out_size = tuple(ins_preds_x[0].shape[-2:])
        all_scores = self._cate_scores([p.detach() for p in cate_preds])
        strides = level_strides_per_cell(self.seg_num_grids, self.strides, all_scores.device)
        preds_x = [p.detach() for p in ins_preds_x]
        preds_y = [p.detach() for p in ins_preds_y]
        results = []
        for img_id, meta in enumerate(img_metas):
            cells, labels, scores = select_candidates(all_scores[img_id], cfg_get(cfg, 'score_thr', 0.1))
            uniq, inverse = torch.unique(cells, return_inverse=True)
            masks = self._candidate_masks_xy(preds_x, preds_y, img_id, uniq, out_size)
            results.append(segm_postprocess(masks, labels, scores, strides[cells],
                                            meta['img_shape'], meta['ori_shape'], cfg, rescale,
                                            mask_inds=inverse, encode=encode_masks))
        return results
