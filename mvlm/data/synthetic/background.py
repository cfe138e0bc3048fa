"""Textured, non-uniform backgrounds: blurred colour noise, stripes, gradients, blobs.

Each shot of a sequence crops a moving window out of one texture that is larger than the frame
(the camera pans), so a background is built once per shot and every frame is a slice copy.
Colours are desaturated and mid-dark: objects stay findable, but the texture still produces
edges and blobs that a detector has to ignore.
"""

from __future__ import annotations

import cv2
import numpy as np

BACKGROUND_KINDS = ("noise", "stripes", "gradient", "blobs")
PAN_MARGIN = 0.25  # the texture is (1 + 2·margin) times the frame in each direction


def _muted_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3) float32 BGR colours with low saturation and value 45..170."""
    hsv = np.stack(
        [rng.uniform(0, 180, n), rng.uniform(20, 110, n), rng.uniform(45, 170, n)], axis=1
    ).astype(np.float32)
    hsv_img = np.round(hsv).astype(np.uint8).reshape(1, n, 3)
    return cv2.cvtColor(hsv_img, cv2.COLOR_HSV2BGR).reshape(n, 3).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int, amplitude: float) -> np.ndarray:
    """(h, w, 3) float32 zero-mean colour noise with features about `cell` pixels wide."""
    small = rng.normal(0.0, amplitude, size=(max(2, h // cell), max(2, w // cell), 3)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def make_background(kind: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A (height, width, 3) uint8 BGR texture of `kind`."""
    if kind == "noise":
        base = _muted_colours(rng, 1)[0]
        img = base + _smooth_noise(rng, height, width, int(rng.integers(6, 24)), 32.0)
    elif kind == "stripes":
        a, b = _muted_colours(rng, 2)
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(10, 48)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period)
        mix = (0.5 + 0.5 * np.sin(phase))[..., None]
        img = a * mix + b * (1 - mix) + _smooth_noise(rng, height, width, 16, 12.0)
    elif kind == "gradient":
        a, b = _muted_colours(rng, 2)
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        ramp = xx * np.cos(angle) / width + yy * np.sin(angle) / height
        ramp = ((ramp - ramp.min()) / max(1e-6, float(np.ptp(ramp))))[..., None]
        img = a * ramp + b * (1 - ramp) + _smooth_noise(rng, height, width, 8, 18.0)
    elif kind == "blobs":
        colours = _muted_colours(rng, 8)
        img = np.empty((height, width, 3), np.float32)
        img[:] = colours[0]
        for colour in colours[1:]:
            for _ in range(4):
                centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
                axes = (int(rng.integers(8, max(9, width // 5))), int(rng.integers(8, max(9, height // 5))))
                cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour.tolist(), -1)
        img = cv2.GaussianBlur(img, (0, 0), 3.0) + _smooth_noise(rng, height, width, 6, 10.0)
    else:
        raise ValueError(f"unknown background kind {kind!r} (known: {', '.join(BACKGROUND_KINDS)})")
    # fine grain so that JPEG and the tracker see texture, not flat areas
    img += rng.normal(0.0, 4.0, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def texture_size(width: int, height: int) -> tuple[int, int]:
    """(tex_w, tex_h) of a texture that a frame of (width, height) can pan across."""
    return int(round(width * (1 + 2 * PAN_MARGIN))), int(round(height * (1 + 2 * PAN_MARGIN)))
