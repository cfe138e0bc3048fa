"""Turning a `SequencePlan` into frames: background crop, objects, occluders, blur, light, noise.

Everything per sequence that does not change per frame (textures, occluder patches, noise
patterns, blur kernels) is built once, so a frame costs a slice copy, a few sprite blends and
optional whole-frame filters. Frames are BGR internally (OpenCV's order, what JPEG writing
wants); `render_frame_rgb` gives the project's RGB convention.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from mvlm.data.synthetic.background import make_background, texture_size
from mvlm.data.synthetic.plan import SequencePlan
from mvlm.data.synthetic.vocab import make_sprite

NOISE_PATTERNS = 6  # distinct noise fields, cycled; enough that the eye sees no repetition


@lru_cache(maxsize=64)
def motion_kernel(length: int, angle_deg: int) -> np.ndarray:
    """(length, length) float32 line kernel along `angle_deg`, summing to 1."""
    kernel = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = np.cos(np.radians(angle_deg)) * c, np.sin(np.radians(angle_deg)) * c
    cv2.line(kernel, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1)
    return kernel / kernel.sum()


def blend_sprite(frame: np.ndarray, sprite, centre: np.ndarray) -> None:
    """Alpha-blend `sprite` into `frame` (in place) centred on round(centre); clipped at borders."""
    H, W = frame.shape[:2]
    cx, cy = np.round(centre).astype(int)
    x0, y0 = cx - sprite.half, cy - sprite.half
    h, w = sprite.alpha.shape
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    sy, sx = slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0)
    region = frame[fy0:fy1, fx0:fx1]
    blended = region * sprite.keep[sy, sx]
    blended += sprite.premultiplied[sy, sx]
    region[:] = blended.astype(np.uint8)


class SequenceRenderer:
    """Renders the frames of one plan; build once, call `frame(t)` for t = 0..F-1."""

    def __init__(self, plan: SequencePlan):
        self.plan = plan
        tex_w, tex_h = texture_size(plan.width, plan.height)
        self.textures = [
            make_background(shot.background, tex_h, tex_w, np.random.default_rng(shot.texture_seed))
            for shot in plan.shots
        ]
        self.shot_index = np.zeros(plan.frames, int)
        for i, shot in enumerate(plan.shots):
            self.shot_index[shot.first : shot.last + 1] = i
        self.occluder_patches = [self._occluder_patch(occ) for occ in plan.occluders]
        self.noise = self._noise_patterns() if plan.noisy.any() else []
        # distractors first: the target is never hidden by a distractor, only by occluders
        self.draw_order = list(range(1, len(plan.objects))) + [0]

    def _occluder_patch(self, occ) -> np.ndarray:
        x0, y0, x1, y1 = occ.rect
        rng = np.random.default_rng(occ.texture_seed)
        kind = "stripes" if occ.kind == "band" else ("noise", "blobs", "gradient")[int(rng.integers(3))]
        patch = make_background(kind, max(1, y1 - y0), max(1, x1 - x0), rng)
        cv2.rectangle(patch, (0, 0), (patch.shape[1] - 1, patch.shape[0] - 1), (20, 20, 20), 1)
        return patch

    def _noise_patterns(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.plan.seed, self.plan.index, 303])
        shape = (self.plan.height, self.plan.width, 3)
        return [
            np.round(rng.standard_normal(shape, dtype=np.float32) * self.plan.noise_sigma).astype(np.int16)
            for _ in range(NOISE_PATTERNS)
        ]

    def frame(self, t: int) -> np.ndarray:
        """Frame t as BGR uint8 (H, W, 3)."""
        plan = self.plan
        ox, oy = plan.bg_offsets[t]
        image = self.textures[self.shot_index[t]][oy : oy + plan.height, ox : ox + plan.width].copy()
        for k in self.draw_order:
            obj = plan.objects[k]
            sprite = make_sprite(obj.shape, obj.tint, obj.texture, int(round(plan.diameters[t, k])))
            blend_sprite(image, sprite, plan.centres[t, k])
        for occ, patch in zip(plan.occluders, self.occluder_patches):
            if occ.first <= t <= occ.last:
                self._paste(image, patch, occ.rect)
        if plan.blur_length[t] >= 2:
            kernel = motion_kernel(int(plan.blur_length[t]), int(round(plan.blur_angle[t])) % 180)
            image = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)
        if plan.gain[t] != 1.0:
            image = cv2.convertScaleAbs(image, alpha=float(plan.gain[t]))
        if plan.noisy[t]:
            noisy = image.astype(np.int16) + self.noise[t % NOISE_PATTERNS]
            image = np.clip(noisy, 0, 255).astype(np.uint8)
        return image

    @staticmethod
    def _paste(image: np.ndarray, patch: np.ndarray, rect) -> None:
        H, W = image.shape[:2]
        x0, y0, x1, y1 = rect
        fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
        if fx1 > fx0 and fy1 > fy0:
            image[fy0:fy1, fx0:fx1] = patch[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]

    def frame_rgb(self, t: int) -> np.ndarray:
        """Frame t as RGB uint8 (H, W, 3), the project's frame convention."""
        return cv2.cvtColor(self.frame(t), cv2.COLOR_BGR2RGB)
