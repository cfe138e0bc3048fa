"""The object vocabulary of the embedded benchmark and the sprites that draw it.

An object is (shape, colour, size, texture). Sizes are classes in fractions of the frame's
short side S = min(W, H); the target's box side sqrt(w·h) therefore spans about 0.03·S
(small) to 0.30·S (large):

    small: diameter d ∈ [0.03, 0.09]·S        large: d ∈ [0.15, 0.30]·S

The gap between the classes keeps "small" and "large" unambiguous even after a scale change
(which stays inside the class range). Textures are drawn only on large objects: stripes a few
pixels apart vanish on a 6-pixel object, and a word the image cannot show would be noise.

Sprites are drawn in BGR (OpenCV's order) with anti-aliased edges and an alpha mask, cached
per (object, diameter in whole pixels) because diameters only change during scale events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

SHAPES = ("circle", "square", "triangle", "cross", "diamond", "star")
# BGR, saturated and bright enough to stand out of the desaturated backgrounds
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (40, 40, 220),
    "green": (60, 190, 40),
    "blue": (230, 90, 40),
    "yellow": (40, 220, 235),
    "purple": (200, 60, 150),
    "white": (240, 240, 240),
}
SIZES = ("small", "large")
TEXTURES = ("plain", "striped", "dotted")
SIZE_RANGES = {"small": (0.03, 0.09), "large": (0.15, 0.30)}  # diameter / short side
COLOUR_JITTER = 16  # per channel, fixed per object: the same word covers a range of tints

_AA_SHIFT = 4  # fixed-point bits for sub-pixel polygon vertices
_ALPHA_VISIBLE = 0.5  # a sprite pixel belongs to the object when its coverage is above this


@dataclass(frozen=True)
class ObjectSpec:
    """One object's identity. `tint` is its jittered BGR colour; `shares` lists the attributes
    (shape/colour/size) it has in common with the target (empty for the target itself)."""

    shape: str
    colour: str
    size: str
    texture: str
    tint: tuple[int, int, int]
    role: str = "distractor"  # "target" | "distractor"
    shares: tuple[str, ...] = field(default=())

    @property
    def triple(self) -> tuple[str, str, str]:
        return (self.shape, self.colour, self.size)

    def describe(self) -> dict:
        return {
            "role": self.role, "shape": self.shape, "colour": self.colour, "size": self.size,
            "texture": self.texture, "tint_bgr": list(self.tint), "shares": list(self.shares),
        }


@dataclass(frozen=True)
class Sprite:
    """An object drawn at one diameter: colour patch (h, w, 3) uint8 BGR, alpha (h, w) float32
    in [0, 1], mask (h, w) bool (alpha > 0.5). The patch is centred on the object's centre:
    top-left = round(centre) - half."""

    patch: np.ndarray
    alpha: np.ndarray
    mask: np.ndarray
    half: int
    # blending terms, precomputed because sprites are pasted every frame:
    # out = background · keep + premultiplied
    keep: np.ndarray  # (h, w, 1) float32, 1 - alpha
    premultiplied: np.ndarray  # (h, w, 3) float32, patch · alpha


def shape_polygons(shape: str, radius: float, centre: float) -> list[np.ndarray]:
    """Vertices (float, pixels) of `shape` with circumradius `radius` around (centre, centre).

    Squares and crosses are shrunk so that all shapes of one size class cover similar areas.
    """
    c = np.array([centre, centre])
    if shape == "square":
        h = radius * 0.82
        return [c + np.array([[-h, -h], [h, -h], [h, h], [-h, h]])]
    if shape == "diamond":
        return [c + np.array([[0, -radius], [radius * 0.72, 0], [0, radius], [-radius * 0.72, 0]])]
    if shape == "triangle":
        angles = np.deg2rad([-90.0, 30.0, 150.0])
        pts = np.stack([np.cos(angles), np.sin(angles)], axis=1) * radius
        pts[:, 1] += radius * 0.25  # centre the box vertically (the centroid sits low)
        return [c + pts]
    if shape == "cross":
        a, b = radius * 0.92, radius * 0.32
        return [c + np.array([[-a, -b], [a, -b], [a, b], [-a, b]]), c + np.array([[-b, -a], [b, -a], [b, a], [-b, a]])]
    if shape == "star":
        angles = np.deg2rad(-90.0 + 36.0 * np.arange(10))
        radii = np.where(np.arange(10) % 2 == 0, radius, radius * 0.45)
        pts = np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
        pts[:, 1] += radius * 0.1
        return [c + pts]
    raise ValueError(f"unknown shape {shape!r} (known: {', '.join(SHAPES)})")


def _coverage(shape: str, diameter: int) -> tuple[np.ndarray, int]:
    """Anti-aliased coverage (h, w) float32 of `shape` at `diameter` px, and the half size."""
    half = diameter // 2 + 2
    side = 2 * half + 1
    canvas = np.zeros((side, side), np.uint8)
    radius = diameter / 2.0
    if shape == "circle":
        scale = 1 << _AA_SHIFT
        cv2.circle(canvas, (half * scale, half * scale), int(round(radius * scale)), 255, -1, cv2.LINE_AA, _AA_SHIFT)
    else:
        polys = [np.round(p * (1 << _AA_SHIFT)).astype(np.int32) for p in shape_polygons(shape, radius, half)]
        # each polygon separately: the cross's two bars overlap and fillPoly would XOR them
        for poly in polys:
            cv2.fillPoly(canvas, [poly], 255, cv2.LINE_AA, _AA_SHIFT)
    return canvas.astype(np.float32) / 255.0, half


def _apply_texture(patch: np.ndarray, texture: str, diameter: int) -> None:
    """Darken stripes or lighten dots inside the patch (in place); plain leaves it as is."""
    if texture == "plain":
        return
    period = max(4, diameter // 5)
    yy, xx = np.mgrid[0 : patch.shape[0], 0 : patch.shape[1]]
    if texture == "striped":
        band = ((yy + xx) // max(2, period // 2)) % 2 == 1  # diagonal stripes
        patch[band] = (patch[band] * 0.45).astype(np.uint8)
    elif texture == "dotted":
        dot = ((yy % period - period / 2) ** 2 + (xx % period - period / 2) ** 2) <= (period / 3.2) ** 2
        patch[dot] = (patch[dot] * 0.4).astype(np.uint8)
    else:
        raise ValueError(f"unknown texture {texture!r} (known: {', '.join(TEXTURES)})")


@lru_cache(maxsize=4096)
def make_sprite(shape: str, tint: tuple[int, int, int], texture: str, diameter: int) -> Sprite:
    """The sprite of one object at `diameter` pixels (>= 2)."""
    diameter = max(2, int(diameter))
    alpha, half = _coverage(shape, diameter)
    patch = np.empty(alpha.shape + (3,), np.uint8)
    patch[:] = np.asarray(tint, np.uint8)
    _apply_texture(patch, texture, diameter)
    alpha3 = alpha[..., None]
    return Sprite(
        patch=patch, alpha=alpha, mask=alpha > _ALPHA_VISIBLE, half=half,
        keep=1.0 - alpha3, premultiplied=patch.astype(np.float32) * alpha3 + 0.5,  # +0.5: round on cast
    )


def jitter_tint(colour: str, rng: np.random.Generator) -> tuple[int, int, int]:
    base = np.asarray(COLOURS[colour], np.int32)
    tint = np.clip(base + rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, size=3), 0, 255)
    return tuple(int(v) for v in tint)


def diameter_range(size: str, short_side: int) -> tuple[float, float]:
    lo, hi = SIZE_RANGES[size]
    return lo * short_side, hi * short_side
