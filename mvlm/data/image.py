"""Image decoding with OpenCV; every failure names the file."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from mvlm.data.sequence import DataError

T = TypeVar("T")
R = TypeVar("R")


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: frame file not found")
    return decode_rgb(np.fromfile(str(path), dtype=np.uint8), str(path))


def decode_rgb(data: bytes | np.ndarray, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, ...) to RGB uint8 (H, W, 3)."""
    import cv2

    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    direct = hasattr(cv2, "IMREAD_COLOR_RGB")  # OpenCV >= 4.10 decodes straight to RGB
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR_RGB if direct else cv2.IMREAD_COLOR) if buf.size else None
    if image is None:
        raise DataError(f"{name}: cannot decode image (corrupt or not an image)")
    return image if direct else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def prefetched(items: Iterable[T], load: Callable[[T], R], depth: int = 2) -> Iterator[R]:
    """``load(item)`` for each item, in order, computed up to `depth` items ahead on one
    background thread.

    Frame decoding (OpenCV releases the GIL) then overlaps the tracker's work on the previous
    frame instead of adding to it. An exception from `load` is raised when its item is reached,
    so every earlier result is still delivered. depth 0 = no thread (plain sequential loads).
    """
    if depth <= 0:
        for item in items:
            yield load(item)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    pending: deque = deque()
    iterator = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mvlm-prefetch") as pool:
        try:
            for item in iterator:
                pending.append(pool.submit(load, item))
                if len(pending) > depth:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # the consumer stopped early: drop what was read ahead
                future.cancel()
