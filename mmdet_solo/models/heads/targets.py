"""Grid target assignment shared by all SOLO heads, vectorised over instances.

Follows the original release: an instance goes to every level whose scale range holds
``sqrt(w * h)`` of its box (both ends inclusive); its positive cells are those of the box
``sigma``-scaled around the mask's centre of mass, limited to the centre cell ±1; when cells
collide the later instance wins the category label (and, for SOLO v1, the mask).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple, Union

import numpy as np
import torch

from ...utils.image_ops import imrescale

MaskArray = Union[np.ndarray, torch.Tensor]


@dataclass
class LevelAssignment:
    """Positive (instance, cell) pairs of one FPN level, in the original's append order.

    inst_inds: (P,) int64 index into the image's ground truth
    cells:     (P,) int64 flat cell index ``row * S + col`` (a cell may repeat)
    """

    inst_inds: torch.Tensor
    cells: torch.Tensor
    num_grid: int

    def cell_owner(self) -> torch.Tensor:
        """(S*S,) int64: the entry index ``p`` of the last pair claiming each cell, or -1."""
        owner = torch.full((self.num_grid ** 2,), -1, dtype=torch.long, device=self.cells.device)
        if len(self.cells):
            pos = torch.arange(len(self.cells), device=self.cells.device)
            owner.scatter_reduce_(0, self.cells, pos, reduce='amax')
        return owner

    def cate_target(self, gt_labels: torch.Tensor, num_classes: int) -> torch.Tensor:
        """(S, S) int64 category grid; background is ``num_classes``; later instances win."""
        owner = self.cell_owner()
        target = torch.full_like(owner, num_classes)
        pos = owner >= 0
        target[pos] = gt_labels.to(owner.device)[self.inst_inds[owner[pos]]]
        return target.view(self.num_grid, self.num_grid)


def center_of_mass(masks: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(K,) x and y centres of (K, H, W) binary masks, in pixel-index coordinates.

    Float32 with the same intermediate row sums as the original (which makes the centres,
    and hence the grid cells, bit-identical); empty masks give 0.
    """
    k, h, w = masks.shape
    m = masks.float()
    xs = torch.arange(w, dtype=torch.float32, device=m.device)
    ys = torch.arange(h, dtype=torch.float32, device=m.device)
    row_count = m.sum(-1)                          # (K, H), exact integers
    m00 = row_count.sum(-1).clamp(min=1e-6)
    m10 = (m @ xs).sum(-1)                         # row sums of x are exact integers
    m01 = (row_count * ys).sum(-1)
    return m10 / m00, m01 / m00


def _to_cell(coord: torch.Tensor, size: int, num_grid: int) -> torch.Tensor:
    """The original's ``int((c / size) // (1 / S))`` on a float32 tensor."""
    return ((coord / size) // (1. / num_grid)).long()


@torch.no_grad()
def assign_grid_cells(gt_bboxes: torch.Tensor, gt_masks: torch.Tensor,
                      scale_ranges: Sequence[Sequence[float]], num_grids: Sequence[int],
                      sigma: float, input_size: Tuple[int, int]) -> List[LevelAssignment]:
    """Assign instances to the grid cells of every level.

    Args:
        gt_bboxes: (K, 4) float boxes x1, y1, x2, y2 in input pixels.
        gt_masks: (K, H, W) binary masks at the padded input size.
        scale_ranges: per level ``(lower, upper)`` bounds of ``sqrt(w * h)``.
        num_grids: per level grid size S.
        sigma: the centre-region scale (0.2 in every released config).
        input_size: (H, W) used to map coordinates to cells (the padded input size).
    """
    device = gt_bboxes.device
    gt_bboxes = gt_bboxes.float()
    gt_masks = torch.as_tensor(gt_masks).to(device)
    w_box = gt_bboxes[:, 2] - gt_bboxes[:, 0]
    h_box = gt_bboxes[:, 3] - gt_bboxes[:, 1]
    areas = torch.sqrt(w_box * h_box)
    half_w = 0.5 * w_box * sigma
    half_h = 0.5 * h_box * sigma
    center_x, center_y = center_of_mass(gt_masks) if len(gt_masks) else (areas, areas)
    valid = gt_masks.flatten(1).any(1) if len(gt_masks) else areas > 0
    in_h, in_w = input_size
    offsets = torch.arange(3, device=device)

    levels = []
    for (lower, upper), num_grid in zip(scale_ranges, num_grids):
        hit = ((areas >= lower) & (areas <= upper) & valid).nonzero().flatten()
        cx, cy, hw, hh = center_x[hit], center_y[hit], half_w[hit], half_h[hit]
        coord_w = _to_cell(cx, in_w, num_grid)
        coord_h = _to_cell(cy, in_h, num_grid)
        top = torch.maximum(_to_cell(cy - hh, in_h, num_grid).clamp(min=0), coord_h - 1)
        down = torch.minimum(_to_cell(cy + hh, in_h, num_grid).clamp(max=num_grid - 1), coord_h + 1)
        left = torch.maximum(_to_cell(cx - hw, in_w, num_grid).clamp(min=0), coord_w - 1)
        right = torch.minimum(_to_cell(cx + hw, in_w, num_grid).clamp(max=num_grid - 1), coord_w + 1)
        rows = top[:, None] + offsets                              # (n, 3)
        cols = left[:, None] + offsets
        ok = (rows <= down[:, None])[:, :, None] & (cols <= right[:, None])[:, None, :]   # (n, 3, 3)
        cells = rows[:, :, None] * num_grid + cols[:, None, :]
        inst = hit[:, None, None].expand_as(cells)
        levels.append(LevelAssignment(inst[ok], cells[ok], num_grid))
    return levels


def rescale_masks(masks: MaskArray, scale: float, out_size: Tuple[int, int]) -> np.ndarray:
    """Resize (K, H, W) 0/1 uint8 masks by ``scale`` as ``mmcv.imrescale`` (bilinear, cv2) does
    and place them top-left in zero maps of ``out_size`` (h, w). Returns (K, h, w) uint8."""
    if isinstance(masks, torch.Tensor):
        masks = masks.cpu().numpy()
    masks = np.asarray(masks, dtype=np.uint8)
    out = np.zeros((masks.shape[0], out_size[0], out_size[1]), dtype=np.uint8)
    # one 2-D cv2 call per mask, as the original: multi-channel cv2.resize is not bit-identical
    # per channel (exact 1/2 downscales take another path for 2 or >= 5 channels), and the
    # channel transpose it needs costs more than the calls themselves
    for i, mask in enumerate(masks):
        small = imrescale(mask, scale)
        ch, cw = min(small.shape[0], out_size[0]), min(small.shape[1], out_size[1])
        out[i, :ch, :cw] = small[:ch, :cw]
    return out
