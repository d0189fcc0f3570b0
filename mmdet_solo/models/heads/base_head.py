"""What every SOLO-family head shares: the grid settings, the conv towers, the target
assignment, both losses and the per-image prediction loop.

The protocol of a head (the detector uses nothing else)::

    outputs = head(feats, mask_feats)       # a NamedTuple: cate_preds + the family's mask fields
    losses = head.loss(outputs, gt_bboxes, gt_labels, gt_masks, img_metas, cfg)
    results = head.predict(outputs, img_metas, cfg, rescale, encode_masks)

A head adds its layers, ``forward``, ``init_weights`` and three mask hooks: ``_mask_size``,
``_mask_loss_inputs`` (predicted and target masks of the positive cells) and
``_candidate_masks`` (soft masks of the cells selected at inference).
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ...registry import LOSSES
from ..layers import ConvModule, resolve_conv_bias
from ..losses import DiceLoss, dice_loss
from .postprocess import (Result, SoftMasks, cfg_get, read_test_cfg, segm_postprocess,
                          select_candidates)
from .targets import LevelAssignment, assign_grid_cells
from .utils import (bias_init_with_prob, flatten_cate_preds, level_strides_per_cell,
                    loss_normalizer, normal_init, points_nms, split_feats)

DEFAULT_SCALE_RANGES = ((8, 32), (16, 64), (32, 128), (64, 256), (128, 512))
DEFAULT_NORM_CFG = dict(type='GN', num_groups=32, requires_grad=True)


def _check_args(name: str, num_grids: Optional[Sequence[int]], strides: Sequence[int],
                scale_ranges: Sequence[Sequence[float]], use_dcn_in_tower: bool,
                type_dcn: Optional[str]) -> None:
    """Refuse grid and DCN settings the heads cannot run, naming the head."""
    if num_grids is None:
        raise ValueError(f'{name}: num_grids is required (e.g. [40, 36, 24, 16, 12])')
    if not len(num_grids) == len(strides) == len(scale_ranges) == 5:
        raise ValueError(f'{name}: num_grids {num_grids}, strides {strides} and scale_ranges '
                         f'{scale_ranges} must have one entry per level (5 FPN levels)')
    if use_dcn_in_tower and type_dcn not in ('DCN', 'DCNv2'):
        raise ValueError(f"{name}: use_dcn_in_tower=True needs type_dcn='DCN' or 'DCNv2', "
                         f'got {type_dcn!r}')


class BaseGridHead(nn.Module):
    """Base of the SOLO heads; ``num_classes`` counts object classes only (80 for COCO).

    Args:
        in_channels: FPN channels (256).
        seg_feat_channels: channels of the towers (256).
        stacked_convs: convs per tower.
        strides: per-level stride, for the mask-size filter of post-processing (and SOLO's
            mask-target resolution ``stride / 2``).
        scale_ranges: per-level ``(lower, upper)`` of ``sqrt(w * h)``, both inclusive.
        sigma: centre-region scale (0.2 in the configs).
        num_grids: grid sizes S of the five levels.
        loss_ins: the dice-loss config (``loss_weight``, ``eps``).
        loss_cate: the focal-loss config.
        conv_cfg: conv of the towers (None: plain conv).
        norm_cfg: norm of the towers (None: GN(32), which the original hard-codes).
        use_dcn_in_tower, type_dcn: deformable tower convs (``'DCN'`` or ``'DCNv2'``), the
            last of each tower only unless ``dcn_on_last_conv_only`` is False.
        conv_bias: the tower convs' bias: ``'auto'`` (none, as a norm follows; the original),
            ``True``/``False``, or ``'dcn'`` (deformable convs only, as PaddleDetection).
    """

    dcn_on_last_conv_only = True
    uses_mask_feats = False   # SOLOv2: masks come from the detector's mask-feature head

    def __init__(self, num_classes: int, in_channels: int, seg_feat_channels: int = 256,
                 stacked_convs: int = 4, strides: Sequence[int] = (4, 8, 16, 32, 64),
                 scale_ranges: Sequence[Sequence[float]] = DEFAULT_SCALE_RANGES,
                 sigma: float = 0.2, num_grids: Optional[Sequence[int]] = None,
                 loss_ins: Optional[dict] = None, loss_cate: Optional[dict] = None,
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 use_dcn_in_tower: bool = False, type_dcn: Optional[str] = None,
                 conv_bias: Union[str, bool] = 'auto') -> None:
        super().__init__()
        name = type(self).__name__
        resolve_conv_bias(conv_bias, None, name)  # validate even without convs
        _check_args(name, num_grids, strides, scale_ranges, use_dcn_in_tower, type_dcn)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.seg_feat_channels = seg_feat_channels
        self.stacked_convs = stacked_convs
        self.strides = list(strides)
        self.scale_ranges = [tuple(r) for r in scale_ranges]
        self.sigma = sigma
        self.seg_num_grids = list(num_grids)
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg or DEFAULT_NORM_CFG
        self.use_dcn_in_tower = use_dcn_in_tower
        self.type_dcn = type_dcn
        self.conv_bias = conv_bias
        self.loss_ins = LOSSES.build(loss_ins or dict(type='DiceLoss', loss_weight=3.0))
        if not isinstance(self.loss_ins, DiceLoss):
            raise ValueError(f'{name}: loss_ins must be a DiceLoss, got {loss_ins}')
        self.loss_cate = LOSSES.build(loss_cate or dict(type='FocalLoss', gamma=2.0, alpha=0.25))

    # ------------------------------------------------------------------ layers
    def _tower(self, in_channels: int) -> nn.Sequential:
        """``stacked_convs`` 3x3 conv-norm-ReLU blocks, deformable where configured."""
        convs = []
        for i in range(self.stacked_convs):
            dcn = self.use_dcn_in_tower and (not self.dcn_on_last_conv_only
                                             or i == self.stacked_convs - 1)
            conv_cfg = dict(type=self.type_dcn) if dcn else self.conv_cfg
            convs.append(ConvModule(in_channels if i == 0 else self.seg_feat_channels,
                                    self.seg_feat_channels, 3, padding=1, conv_cfg=conv_cfg,
                                    norm_cfg=self.norm_cfg,
                                    bias=resolve_conv_bias(self.conv_bias, conv_cfg,
                                                           type(self).__name__)))
        return nn.Sequential(*convs)

    @staticmethod
    def _init_convs(towers: Sequence[nn.Sequential], outputs: Sequence[nn.Conv2d],
                    zero_bias: Sequence[nn.Conv2d] = ()) -> None:
        """Tower convs N(0, 0.01) with zero bias, then output convs N(0, 0.01) with the
        prior-0.01 bias (zero for those in ``zero_bias``), in the order given."""
        for tower in towers:
            for m in tower:
                normal_init(m.conv, std=0.01)
        prior = bias_init_with_prob(0.01)
        for conv in outputs:
            normal_init(conv, std=0.01, bias=0.0 if conv in zero_bias else prior)

    def _split_feats(self, feats: Sequence[torch.Tensor],
                     mask_feats: Optional[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """Check ``forward``'s inputs; the five levels as the heads see them."""
        name = type(self).__name__
        if len(feats) != len(self.seg_num_grids):
            raise ValueError(f'{name}: expected {len(self.seg_num_grids)} feature maps (P2..P6), '
                             f'got {len(feats)}')
        if (mask_feats is not None) != self.uses_mask_feats:
            raise ValueError(f"{name}: needs the mask-feature head's output (mask_feats)"
                             if self.uses_mask_feats else
                             f'{name}: predicts its masks itself and takes no mask_feats')
        return split_feats(feats)

    # ----------------------------------------------------------------- targets
    @torch.no_grad()
    def get_targets(self, gt_bboxes: Sequence[torch.Tensor], gt_labels: Sequence[torch.Tensor],
                    gt_masks: Sequence, input_size: Tuple[int, int],
                    device: Optional[torch.device] = None
                    ) -> Tuple[List[List[LevelAssignment]], List[torch.Tensor]]:
        """Grid assignment of a batch, as the original's target functions.

        Args:
            gt_bboxes: per image (K, 4) boxes in input pixels.
            gt_labels: per image (K,) 0-based labels.
            gt_masks: per image (K, H_pad, W_pad) 0/1 masks (numpy or tensor).
            input_size: (H, W) the centres are mapped to cells with: 4 × the 1/4 mask map.

        Returns:
            assigns: per image, per level the positive (instance, cell) pairs.
            cate_targets: per level (B, S, S) int64, background ``num_classes``, the later
                instance winning a cell claimed twice.
        """
        if not len(gt_bboxes) == len(gt_labels) == len(gt_masks):
            raise ValueError(f'{type(self).__name__}: gt_bboxes ({len(gt_bboxes)}), gt_labels '
                             f'({len(gt_labels)}) and gt_masks ({len(gt_masks)}) must have one '
                             'entry per image')
        if device is None:
            device = gt_bboxes[0].device if len(gt_bboxes) else torch.device('cpu')
        assigns, cate_targets = [], []
        for bboxes, labels, masks in zip(gt_bboxes, gt_labels, gt_masks):
            masks = torch.as_tensor(masks)
            if masks.dim() != 3 or len(masks) != len(bboxes) or len(labels) != len(bboxes):
                raise ValueError(f'{type(self).__name__}: an image has {len(bboxes)} boxes, '
                                 f'{len(labels)} labels and masks of shape {tuple(masks.shape)}; '
                                 'expected (K, 4), (K,), (K, H, W)')
            levels = assign_grid_cells(torch.as_tensor(bboxes).float().to(device), masks,
                                       self.scale_ranges, self.seg_num_grids, self.sigma,
                                       input_size)
            labels = torch.as_tensor(labels).long().to(device)
            assigns.append(levels)
            cate_targets.append([lvl.cate_target(labels, self.num_classes) for lvl in levels])
        return assigns, [torch.stack(level) for level in zip(*cate_targets)]

    # -------------------------------------------------------------------- loss
    def loss(self, outputs: NamedTuple, gt_bboxes: Sequence[torch.Tensor],
             gt_labels: Sequence[torch.Tensor], gt_masks: Sequence, img_metas: Sequence[dict],
             cfg=None) -> Dict[str, torch.Tensor]:
        """Dice loss on the masks of the positive cells, focal loss on all category cells.

        ``cfg`` is the train_cfg; ``sync_normalizer`` (default True) sums the normalisers
        over the ranks of a distributed run (see ``loss_normalizer``).
        """
        sync = cfg_get(cfg, 'sync_normalizer', True)
        h, w = self._mask_size(outputs)
        assigns, cate_targets = self.get_targets(gt_bboxes, gt_labels, gt_masks, (h * 4, w * 4),
                                                 outputs.cate_preds[0].device)
        mask_probs, mask_targets = self._mask_loss_inputs(outputs, assigns, gt_masks)
        return dict(loss_ins=self._dice_loss(mask_probs, mask_targets, outputs[1:], sync),
                    loss_cate=self._cate_loss(outputs.cate_preds, cate_targets, sync))

    def _dice_loss(self, mask_probs: Sequence[torch.Tensor], mask_targets: Sequence[torch.Tensor],
                   mask_outputs: Sequence, sync: bool) -> torch.Tensor:
        """Dice loss summed over all targets / their number × loss weight.

        ``0 * sum(mask_outputs)`` keeps every mask output in the graph even when some level
        (or the whole batch) has no positive cell, so DDP sees the same parameters used on
        every rank."""
        zero = sum(t.sum() for field in mask_outputs
                   for t in (field if isinstance(field, list) else [field])) * 0.0
        per_target = [dice_loss(p.float(), t, self.loss_ins.eps)
                      for p, t in zip(mask_probs, mask_targets) if len(p)]
        num = loss_normalizer(sum(len(p) for p in mask_probs), sync=sync, device=zero.device)
        if not per_target or num == 0:
            return zero
        return torch.cat(per_target).sum() / num * self.loss_ins.loss_weight + zero

    def _cate_loss(self, cate_preds: Sequence[torch.Tensor], cate_targets: Sequence[torch.Tensor],
                   sync: bool) -> torch.Tensor:
        """Focal loss over all cells of all levels and images (level-major, as the original),
        normalised by the number of positive cells + 1."""
        flat_preds = torch.cat([p.permute(0, 2, 3, 1).reshape(-1, self.num_classes)
                                for p in cate_preds])
        flat_labels = torch.cat([t.flatten() for t in cate_targets])
        num_pos = int((flat_labels != self.num_classes).sum())
        return self.loss_cate(flat_preds, flat_labels,
                              avg_factor=loss_normalizer(num_pos, 1, sync, flat_preds.device))

    # --------------------------------------------------------------- inference
    @torch.no_grad()
    def predict(self, outputs: NamedTuple, img_metas: Sequence[dict], cfg, rescale: bool = True,
                encode_masks: bool = False) -> List[Result]:
        """One ``InstanceResult`` per image (the original ``get_seg``; an
        ``EncodedInstanceResult`` with RLE masks if ``encode_masks``); ``cfg`` is the test_cfg."""
        all_scores = flatten_cate_preds([points_nms(p.sigmoid()) for p in outputs.cate_preds])
        strides = level_strides_per_cell(self.seg_num_grids, self.strides, all_scores.device)
        score_thr = read_test_cfg(cfg, 'score_thr')
        results = []
        for img_id, meta in enumerate(img_metas):
            cells, labels, scores = select_candidates(all_scores[img_id], score_thr)
            # one mask per distinct cell: a cell's mask does not depend on the class
            uniq, inverse = torch.unique(cells, return_inverse=True)
            results.append(segm_postprocess(self._candidate_soft_masks(outputs, img_id, uniq),
                                            labels,
                                            scores, strides[cells], meta['img_shape'],
                                            meta['ori_shape'], cfg, rescale, mask_inds=inverse,
                                            encode=encode_masks))
        return results

    @torch.no_grad()
    def predict_aug(self, aug_outputs: Sequence[NamedTuple], aug_metas: Sequence[Sequence[dict]],
                    cfg, rescale: bool = True, encode_masks: bool = False) -> List[Result]:
        """Test-time augmentation: one result per image from the outputs of several views
        (``MultiScaleFlipAug``: ``aug_outputs[a]`` and ``aug_metas[a]`` are view ``a``'s).

        The merge (docs/GETTING_STARTED.md, "Test-time augmentation"):

        1. Flip: an unflipped view and its flipped twin of the same size are merged cell by
           cell. Cell (i, j) is paired with the flipped view's cell that sees its mirror
           image, (i, S - 1 - j) (:func:`tta.mirror_columns`); the category scores (after
           sigmoid and points-NMS in each view) are averaged, and so are the two cells' soft
           masks, the flipped one mirrored back (:func:`tta.warp_masks`). Thresholding,
           maskness and Matrix NMS then see one candidate per cell, as without TTA.
        2. Scales: each (merged) view selects its candidates (``score_thr``); their soft
           masks are resized into the 1/4 map of the largest view (the reference frame), the
           candidates of all views pooled and post-processed together (mask-size filter with
           the stride scaled to the reference frame, maskness, ``nms_pre``, Matrix NMS,
           ``max_per_img``), and the masks pasted from the reference view's image
           (``rescale=False``: masks at its ``img_shape``).

        With one view this is :meth:`predict` exactly.
        """
        return [segm_postprocess(masks, labels, scores, strides, meta['img_shape'],
                                 meta['ori_shape'], cfg, rescale, mask_inds=inds,
                                 encode=encode_masks)
                for masks, labels, scores, strides, inds, meta
                in self.merge_views(aug_outputs, aug_metas, cfg)]

    @torch.no_grad()
    def merge_views(self, aug_outputs: Sequence[NamedTuple], aug_metas: Sequence[Sequence[dict]],
                    cfg) -> List[Tuple[torch.Tensor, ...]]:
        """The candidates of :meth:`predict_aug` before post-processing, per image: ``(soft
        masks (U, h, w) in the reference frame, labels (K,), scores (K,), strides (K,), mask
        row of each candidate (K,), the reference view's img_meta)``."""
        from . import tta
        if len(aug_outputs) != len(aug_metas) or not aug_outputs:
            raise ValueError(f'{type(self).__name__}.predict_aug: {len(aug_outputs)} outputs for '
                             f'{len(aug_metas)} views of img_metas')
        groups = tta.plan_views(aug_metas)
        sizes = [self._mask_size(o) for o in aug_outputs]
        ref = max((a for a, _ in groups), key=lambda a: sizes[a][0] * sizes[a][1])
        ref_size = sizes[ref]
        strides = level_strides_per_cell(self.seg_num_grids, self.strides,
                                         aug_outputs[0].cate_preds[0].device)
        score_thr = read_test_cfg(cfg, 'score_thr')
        scores, mirrors = [], []
        for anchor, partner in groups:
            probs = [points_nms(p.sigmoid()) for p in aug_outputs[anchor].cate_preds]
            cols = None
            if partner is not None:
                cols = tta.mirror_columns([m['img_shape'][1] for m in aug_metas[anchor]],
                                          sizes[anchor][1] * 4, self.seg_num_grids,
                                          strides.device)
                probs = [(p + points_nms(q.sigmoid()).gather(
                    3, c[:, None, None, :].expand_as(p))) / 2
                    for p, q, c in zip(probs, aug_outputs[partner].cate_preds, cols)]
            scores.append(flatten_cate_preds(probs))
            mirrors.append(cols)
        results = []
        for img_id in range(len(aug_metas[0])):
            ref_meta = aug_metas[ref][img_id]
            masks, labels, cand_scores, cand_strides, inds = [], [], [], [], []
            num_masks = 0
            for (anchor, partner), group_scores, cols in zip(groups, scores, mirrors):
                meta = aug_metas[anchor][img_id]
                cells, cell_labels, cell_scores = select_candidates(group_scores[img_id],
                                                                    score_thr)
                uniq, inverse = torch.unique(cells, return_inverse=True)
                soft = self._candidate_masks(aug_outputs[anchor], img_id, uniq)
                if partner is not None:
                    mirror = tta.mirror_cells(cols, img_id)[uniq]
                    flipped = self._candidate_masks(aug_outputs[partner], img_id, mirror)
                    soft = (soft + tta.warp_masks(flipped, aug_metas[partner][img_id], meta,
                                                  sizes[anchor])) / 2
                if anchor != ref:
                    soft = tta.warp_masks(soft, meta, ref_meta, ref_size)
                masks.append(soft)
                labels.append(cell_labels)
                cand_scores.append(cell_scores)
                ratio = tta.area_ratio(meta, ref_meta)
                cand_strides.append(strides[cells] if ratio == 1 else strides[cells] * ratio)
                inds.append(inverse + num_masks)
                num_masks += len(uniq)
            results.append((torch.cat(masks), torch.cat(labels), torch.cat(cand_scores),
                            torch.cat(cand_strides), torch.cat(inds), ref_meta))
        return results

    # ------------------------------------------------------------ mask hooks
    def _mask_size(self, outputs: NamedTuple) -> Tuple[int, int]:
        """(h, w) of the masks at 1/4 of the padded input."""
        raise NotImplementedError

    def _mask_loss_inputs(self, outputs: NamedTuple, assigns: List[List[LevelAssignment]],
                          gt_masks: Sequence) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Predicted (probabilities) and target masks of the positive cells, in groups of one
        size (the dice loss sums them in this order)."""
        raise NotImplementedError

    def _candidate_masks(self, outputs: NamedTuple, img_id: int,
                         cells: torch.Tensor) -> torch.Tensor:
        """(K, h, w) soft masks at 1/4 of the padded input of image ``img_id``'s cells
        (sorted, distinct flat indices over all levels)."""
        raise NotImplementedError

    def _candidate_soft_masks(self, outputs: NamedTuple, img_id: int,
                              cells: torch.Tensor) -> SoftMasks:
        """The masks of :meth:`_candidate_masks` as post-processing reads them (a head that
        can make them a few at a time returns a :class:`SoftMasks` that does)."""
        return SoftMasks(self._candidate_masks(outputs, img_id, cells))
