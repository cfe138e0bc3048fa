"""Search/template views of a frame, shared by training and the tracker.

A *view* is a square image the network sees, cut from a frame by an axis-aligned affine map
``view_px = (image_px - origin) * scale`` (per axis). Local views are square crops around a box
(side = ceil(sqrt(w*h) * factor), zero padding outside the frame); global views show the whole
frame, either stretched to a square (the reference) or letterboxed (aspect kept, zero padding).

Network input: RGB uint8 -> float /255 -> ImageNet mean/std -> the 3 channels duplicated to 6
(docs/paper-notes.md §1.2 MULTI_MODAL_VISION).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True)
class ViewTransform:
    """``view_px = (image_px - origin) * scale`` per axis; `size` is the view side in pixels."""

    origin_x: float
    origin_y: float
    scale_x: float
    scale_y: float
    size: int

    def to_image(self, box_xywh: np.ndarray) -> np.ndarray:
        """Boxes (..., 4) x,y,w,h in view pixels -> image pixels."""
        b = np.asarray(box_xywh, dtype=np.float64)
        out = np.empty_like(b)
        out[..., 0] = b[..., 0] / self.scale_x + self.origin_x
        out[..., 1] = b[..., 1] / self.scale_y + self.origin_y
        out[..., 2] = b[..., 2] / self.scale_x
        out[..., 3] = b[..., 3] / self.scale_y
        return out

    def to_view(self, box_xywh: np.ndarray) -> np.ndarray:
        """Boxes (..., 4) x,y,w,h in image pixels -> view pixels."""
        b = np.asarray(box_xywh, dtype=np.float64)
        out = np.empty_like(b)
        out[..., 0] = (b[..., 0] - self.origin_x) * self.scale_x
        out[..., 1] = (b[..., 1] - self.origin_y) * self.scale_y
        out[..., 2] = b[..., 2] * self.scale_x
        out[..., 3] = b[..., 3] * self.scale_y
        return out


def crop_side(box_xywh, factor: float) -> int:
    """Side of a square crop around a box: ceil(sqrt(w*h) * factor), at least 1."""
    w, h = float(box_xywh[2]), float(box_xywh[3])
    return max(1, int(math.ceil(math.sqrt(max(w, 0.0) * max(h, 0.0)) * factor)))


def _warp(image: np.ndarray, t: ViewTransform) -> np.ndarray:
    import cv2

    m = np.array(
        [[t.scale_x, 0.0, -t.origin_x * t.scale_x], [0.0, t.scale_y, -t.origin_y * t.scale_y]],
        dtype=np.float64,
    )
    return cv2.warpAffine(
        image, m, (t.size, t.size), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
    )


def local_view(image: np.ndarray, center_xy, side: int, out_size: int) -> tuple[np.ndarray, ViewTransform]:
    """Square crop of `side` px centred on `center_xy`, resized to `out_size` (zero padding)."""
    side = max(1, int(side))
    x1 = float(round(center_xy[0] - side * 0.5))
    y1 = float(round(center_xy[1] - side * 0.5))
    s = out_size / side
    t = ViewTransform(x1, y1, s, s, out_size)
    return _warp(image, t), t


def box_view(image: np.ndarray, box_xywh, factor: float, out_size: int) -> tuple[np.ndarray, ViewTransform]:
    """Local view around a box (search region or template), side = ceil(sqrt(wh)*factor)."""
    b = np.asarray(box_xywh, dtype=np.float64)
    center = (b[0] + b[2] / 2.0, b[1] + b[3] / 2.0)
    return local_view(image, center, crop_side(b, factor), out_size)


def global_view(image: np.ndarray, out_size: int, letterbox: bool = False) -> tuple[np.ndarray, ViewTransform]:
    """The whole frame as a square view: stretched per axis, or letterboxed (aspect kept)."""
    h, w = image.shape[:2]
    if not letterbox:
        t = ViewTransform(0.0, 0.0, out_size / w, out_size / h, out_size)
    else:
        s = out_size / max(w, h)
        # centre the frame in the square; origin is where view pixel 0 falls in the image
        ox = -(out_size / s - w) / 2.0
        oy = -(out_size / s - h) / 2.0
        t = ViewTransform(ox, oy, s, s, out_size)
    return _warp(image, t), t


def tile_starts(length: int, side: float) -> list[float]:
    """Window starts along one axis: windows of `side` px at a stride of at most side/2 that
    cover [0, length), the first at 0 and the last at length − side; one centred window when
    the frame is not longer than the window."""
    if length <= side:
        return [(length - side) / 2.0]
    count = int(math.ceil((length - side) / (side / 2.0))) + 1
    return [float(v) for v in np.linspace(0.0, length - side, count)]


def tile_views(image: np.ndarray, out_size: int, zoom: float) -> list[tuple[np.ndarray, ViewTransform]]:
    """The whole frame as overlapping square windows of ``out_size / zoom`` frame px, each resized
    to `out_size` (zoom 1 = the frame's own pixels), row by row.

    One whole-frame view shrinks a small target below an encoder token; windows keep it at the
    scale local crops show it, for the price of one network pass per window.
    """
    if zoom <= 0:
        raise ValueError(f"tile zoom must be > 0, got {zoom}")
    h, w = image.shape[:2]
    side = out_size / zoom
    return [window_view(image, (x0, y0), zoom, out_size) for y0 in tile_starts(h, side) for x0 in tile_starts(w, side)]


def window_view(image: np.ndarray, origin_xy, zoom: float, out_size: int) -> tuple[np.ndarray, ViewTransform]:
    """Square window with its top-left corner at `origin_xy` (frame px, not rounded) and a side of
    ``out_size / zoom`` frame px, resized to `out_size` (zero padding outside the frame)."""
    t = ViewTransform(float(origin_xy[0]), float(origin_xy[1]), zoom, zoom, out_size)
    return _warp(image, t), t


@functools.lru_cache(maxsize=1)
def _normalization_table() -> np.ndarray:
    """(1, 256, 3) float32: entry [0, v, c] = (v/255 − mean_c)/std_c, computed with the same
    float32 operations as the per-pixel formula, so a table lookup is bitwise equal to it."""
    levels = np.arange(256, dtype=np.float32)[:, None]
    return np.ascontiguousarray(((levels / 255.0 - IMAGENET_MEAN) / IMAGENET_STD)[None], dtype=np.float32)


def to_network_input(views: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """RGB uint8 views (H,W,3) or (B,H,W,3) -> float tensor (B, 6, H, W), ImageNet-normalized:
    x = (v/255 − mean)/std per channel, the 3 channels duplicated to 6.

    A uint8 pixel has 256 values, so the normalization is one table lookup (cv2.LUT) instead
    of three float passes; the result is bitwise equal to the formula.
    """
    import cv2

    arr = np.asarray(views)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"views must be RGB (H,W,3) or (B,H,W,3) arrays, got shape {arr.shape}")
    if arr.dtype != np.uint8:  # float views (not from a decoded frame): the formula itself
        x = (arr.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        return torch.cat([x, x], dim=1)
    b, h, w, _ = arr.shape
    out = np.empty((b, 6, h, w), dtype=np.float32)
    table = _normalization_table()
    for i in range(b):
        normalized = cv2.LUT(np.ascontiguousarray(arr[i]), table)  # (H,W,3) float32
        out[i, :3] = normalized.transpose(2, 0, 1)
    out[:, 3:] = out[:, :3]
    return torch.from_numpy(out)
