"""Text-file readers shared by every benchmark loader.

Annotation files in the wild mix separators (comma, tab, spaces), line ends (LF, CRLF) and
encodings. These readers accept all of them and raise `DataError` naming the file and line
for anything they cannot parse, so a broken file never surfaces as a numpy traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mvlm.data.sequence import DataError

_SEPARATORS = re.compile(r"[,\t ;]+")


def read_text(path: str | Path, required: bool = True) -> str:
    """File content as str: UTF-8 (BOM tolerated), else a clear error naming the file."""
    path = Path(path)
    if not path.is_file():
        if required:
            raise DataError(f"{path}: file not found")
        return ""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def parse_rows(text: str, path: str | Path, ncols: int | None = None) -> np.ndarray:
    """Rows of numbers separated by commas, tabs or spaces -> float64 array (N, ncols).

    Blank lines are skipped. `nan` is accepted (it is the caller's decision whether a NaN box is
    a problem). A row with a different number of values or a non-number raises DataError.
    """
    rows: list[list[float]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = [p for p in _SEPARATORS.split(line) if p]
        try:
            values = [float(p) for p in parts]
        except ValueError as exc:
            raise DataError(f"{path}:{lineno}: not a number in {line!r}") from exc
        if ncols is not None and len(values) != ncols:
            raise DataError(f"{path}:{lineno}: expected {ncols} values, got {len(values)} in {line!r}")
        if rows and len(values) != len(rows[0]):
            raise DataError(f"{path}:{lineno}: expected {len(rows[0])} values like line 1, got {len(values)}")
        rows.append(values)
    if not rows:
        return np.zeros((0, ncols or 4), dtype=np.float64)
    return np.asarray(rows, dtype=np.float64)


def polygons_to_boxes(poly: np.ndarray) -> np.ndarray:
    """VOT 8-value polygons (x1,y1,...,x4,y4) -> axis-aligned x,y,w,h of their bounding box."""
    xs, ys = poly[:, 0::2], poly[:, 1::2]
    x1, y1 = xs.min(axis=1), ys.min(axis=1)
    return np.stack([x1, y1, xs.max(axis=1) - x1, ys.max(axis=1) - y1], axis=1)


def read_boxes(path: str | Path) -> np.ndarray:
    """Ground-truth boxes (N, 4) float64 x,y,w,h from a 4-value or 8-value (polygon) file."""
    values = parse_rows(read_text(path), path)
    if values.shape[1] == 8:
        return polygons_to_boxes(values)
    if values.shape[1] != 4:
        raise DataError(f"{path}: expected 4 (x,y,w,h) or 8 (polygon) values per line, got {values.shape[1]}")
    return values


def read_flags(path: str | Path) -> np.ndarray:
    """0/1 flags, either one per line or comma-separated on one line -> bool array (N,)."""
    values = parse_rows(read_text(path), path)
    flat = values.reshape(-1)
    if not np.isin(flat, (0.0, 1.0)).all():
        bad = flat[~np.isin(flat, (0.0, 1.0))][0]
        raise DataError(f"{path}: flags must be 0 or 1, found {bad!r}")
    return flat.astype(bool)


def read_sentence(path: str | Path, required: bool = True) -> str:
    """First non-empty line of a language file, stripped (no comma truncation)."""
    for line in read_text(path, required=required).splitlines():
        if line.strip():
            return line.strip()
    return ""
