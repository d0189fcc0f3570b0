"""SOLO v1 heads (Wang et al., "SOLO: Segmenting Objects by Locations", 2020).

``SOLOHead``: every grid cell of every level predicts one full mask (``S²`` mask channels per
level). ``DecoupledSOLOHead``: the mask of cell (i, j) is ``sigmoid(x_j) * sigmoid(y_i)`` from
``S`` X-masks and ``S`` Y-masks, predicted by two towers (the X tower sees the x coordinate
channel, the Y tower the y channel). ``DecoupledSOLOLightHead``: one tower with both coordinate
channels feeds the X and the Y convs. The variants are two class flags, ``decoupled`` and
``light``. Module names follow the original release so that its checkpoints load unchanged.
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import HEADS
from .base_head import BaseGridHead
from .targets import LevelAssignment, rescale_masks
from .utils import batched_take, coord_features


class SOLOOutputs(NamedTuple):
    """Raw logits of :class:`SOLOHead`, per level."""

    cate_preds: List[torch.Tensor]   # (B, num_classes, S, S)
    mask_preds: List[torch.Tensor]   # (B, S², H_l, W_l), (H_l, W_l) = padded input / (stride / 2)


class DecoupledSOLOOutputs(NamedTuple):
    """Raw logits of the decoupled heads, per level."""

    cate_preds: List[torch.Tensor]     # (B, num_classes, S, S)
    mask_preds_x: List[torch.Tensor]   # (B, S, H_l, W_l): column j's X-mask
    mask_preds_y: List[torch.Tensor]   # (B, S, H_l, W_l): row i's Y-mask


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode='bilinear')


@HEADS.register_module()
class SOLOHead(BaseGridHead):
    """SOLO v1 head; arguments as :class:`BaseGridHead` plus ``cate_down_pos``, the index of
    the category-tower conv before which the features are resized to S x S (0).

    Module names: ``ins_convs`` (``ins_convs_x/y`` for the decoupled head), ``cate_convs``,
    ``solo_ins_list`` and ``solo_cate`` (decoupled: ``dsolo_ins_list_x/y``, ``dsolo_cate``).
    """

    decoupled = False   # S X-masks and S Y-masks per level instead of S² masks
    light = False       # one mask tower for the X and the Y masks

    def __init__(self, num_classes: int, in_channels: int, *, cate_down_pos: int = 0,
                 sigma: float = 0.4, **kwargs) -> None:
        super().__init__(num_classes, in_channels, sigma=sigma, **kwargs)
        self.cate_down_pos = cate_down_pos
        if self.decoupled and not self.light:
            self.ins_convs_x = self._tower(in_channels + 1)
            self.ins_convs_y = self._tower(in_channels + 1)
        else:
            self.ins_convs = self._tower(in_channels + 2)
        self.cate_convs = self._tower(in_channels)
        channels = self.seg_feat_channels
        if self.decoupled:
            self.dsolo_ins_list_x = nn.ModuleList(
                nn.Conv2d(channels, s, 3, padding=1) for s in self.seg_num_grids)
            self.dsolo_ins_list_y = nn.ModuleList(
                nn.Conv2d(channels, s, 3, padding=1) for s in self.seg_num_grids)
            self.dsolo_cate = nn.Conv2d(channels, num_classes, 3, padding=1)
        else:
            self.solo_ins_list = nn.ModuleList(
                nn.Conv2d(channels, s ** 2, 1) for s in self.seg_num_grids)
            self.solo_cate = nn.Conv2d(channels, num_classes, 3, padding=1)

    def _branches(self) -> Tuple[List[nn.Sequential], List[nn.ModuleList], nn.Conv2d]:
        """(mask towers, per-level mask output convs, category output conv) of this variant."""
        if not self.decoupled:
            return [self.ins_convs], [self.solo_ins_list], self.solo_cate
        towers = [self.ins_convs] if self.light else [self.ins_convs_x, self.ins_convs_y]
        return towers, [self.dsolo_ins_list_x, self.dsolo_ins_list_y], self.dsolo_cate

    def init_weights(self) -> None:
        """Tower convs N(0, 0.01); mask and category outputs N(0, 0.01) with prior-0.01 bias."""
        towers, mask_convs, cate_conv = self._branches()
        self._init_convs(towers + [self.cate_convs],
                         [conv for level_convs in mask_convs for conv in level_convs] + [cate_conv])

    # ----------------------------------------------------------------- forward
    def forward(self, feats: Sequence[torch.Tensor], mask_feats: Optional[torch.Tensor] = None
                ) -> Union[SOLOOutputs, DecoupledSOLOOutputs]:
        """Five FPN maps (P2..P6) → raw logits per level (``mask_feats`` must be None)."""
        towers, mask_convs, cate_conv = self._branches()
        cate_preds, mask_preds = [], []
        for idx, x in enumerate(self._split_feats(feats, mask_feats)):
            xy = coord_features(x)
            coords = [xy] if len(towers) == 1 else [xy[:, :1], xy[:, 1:]]
            tower_feats = [_upsample(tower(torch.cat([x, c], 1)))
                           for tower, c in zip(towers, coords)]
            if len(tower_feats) == 1:   # the light head's X and Y convs share one tower
                tower_feats = tower_feats * len(mask_convs)
            mask_preds.append([convs[idx](f) for convs, f in zip(mask_convs, tower_feats)])
            pos = self.cate_down_pos
            cate_feat = F.interpolate(self.cate_convs[:pos](x), size=self.seg_num_grids[idx],
                                      mode='bilinear')
            cate_preds.append(cate_conv(self.cate_convs[pos:](cate_feat)))
        mask_fields = [list(field) for field in zip(*mask_preds)]
        if self.decoupled:
            return DecoupledSOLOOutputs(cate_preds, *mask_fields)
        return SOLOOutputs(cate_preds, *mask_fields)

    # -------------------------------------------------------------------- loss
    @torch.no_grad()
    def _mask_targets(self, assigns: List[List[LevelAssignment]], gt_masks: Sequence,
                      sizes: Sequence[Tuple[int, int]]
                      ) -> List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per level: image, cell and (P, H_l, W_l) uint8 mask target of every positive cell
        (the mask of the last instance claiming it, at 1/(stride/2) of the input), image-major,
        cells ascending, as the original ``solo_target_single``."""
        levels = []
        for lvl, (stride, size) in enumerate(zip(self.strides, sizes)):
            img_inds, cells, targets = [], [], []
            for img, (levels_of_img, masks) in enumerate(zip(assigns, gt_masks)):
                owner = levels_of_img[lvl].cell_owner()
                cell = (owner >= 0).nonzero().flatten()
                # rescale only the masks that own a cell, then repeat them per cell
                uniq, inverse = torch.unique(levels_of_img[lvl].inst_inds[owner[cell]],
                                             return_inverse=True)
                scaled = rescale_masks(torch.as_tensor(masks)[uniq.cpu()], 1. / (stride / 2), size)
                targets.append(torch.from_numpy(scaled).to(cell.device)[inverse])
                img_inds.append(torch.full_like(cell, img))
                cells.append(cell)
            levels.append((torch.cat(img_inds), torch.cat(cells), torch.cat(targets)))
        return levels

    def _mask_loss_inputs(self, outputs: Union[SOLOOutputs, DecoupledSOLOOutputs],
                          assigns: List[List[LevelAssignment]], gt_masks: Sequence
                          ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Per level the positive cells' masks (decoupled: ``sigmoid(x_j) * sigmoid(y_i)``)
        and their targets."""
        sizes = [tuple(p.shape[-2:]) for p in outputs[1]]
        probs, targets = [], []
        for lvl, (img, cells, target) in enumerate(self._mask_targets(assigns, gt_masks, sizes)):
            if self.decoupled:
                num_grid = self.seg_num_grids[lvl]
                probs.append(outputs.mask_preds_x[lvl][img, cells % num_grid].sigmoid()
                             * outputs.mask_preds_y[lvl][img, cells // num_grid].sigmoid())
            else:
                probs.append(outputs.mask_preds[lvl][img, cells].sigmoid())
            targets.append(target)
        return probs, targets

    # --------------------------------------------------------------- inference
    def _mask_size(self, outputs: Union[SOLOOutputs, DecoupledSOLOOutputs]) -> Tuple[int, int]:
        return tuple(outputs[1][0].shape[-2:])

    def _level_of_cells(self, cells: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Flat cell indices over all levels → (level, cell index within the level)."""
        sizes = torch.tensor([s * s for s in self.seg_num_grids], device=cells.device)
        ends = sizes.cumsum(0)
        level = torch.searchsorted(ends, cells, right=True)
        return level, cells - (ends - sizes)[level]

    def _candidate_masks(self, outputs: Union[SOLOOutputs, DecoupledSOLOOutputs], img_id: int,
                         cells: torch.Tensor) -> torch.Tensor:
        """Sigmoid, then bilinear resizing to 1/4 of the input: of only the candidate channels
        for SOLO (bit-identical to resizing all of them), of the X and Y maps before their
        product for the decoupled heads (as the original)."""
        size = self._mask_size(outputs)
        level, local = self._level_of_cells(cells)
        masks = outputs[1][0].new_empty((len(cells), *size))
        for lvl, num_grid in enumerate(self.seg_num_grids):
            sel = (level == lvl).nonzero().flatten()
            if len(sel) == 0:
                continue
            cell = local[sel]
            if self.decoupled:
                up_x, up_y = (F.interpolate(p[lvl][img_id:img_id + 1].sigmoid(), size=size,
                                            mode='bilinear')[0]
                              for p in (outputs.mask_preds_x, outputs.mask_preds_y))
                masks[sel] = up_x[cell % num_grid] * up_y[cell // num_grid]
            else:
                probs = outputs.mask_preds[lvl][img_id, cell].sigmoid()[None]
                masks[sel] = F.interpolate(probs, size=size, mode='bilinear')[0]
        return masks

    def _candidate_masks_static(self, outputs: Union[SOLOOutputs, DecoupledSOLOOutputs],
                                cells: torch.Tensor) -> torch.Tensor:
        """(B, K) cells → (B, K, h, w) soft masks, batched (the exported graph's version of
        ``_candidate_masks``, see ``mmdet_solo.deploy.graph``): each level builds the masks
        of all K cells (indices clamped) and keeps those of its own cells."""
        size = self._mask_size(outputs)
        masks, start = None, 0
        for lvl, num_grid in enumerate(self.seg_num_grids):
            end = start + num_grid * num_grid
            local = (cells - start).clamp(0, num_grid * num_grid - 1)
            if self.decoupled:
                up_x, up_y = (F.interpolate(p[lvl].sigmoid(), size=size, mode='bilinear')
                              for p in (outputs.mask_preds_x, outputs.mask_preds_y))
                level_masks = (batched_take(up_x, local % num_grid)
                               * batched_take(up_y, torch.div(local, num_grid,
                                                              rounding_mode='floor')))
            else:
                probs = batched_take(outputs.mask_preds[lvl], local).sigmoid()
                level_masks = F.interpolate(probs, size=size, mode='bilinear')
            on_level = ((cells >= start) & (cells < end))[:, :, None, None]
            masks = level_masks if masks is None else torch.where(on_level, level_masks, masks)
            start = end
        return masks


@HEADS.register_module()
class DecoupledSOLOHead(SOLOHead):
    """Decoupled SOLO head: X and Y towers (``ins_convs_x/y``), ``dsolo_*`` output convs."""

    decoupled = True


@HEADS.register_module()
class DecoupledSOLOLightHead(SOLOHead):
    """Decoupled SOLO light head: one shared mask tower (``ins_convs``) with both coordinate
    channels; with ``use_dcn_in_tower`` the last conv of both towers is deformable."""

    decoupled = True
    light = True
