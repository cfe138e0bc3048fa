"""Image decoding with OpenCV; every failure names the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mvlm.data.sequence import DataError


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3)."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: frame file not found")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DataError(f"{path}: cannot decode image (corrupt or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
