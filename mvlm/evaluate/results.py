"""Per-sequence result files in the pytracking layout, read fast and written atomically.

Layout: ``<dir>/<seq>.txt`` with one ``x,y,w,h`` row per frame ((x, y) = top-left corner, pixels)
and an optional ``<dir>/<seq>_meta.json`` (e.g. ``{"frame1_box": [x, y, w, h], "init": "language"}``).

Reading accepts tab, comma or space separators, ints or floats, CRLF line ends, and never rounds
(the reference reader does not either). Many files are parsed in one pass: the bytes of all
files are joined and go through ONE pandas C-parser call (float64, correctly rounded, so a value
that sits exactly on a threshold is read to the same double as the reference); only files that
fail that call (NaN, spaces, blank lines, broken rows) are parsed one by one, which also finds
the file and line to name in the error.
"""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from mvlm.data.benchmarks.common import parse_rows, read_text
from mvlm.data.sequence import DataError

_TAB_TO_COMMA = bytes.maketrans(b"\t", b",")
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


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
    return np.ascontiguousarray(read_box_files([path])[0])


@dataclass
class BoxBlock:
    """The rows of many files stacked in file order.

    values: (F, ncols) float64, column-major (each column contiguous: the per-frame maths reads
    columns); offsets: (S + 1,) int64, file i holds rows ``offsets[i]:offsets[i + 1]``.
    """

    values: np.ndarray
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def parts(self) -> list[np.ndarray]:
        """One (N_i, ncols) view per file."""
        bounds = self.offsets.tolist()
        return [self.values[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    @classmethod
    def stack(cls, arrays: Sequence[np.ndarray], ncols: int) -> "BoxBlock":
        lengths = [len(a) for a in arrays]
        offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = np.empty((int(offsets[-1]), ncols), order="F")
        if arrays:
            np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1, ncols) for a in arrays], out=values)
        return cls(values, offsets)


def _read_bytes(path: str) -> bytes:
    """The whole file. os.open + fstat + one read of the known size: about half the cost of
    ``open().read()`` on small files, which matters at 1400 files per scoring call."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        raise ResultsError(f"{path}: file not found") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)
        if len(data) > size:  # grew since fstat: read to the end
            parts = [data]
            while chunk := os.read(fd, 1 << 20):
                parts.append(chunk)
            data = b"".join(parts)
        return data
    except IsADirectoryError:
        raise ResultsError(f"{path}: is a directory, not a result file") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror})") from exc
    finally:
        os.close(fd)


def _parse_joined(raws: list[bytes], ncols: int) -> Optional[BoxBlock]:
    """All files in ONE pandas C-parser call, or None when any file needs the careful parser.

    The files are joined (each ends in a newline) and parsed as float64 (pandas >= 3.1 parses
    correctly rounded, like the reference's ``float()``; ints come out exact). Row counts per
    file come from counting newlines; a blank line, a short or long row, a quote, a NaN or any
    text makes pandas raise or the counts disagree, and the caller falls back.
    """
    import pandas as pd  # lazy: importing pandas costs more than most callers' whole read

    raws = [r if not r or r.endswith(b"\n") else r + b"\n" for r in raws]
    data = b"".join(raws)
    if b"\r" in data:  # CRLF files: drop CR per file so a lone CR cannot shift the row counts
        raws = [r.replace(b"\r", b"") for r in raws]
        data = b"".join(raws)
    rows = [r.count(b"\n") for r in raws]
    offsets = np.zeros(len(raws) + 1, dtype=np.int64)
    np.cumsum(rows, out=offsets[1:])
    if not data:
        return BoxBlock(np.zeros((0, ncols), order="F"), offsets)
    has_tab, has_comma = b"\t" in data, b"," in data
    if has_tab and has_comma:
        data = data.translate(_TAB_TO_COMMA)
    elif not (has_tab or has_comma) and ncols > 1:
        return None  # space-separated: the tolerant parser
    try:
        with warnings.catch_warnings():
            # pandas only warns (and drops values) when every row has too many fields
            warnings.simplefilter("error", pd.errors.ParserWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            frame = pd.read_csv(
                io.BytesIO(data), sep="\t" if has_tab and not has_comma else ",", header=None,
                names=range(ncols), index_col=False, dtype=np.float64, na_filter=False,
                quoting=csv.QUOTE_NONE, engine="c",
            )
    except (ValueError, TypeError, OverflowError, pd.errors.ParserError, pd.errors.ParserWarning):
        return None
    if len(frame) != offsets[-1] or frame.shape[1] != ncols:
        return None
    values = np.empty((len(frame), ncols), order="F")  # owns its memory: scoring recognises its row views
    for j in range(ncols):
        values[:, j] = frame[j].to_numpy()
    return BoxBlock(values, offsets)


def _parse_files(paths: list[str], raws: list[bytes], ncols: int) -> list[np.ndarray]:
    """Bisect until the files that need the tolerant per-file parser are found: one bad file
    among S costs about 2·log2(S) joined parses, not S separate ones."""
    block = _parse_joined(raws, ncols)
    if block is not None:
        return block.parts()
    if len(raws) == 1:
        return [_slow_parse(paths[0], ncols)]  # NaN, spaces, blank lines; or raises naming the line
    mid = len(raws) // 2
    return _parse_files(paths[:mid], raws[:mid], ncols) + _parse_files(paths[mid:], raws[mid:], ncols)


def _slow_parse(path, ncols: int) -> np.ndarray:
    path = Path(path)
    try:
        return parse_rows(read_text(path), path, ncols=ncols)
    except DataError as exc:
        raise ResultsError(str(exc)) from exc


def read_box_block(paths: Iterable[str | Path], ncols: int = 4) -> BoxBlock:
    """Many files of `ncols` numbers per row -> one `BoxBlock` (rows stacked in file order).

    Accepts tab, comma or space separators, ints or floats, CRLF, NaN; never rounds. The common
    encodings (tab-int from ``save_bb``, comma ints, ``%.4f`` comma floats) are parsed in one
    call for all files; anything else goes through the tolerant per-file parser, which raises
    ResultsError naming the file and line for a malformed row or a non-number.
    """
    paths = [os.fspath(p) for p in paths]  # plain strings: pathlib costs more than the read here
    raws = [_read_bytes(p) for p in paths]
    block = _parse_joined(raws, ncols)
    if block is not None:
        return block
    return BoxBlock.stack(_parse_files(paths, raws, ncols), ncols)


def read_box_files(paths: Iterable[str | Path], ncols: int = 4) -> list[np.ndarray]:
    """Many files of `ncols` numbers per row -> list of float64 arrays (N_i, ncols), in order
    (views into one `read_box_block`). A missing or malformed file raises ResultsError."""
    return read_box_block(paths, ncols).parts()
