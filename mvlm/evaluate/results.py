"""Per-sequence result files in the pytracking layout, read fast and written atomically.

Layout: ``<dir>/<seq>.txt`` with one ``x,y,w,h`` row per frame ((x, y) = top-left corner, pixels)
and an optional ``<dir>/<seq>_meta.json`` (e.g. ``{"frame1_box": [x, y, w, h], "init": "language"}``).

Reading accepts tab, comma or space separators, ints or floats, CRLF line ends, and never rounds
(the reference reader does not either). Many files are parsed in one pass: integer files (what
the field's ``save_bb`` writes) go through one pandas C-parser call on the concatenated bytes;
float files go through numpy's correctly-rounded parser, so a value that sits exactly on a
threshold is read to the same double as the reference.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from mvlm.data.benchmarks.common import parse_rows, read_text
from mvlm.data.sequence import DataError

_TAB_TO_COMMA = bytes.maketrans(b"\t", b",")
_FLOAT_MARKERS = (b".", b"e", b"E", b"n", b"N", b"i", b"I")


class ResultsError(DataError):
    """A result file is missing, unreadable or malformed. The message names the file."""


def result_path(directory: str | Path, sequence: str) -> Path:
    return Path(directory) / f"{sequence}.txt"


def meta_path(directory: str | Path, sequence: str) -> Path:
    return Path(directory) / f"{sequence}_meta.json"


def _atomic_write_text(path: Path, text: str) -> None:
    # tmp + os.replace: a reader never sees a half-written file, even if the writer is killed
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def format_boxes(boxes: np.ndarray, truncate: bool = False) -> str:
    """Rows ``x,y,w,h``. `truncate=True` mimics pytracking ``save_bb``: ``astype(int)`` (toward
    zero), tab-separated ``%d``; otherwise comma-separated floats with 4 decimals."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    buf = io.StringIO()
    if truncate:
        if not np.isfinite(boxes).all():
            raise ResultsError("cannot write NaN/inf boxes as integers")
        np.savetxt(buf, boxes.astype(np.int64), delimiter="\t", fmt="%d")
    else:
        np.savetxt(buf, boxes, delimiter=",", fmt="%.4f")
    return buf.getvalue()


def write_results(
    directory: str | Path,
    sequence: str,
    boxes: np.ndarray,
    meta: Optional[dict] = None,
    truncate: bool = False,
) -> Path:
    """Write ``<directory>/<sequence>.txt`` (+ ``<sequence>_meta.json``) atomically.

    boxes: (N, 4) x, y, w, h in pixels. Returns the path of the boxes file.
    """
    path = result_path(directory, sequence)
    _atomic_write_text(path, format_boxes(boxes, truncate=truncate))
    if meta is not None:
        _atomic_write_text(meta_path(directory, sequence), json.dumps(meta, indent=1, default=_jsonable) + "\n")
    return path


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def read_meta(directory: str | Path, sequence: str) -> dict:
    """The optional meta JSON of one sequence ({} when absent); clear error when corrupt."""
    path = meta_path(directory, sequence)
    if not path.is_file():
        return {}
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc


def read_results(path: str | Path) -> np.ndarray:
    """One result file -> (N, 4) float64 x, y, w, h. Missing or malformed file -> ResultsError."""
    return read_box_files([path])[0]


def _normalized(raw: bytes) -> Optional[bytes]:
    """File bytes as comma-separated rows ending in one newline, or None when the file needs the
    slow tolerant parser (spaces, semicolons, blank lines)."""
    data = raw.replace(b"\r", b"").translate(_TAB_TO_COMMA).strip(b"\n")
    if b" " in data or b";" in data or b"\n\n" in data or data.startswith(b"\xef\xbb\xbf"):
        return None
    return data + b"\n" if data else b""


def _slow_parse(path, ncols: int) -> np.ndarray:
    path = Path(path)
    try:
        return parse_rows(read_text(path), path, ncols=ncols)
    except DataError as exc:
        raise ResultsError(str(exc)) from exc


def _parse_int_block(chunks: list[bytes], ncols: int) -> Optional[np.ndarray]:
    import pandas as pd

    try:
        frame = pd.read_csv(
            io.BytesIO(b"".join(chunks)), header=None, names=list(range(ncols)), dtype=np.int64, engine="c"
        )
    except (ValueError, TypeError, pd.errors.ParserError):
        return None
    return frame.to_numpy(dtype=np.float64)


def read_box_files(paths: Iterable[str | Path], ncols: int = 4) -> list[np.ndarray]:
    """Many files of `ncols` numbers per row -> list of float64 arrays (N_i, ncols), in order.

    Integer-only files are concatenated and parsed in one call; a file whose per-row value
    count is not `ncols`, or that contains a non-number, raises ResultsError naming the file
    and line (found by the tolerant per-file parser).
    """
    paths = [os.fspath(p) for p in paths]  # plain strings: pathlib costs more than the read here
    out: list[Optional[np.ndarray]] = [None] * len(paths)
    int_idx, int_chunks, int_rows = [], [], []
    for i, path in enumerate(paths):
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            raise ResultsError(f"{path}: result file not found") from None
        except OSError as exc:
            raise ResultsError(f"{path}: cannot read ({exc.strerror})") from exc
        data = _normalized(raw)
        if data is None:
            out[i] = _slow_parse(path, ncols)
            continue
        if not data:
            out[i] = np.zeros((0, ncols), dtype=np.float64)
            continue
        rows = data.count(b"\n")
        if data.count(b",") != (ncols - 1) * rows:
            out[i] = _slow_parse(path, ncols)  # raises with the offending line
            continue
        if any(m in data for m in _FLOAT_MARKERS):
            out[i] = _parse_float_file(path, data, rows, ncols)
            continue
        int_idx.append(i)
        int_chunks.append(data)
        int_rows.append(rows)
    if int_idx:
        block = _parse_int_block(int_chunks, ncols)
        if block is None or len(block) != sum(int_rows):
            for i in int_idx:  # locate the bad file with the tolerant parser
                out[i] = _slow_parse(paths[i], ncols)
        else:
            for i, part in zip(int_idx, np.split(block, np.cumsum(int_rows)[:-1])):
                out[i] = part
    return out  # type: ignore[return-value]


def _parse_float_file(path, data: bytes, rows: int, ncols: int) -> np.ndarray:
    # np.fromstring uses the C library's correctly rounded strtod (same doubles as the reference)
    try:
        values = np.fromstring(data.replace(b",", b" ").replace(b"\n", b" ").decode("ascii"), sep=" ")
    except (ValueError, UnicodeDecodeError):
        return _slow_parse(path, ncols)
    if values.size != rows * ncols:
        return _slow_parse(path, ncols)
    return values.reshape(rows, ncols)
