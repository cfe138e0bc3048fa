"""Search views for the tracker and mapping the chosen box back to the image (docs/tracker.md, `exact_mapping`).

Two geometries:

* reference — the released tracker: local crops cut as an integer square (zero padding) and
  resized with `cv2.resize`; the whole frame stretched with `cv2.resize`; boxes mapped back
  relative to the *previous state's centre* (the rounding of the crop origin is ignored) with
  the float32 → float64 steps of the fixture:
      local:  (cx,cy,w,h) = b·S/r (float32), cx_img = cx + (x_prev + w_prev/2 − (S/2)/r)
      global: (cx,cy,w,h) = b·S (float32), then per axis ÷ (S/W), ÷ (S/H)
  where r = S/side and side = ⌈√(w·h)·factor⌉.
* exact — views from `mvlm.data.crops` (the ones training sees) and the view's own
  `ViewTransform` to go back, letterboxed or stretched.

`clip_box` keeps every output box inside the frame and at least `margin` px wide and tall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from mvlm.data import crops
from mvlm.data.crops import ViewTransform


@dataclass
class SearchView:
    """One network view of a frame. `resize_factor` = view side / crop side (local views)."""

    image: np.ndarray  # (S, S, 3) uint8
    mode: str  # "local" | "global"
    transform: ViewTransform
    resize_factor: float
    frame_hw: tuple[int, int]
    reference: bool = True  # cut with the released geometry (map back with map_back_reference)
    around: Optional[np.ndarray] = None  # local views: the image box x,y,w,h the crop is centred on


def reference_side(box_xywh, factor: float) -> int:
    """Crop side ⌈√(w·h)·factor⌉ (the released formula; Python float math)."""
    side = math.ceil(math.sqrt(float(box_xywh[2]) * float(box_xywh[3])) * factor)
    if side < 1:
        raise ValueError(f"box {list(box_xywh)} is too small to crop (side {side})")
    return side


def reference_crop(image: np.ndarray, box_xywh, factor: float, out_size: int) -> SearchView:
    """Square crop of side ⌈√(w·h)·factor⌉ centred on the box, zero padded, resized to out_size."""
    import cv2

    h, w = image.shape[:2]
    side = reference_side(box_xywh, factor)
    x, y, bw, bh = (float(v) for v in box_xywh[:4])
    x1 = round(x + 0.5 * bw - side * 0.5)  # Python round: half to even, as the reference
    y1 = round(y + 0.5 * bh - side * 0.5)
    canvas = np.zeros((side, side, 3), dtype=image.dtype)
    sx1, sy1 = max(0, x1), max(0, y1)
    sx2, sy2 = min(w, x1 + side), min(h, y1 + side)
    if sx2 > sx1 and sy2 > sy1:
        canvas[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = image[sy1:sy2, sx1:sx2]
    view = cv2.resize(canvas, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    r = out_size / side
    return SearchView(view, "local", ViewTransform(float(x1), float(y1), r, r, out_size), r, (h, w),
                      around=np.asarray(box_xywh[:4], dtype=np.float64))


def reference_global(image: np.ndarray, out_size: int) -> SearchView:
    """Whole frame resized to out_size × out_size (anisotropic, no padding)."""
    import cv2

    h, w = image.shape[:2]
    view = cv2.resize(image, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    t = ViewTransform(0.0, 0.0, out_size / w, out_size / h, out_size)
    return SearchView(view, "global", t, out_size / math.sqrt(w * h), (h, w))


def exact_crop(image: np.ndarray, box_xywh, factor: float, out_size: int) -> SearchView:
    """Local view from `mvlm.data.crops.box_view` (the training geometry)."""
    view, t = crops.box_view(image, box_xywh, factor, out_size)
    return SearchView(view, "local", t, t.scale_x, image.shape[:2], reference=False,
                      around=np.asarray(box_xywh[:4], dtype=np.float64))


def exact_global(image: np.ndarray, out_size: int, letterbox: bool) -> SearchView:
    """Whole-frame view from `mvlm.data.crops.global_view`, stretched or letterboxed."""
    view, t = crops.global_view(image, out_size, letterbox=letterbox)
    return SearchView(view, "global", t, t.scale_x, image.shape[:2], reference=False)


# --------------------------------------------------------------------------------------------
# mapping back


def map_back_reference(box_norm: torch.Tensor, view: SearchView, state_xywh, search_size: int) -> np.ndarray:
    """Normalized cx,cy,w,h of the view (float32 tensor (4,)) -> image x,y,w,h before clipping."""
    if view.mode == "global":
        cx, cy, w, h = (box_norm * search_size).tolist()
        frame_h, frame_w = view.frame_hw
        w_scale, h_scale = search_size / frame_w, search_size / frame_h
        cx, w = cx / w_scale, w / w_scale
        cy, h = cy / h_scale, h / h_scale
        return np.array([cx - 0.5 * w, cy - 0.5 * h, w, h], dtype=np.float64)
    cx, cy, w, h = (box_norm * search_size / view.resize_factor).tolist()
    x_prev, y_prev, w_prev, h_prev = (float(v) for v in state_xywh[:4])
    half_side = 0.5 * search_size / view.resize_factor
    cx_img = cx + (x_prev + 0.5 * w_prev - half_side)
    cy_img = cy + (y_prev + 0.5 * h_prev - half_side)
    return np.array([cx_img - 0.5 * w, cy_img - 0.5 * h, w, h], dtype=np.float64)


def map_back_exact(box_norm: torch.Tensor, view: SearchView) -> np.ndarray:
    """Normalized cx,cy,w,h of the view -> image x,y,w,h through the view's own transform."""
    t = view.transform
    cx, cy, w, h = (float(v) * t.size for v in box_norm.tolist())
    # ViewTransform.to_image on one box, in Python floats (the same float64 operations; four
    # numbers do not pay for numpy's per-call cost)
    x, y = cx - 0.5 * w, cy - 0.5 * h
    return np.array([x / t.scale_x + t.origin_x, y / t.scale_y + t.origin_y, w / t.scale_x, h / t.scale_y])


def clip_box(box_xywh, frame_h: int, frame_w: int, margin: float = 10.0) -> np.ndarray:
    """Keep a box inside the frame and at least `margin` px per side.

    x2 = x1 + w; x1 ← min(max(0, x1), W − m); x2 ← min(max(m, x2), W); w ← max(m, x2 − x1);
    same for y. (w is rebuilt from x2 − x1, so its last bits can change, as in the reference.)
    """
    x1, y1, w, h = (float(v) for v in box_xywh[:4])
    x2, y2 = x1 + w, y1 + h
    x1 = min(max(0, x1), frame_w - margin)
    x2 = min(max(margin, x2), frame_w)
    y1 = min(max(0, y1), frame_h - margin)
    y2 = min(max(margin, y2), frame_h)
    return np.array([x1, y1, max(margin, x2 - x1), max(margin, y2 - y1)], dtype=np.float64)


# --------------------------------------------------------------------------------------------
# memory alignment


def cell_centres_in_image(t: ViewTransform, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Image coordinates (x (F·F,), y (F·F,)) of the centres of a view's F×F token cells."""
    xs, ys = _cell_centre_axes(t, grid)
    gx, gy = np.meshgrid(xs, ys)  # row-major: i = gy·F + gx
    return gx.reshape(-1), gy.reshape(-1)


def _cell_centre_axes(t: ViewTransform, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Image x of the F cell columns and image y of the F cell rows (the views are axis-aligned,
    so the F×F centres are their outer combination)."""
    g = (np.arange(grid) + 0.5) * (t.size / grid)
    return g / t.scale_x + t.origin_x, g / t.scale_y + t.origin_y


def _bilinear_taps(coord: np.ndarray, grid: int) -> tuple[np.ndarray, ...]:
    """Bilinear taps at old-grid coordinates `coord` (...,): indices k0, k1, float32 weights
    (1 − f, f) with f = coord − k0, and whether coord lies inside the old view."""
    inside = (coord >= -0.5) & (coord <= grid - 0.5)
    coord = np.minimum(np.maximum(coord, 0), grid - 1)
    k0 = np.floor(coord).astype(np.int64)
    frac = (coord - k0).astype(np.float32)
    return k0, np.minimum(k0 + 1, grid - 1), np.float32(1) - frac, frac, inside


def realign_memory(memory: torch.Tensor, old: ViewTransform, new: ViewTransform, grid: int) -> torch.Tensor:
    """Resample a per-cell memory (B, F·F) from the grid of view `old` onto the grid of `new`.

    Each new cell centre is taken to image coordinates, then into old-grid coordinates
    u = view_old_px·F/S − 0.5, and the old memory is read there bilinearly (border values
    within half a cell of the edge):
        m = (m[v0,u0]·(1−fu) + m[v0,u1]·fu)·(1−fv) + (m[v1,u0]·(1−fu) + m[v1,u1]·fu)·fv
    in float32. Cells whose centre lies outside the old view get NaN, meaning "no memory
    here" (the EWMA then starts from the current κvlm).

    Both views are axis-aligned, so u depends on the column only and v on the row only: the
    taps are computed for F columns and F rows. The F×F arithmetic runs in numpy (64 cells:
    dispatch, not arithmetic, is the cost), with the same float32 operations per cell.
    """
    xs, ys = _cell_centre_axes(new, grid)
    u = (xs - old.origin_x) * old.scale_x * grid / old.size - 0.5  # (F,) per column
    v = (ys - old.origin_y) * old.scale_y * grid / old.size - 0.5  # (F,) per row
    u0, u1, gu, fu, inside_u = _bilinear_taps(u, grid)
    v0, v1, gv, fv, inside_v = _bilinear_taps(v, grid)
    b = memory.shape[0]
    m = memory.detach().reshape(b, grid, grid).cpu().numpy()
    rows0, rows1 = m[:, v0], m[:, v1]  # (B,F,F)
    top = rows0[:, :, u0] * gu + rows0[:, :, u1] * fu
    bottom = rows1[:, :, u0] * gu + rows1[:, :, u1] * fu
    out = top * gv[:, None] + bottom * fv[:, None]
    out[:, ~(inside_v[:, None] & inside_u[None, :])] = np.nan
    return torch.from_numpy(out.reshape(b, grid * grid)).to(memory.device)
