"""Per-sequence result files in the pytracking layout: read with pandas, written atomically.

Layout: ``<dir>/<seq>.txt`` with one ``x,y,w,h`` row per frame ((x, y) = top-left corner, pixels)
and an optional ``<dir>/<seq>_meta.json`` (e.g. ``{"frame1_box": [x, y, w, h], "init": "language"}``).

Reading accepts tab, comma, semicolon or space separators, ints or floats, CRLF line ends, NaN,
and never rounds (the reference reader, ``np.loadtxt`` with tab then comma, does not either).
`read_box_files` joins the bytes of all files and parses them with ONE ``pandas.read_csv`` call
(float64, correctly rounded like ``float()``; the rows per file come from counting line ends).
When that call declines (NaN, blank lines, spaces, semicolons, a broken row), each file is
parsed on its own, and a file that is still not a table of numbers raises `ResultsError`
naming the file and line (``mvlm.data.benchmarks.common.parse_rows``).
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from mvlm.atomic import write_text
from mvlm.data.benchmarks.common import parse_rows, read_text
from mvlm.data.sequence import DataError


class ResultsError(DataError):
    """A result file is missing, unreadable or malformed. The message names the file."""


def result_path(directory: str | Path, sequence: str) -> Path:
    return Path(directory) / f"{sequence}.txt"


def meta_path(directory: str | Path, sequence: str) -> Path:
    return Path(directory) / f"{sequence}_meta.json"


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
    write_text(path, format_boxes(boxes, truncate=truncate))
    if meta is not None:
        write_text(meta_path(directory, sequence), json.dumps(meta, indent=1, default=_jsonable) + "\n")
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


def read_box_files(paths: Iterable[str | Path], ncols: int = 4) -> list[np.ndarray]:
    """Many files of `ncols` numbers per row -> list of float64 arrays (N_i, ncols), in order.

    One pandas call for all files; if it declines, every file alone (the first broken one
    raises ResultsError naming the file and line).
    """
    paths = list(paths)
    raws = [_read_bytes(p) for p in paths]
    arrays = _parse_joined(raws, ncols)
    if arrays is None:
        arrays = [_parse_one(path, raw, ncols) for path, raw in zip(paths, raws)]
    return arrays


def _read_bytes(path: str | Path) -> bytes:
    """The whole file; a missing or unreadable file is a ResultsError naming it."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise ResultsError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ResultsError(f"{path}: is a directory, not a result file") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror})") from exc


def _parse_joined(raws: list[bytes], ncols: int) -> Optional[list[np.ndarray]]:
    """The files' bytes joined and parsed by one ``pandas.read_csv`` -> one array per file, or
    None when pandas declines or the row counts disagree (the caller then parses file by file).

    Separator: tab or comma (tabs become commas when a file mixes both); space-only files are
    left to the tolerant parser. A blank line, a short or long row, a quote, NaN or any text
    makes pandas raise or the counts disagree.
    """
    import pandas as pd  # lazy: importing pandas costs more than most callers' whole read

    raws = [r.replace(b"\r", b"") for r in raws]  # CRLF: a lone CR must not shift the row counts
    raws = [r if not r or r.endswith(b"\n") else r + b"\n" for r in raws]
    rows = [r.count(b"\n") for r in raws]
    data = b"".join(raws)
    if not data:
        return [np.zeros((0, ncols)) for _ in raws]
    if b"\t" in data and b"," in data:
        data = data.replace(b"\t", b",")
    if b"\t" not in data and b"," not in data and ncols > 1:
        return None
    try:
        with warnings.catch_warnings():
            # pandas only warns (and drops values) when every row has too many fields
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.BytesIO(data), sep="\t" if b"," not in data else ",", header=None,
                                names=range(ncols), index_col=False, dtype=np.float64, na_filter=False,
                                quoting=csv.QUOTE_NONE, engine="c")
    except (ValueError, TypeError, OverflowError, pd.errors.ParserError, pd.errors.ParserWarning):
        return None
    if len(frame) != sum(rows) or frame.shape[1] != ncols:
        return None
    return np.split(frame.to_numpy(dtype=np.float64), np.cumsum(rows)[:-1])


def _parse_one(path, raw: bytes, ncols: int) -> np.ndarray:
    """One file: the pandas parse, else the tolerant line parser (NaN, spaces, blank lines), which
    raises ResultsError naming the file and line of a broken row or a non-number."""
    arrays = _parse_joined([raw], ncols)
    if arrays is not None:
        return arrays[0]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        return parse_rows(text, path, ncols=ncols)
    except DataError as exc:
        raise ResultsError(str(exc)) from exc
