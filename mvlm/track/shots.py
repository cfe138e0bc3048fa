"""Shot-cut detection from frame thumbnails.

An edited video (a film, a synthetic sequence with camera cuts) can jump to another shot between
two frames: the target is elsewhere and the local crop around the last box shows an unrelated
scene. Within a shot consecutive frames look alike at a coarse scale even under motion, noise
and lighting changes; across a cut they do not. The test is the Pearson correlation of two small
grey thumbnails:

    r = <a − mean(a), b − mean(b)> / (‖a − mean(a)‖ · ‖b − mean(b)‖)

which ignores a global change of brightness or contrast (a lighting change is not a cut).
"""

from __future__ import annotations

import cv2
import numpy as np

THUMBNAIL_SIZE = (32, 24)  # (width, height): coarse enough that noise and small motion average out


def shot_thumbnail(frame: np.ndarray) -> np.ndarray:
    """RGB uint8 frame (H, W, 3) -> zero-mean, unit-norm grey thumbnail (24, 32) float32
    (all zeros for a flat frame)."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    thumb = cv2.resize(grey, THUMBNAIL_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
    thumb -= thumb.mean()
    norm = float(np.linalg.norm(thumb))
    return thumb / norm if norm > 1e-6 else np.zeros_like(thumb)


def thumbnail_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two `shot_thumbnail`s, in [−1, 1]; 1.0 when either frame is flat (no evidence
    of a cut)."""
    if not a.any() or not b.any():
        return 1.0
    return float(np.clip((a * b).sum(), -1.0, 1.0))
