"""CENTER head (docs/paper-notes.md §1.4): score, offset and size maps on the search feature grid.

Each branch: 4 x [conv (3x3, or 1x1 for conv_type "small") - BatchNorm - ReLU] with the width
halving after the first layer (C, C/2, C/4, C/8), then a 1x1 conv to 1 (score) or 2 channels.

    score  = clamp(sigmoid(s), 1e-4, 1 - 1e-4)       (B, 1, F, F)
    size   = clamp(sigmoid(z), 1e-4, 1 - 1e-4)       (B, 2, F, F)  ch0 = w, ch1 = h (fraction of the view)
    offset = raw                                      (B, 2, F, F)  ch0 = x, ch1 = y (cell units)

Box of cell (gx, gy): ((gx + off_x) / F, (gy + off_y) / F, w, h), normalized cx, cy, w, h
(`decode_boxes`, the one box decoder: the head, the tracker's confidence and the losses use it).
"""

from __future__ import annotations

import functools
from typing import Optional

import torch
from torch import nn

from mvlm.config import HeadConfig

SCORE_EPS = 1e-4
BRANCHES = ("ctr", "offset", "size")
OUT_CHANNELS = {"ctr": 1, "offset": 2, "size": 2}


def _clamped_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x.sigmoid(), min=SCORE_EPS, max=1 - SCORE_EPS)


def _conv_bn_relu(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=kernel, padding=kernel // 2),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class CenterHead(nn.Module):
    """Key names: conv{1..4}_{ctr,offset,size}.{0: conv, 1: BN}, conv5_{ctr,offset,size}."""

    def __init__(self, in_channels: int, cfg: HeadConfig):
        super().__init__()
        c = cfg.channels
        if c % 8:
            raise ValueError(f"head.channels={c} must be divisible by 8 (it halves three times)")
        kernel = 3 if cfg.conv_type == "normal" else 1
        widths = [in_channels, c, c // 2, c // 4, c // 8]
        # registration order ctr, offset, size keeps the released state-dict order
        for branch in BRANCHES:
            for i in range(4):
                self.add_module(f"conv{i + 1}_{branch}", _conv_bn_relu(widths[i], widths[i + 1], kernel))
            self.add_module(f"conv5_{branch}", nn.Conv2d(c // 8, OUT_CHANNELS[branch], kernel_size=1))
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def _branch(self, x: torch.Tensor, name: str) -> torch.Tensor:
        for i in range(1, 6):
            x = getattr(self, f"conv{i}_{name}")(x)
        return x

    def forward(self, feat: torch.Tensor) -> dict[str, torch.Tensor]:
        """feat (B, C, F, F) -> score_map (B,1,F,F), size_map (B,2,F,F), offset_map (B,2,F,F),
        pred_boxes (B,1,4) at the argmax of the (unwindowed) score map."""
        score = _clamped_sigmoid(self._branch(feat, "ctr"))
        offset = self._branch(feat, "offset")
        size = _clamped_sigmoid(self._branch(feat, "size"))
        boxes = cal_bbox(score, size, offset)
        return {"score_map": score, "size_map": size, "offset_map": offset, "pred_boxes": boxes.unsqueeze(1)}


@functools.lru_cache(maxsize=32)
def _cell_coords(f: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Grid x (row 0) and y (row 1) of every cell i = gy·F + gx, (2, F·F), cached per grid, device
    and dtype (the tracker's per-frame path then allocates nothing for them). Made outside any
    inference mode, so training can use the cached tensor after a tracker has."""
    with torch.inference_mode(False):
        idx = torch.arange(f * f, device=device)
        return torch.stack([(idx % f).to(dtype), torch.div(idx, f, rounding_mode="floor").to(dtype)])


def decode_boxes(size_map: torch.Tensor, offset_map: torch.Tensor,
                 cells: Optional[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
    """The box decoder: candidate boxes, normalized cx, cy, w, h of the view, from the head's maps.

        b_i = ((gx + ox_i) / F, (gy + oy_i) / F, w_i, h_i)   for cell i = gy·F + gx

    size_map (B,2,F,F) ch0 w ch1 h; offset_map (B,2,F,F) ch0 x ch1 y (cell units).
    Every cell: -> (B,4,F·F), one row per coordinate (the layout the tracker's confidence works
    in), in the maps' dtype. `cells` = (rows, gx, gy), each (K,): only those cells of those batch
    rows, read and decoded in float32 -> (K,4) (the losses' supervised boxes). Either way the
    arithmetic of an element is the same float operations: one add, one divide by F.
    """
    f = size_map.shape[-1]
    if cells is None:
        b = size_map.shape[0]
        grid = _cell_coords(f, size_map.device, size_map.dtype)  # (2,N)
        offset, size = offset_map.reshape(b, 2, f * f), size_map.reshape(b, 2, f * f)
    else:
        rows, gx, gy = cells
        offset = offset_map[rows, :, gy, gx].float().T  # (2,K): x, y
        size = size_map[rows, :, gy, gx].float().T  # (2,K): w, h
        grid = torch.stack([gx, gy]).to(offset)
    boxes = torch.cat([(grid + offset) / f, size], dim=-2)
    return boxes if cells is None else boxes.T


def all_boxes(size_map: torch.Tensor, offset_map: torch.Tensor) -> torch.Tensor:
    """Candidate box of every cell: (B, F*F, 4) normalized cx, cy, w, h; index i = gy·F + gx
    (`decode_boxes` with one row per box)."""
    return decode_boxes(size_map, offset_map).transpose(1, 2)


def cal_bbox(score_map: torch.Tensor, size_map: torch.Tensor, offset_map: torch.Tensor) -> torch.Tensor:
    """Box at the argmax of the score map (first index on ties): (B, 4) normalized cx, cy, w, h."""
    index = score_map.flatten(1).argmax(dim=1)  # (B,)
    boxes = all_boxes(size_map, offset_map)  # (B, F*F, 4)
    return boxes[torch.arange(boxes.shape[0], device=boxes.device), index]
