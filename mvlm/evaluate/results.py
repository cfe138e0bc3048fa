"""Per-sequence result files in the pytracking layout, read fast and written atomically.

Layout: ``<dir>/<seq>.txt`` with one ``x,y,w,h`` row per frame ((x, y) = top-left corner, pixels)
and an optional ``<dir>/<seq>_meta.json`` (e.g. ``{"frame1_box": [x, y, w, h], "init": "language"}``).

Reading accepts tab, comma, semicolon or space separators, ints or floats, CRLF line ends, and
never rounds (the reference reader does not either). Many files are parsed in one pass over
their joined bytes:

* compiled (numba, the default): plain decimals ``[+-]digits[.digits]`` with a mantissa of at
  most 2^53 and at most 22 decimals are read as ``mantissa / 10^k``, one IEEE division of two
  exact doubles, hence correctly rounded: the same double as Python's ``float()``;
* numpy fallback (numba missing or ``MVLM_NO_NUMBA=1``), and for the files the compiled parser
  declines (exponents, NaN, long mantissas, broken rows): ONE pandas C-parser call (float64,
  correctly rounded); only files that fail that too (NaN, spaces, blank lines, broken rows) are
  parsed one by one, which also finds the file and line to name in the error.
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

from mvlm.atomic import write_text
from mvlm.data.benchmarks.common import parse_rows, read_text
from mvlm.data.sequence import DataError
from mvlm.evaluate.metrics import compiled

_TAB_TO_COMMA = bytes.maketrans(b"\t", b",")
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_READ_GUESS_PER_FILE = 1 << 15  # bytes reserved per file (a 2000-frame box file is ~30 KB); pages never touched are free
_READ_MIN_BUFFER = 1 << 20


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


def _read_files(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """All files back to back in one buffer -> (data (B,) uint8, starts (S + 1,) int64 byte offsets).

    Each file is read straight into the buffer (open, readv, close): no bytes object per
    file and no join. The buffer is a numpy array, which numpy backs with huge pages, so filling
    it costs a handful of page faults instead of one per 4 KiB (a few ms per scoring call).
    """
    buf = np.empty(_READ_GUESS_PER_FILE * len(paths) + _READ_MIN_BUFFER, dtype=np.uint8)
    view, pos = memoryview(buf), 0
    starts = np.zeros(len(paths) + 1, dtype=np.int64)
    for i, path in enumerate(paths):
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            raise ResultsError(f"{path}: file not found") from None
        except OSError as exc:
            raise ResultsError(f"{path}: cannot read ({exc.strerror})") from exc
        try:
            while True:
                if pos == len(buf):  # more bytes than guessed: grow geometrically
                    buf = np.concatenate([buf, np.empty(len(buf), dtype=np.uint8)])
                    view = memoryview(buf)
                room = len(buf) - pos
                n = os.readv(fd, [view[pos:]])
                pos += n
                if n < room:  # a regular file reads short only at its end: no extra read for EOF
                    break
        except IsADirectoryError:
            raise ResultsError(f"{path}: is a directory, not a result file") from None
        except OSError as exc:
            raise ResultsError(f"{path}: cannot read ({exc.strerror})") from exc
        finally:
            os.close(fd)
        starts[i + 1] = pos
    data = buf[:pos]
    data.flags.writeable = False  # read-only like np.frombuffer(bytes): one compiled signature for both
    return data, starts


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
        return [_slow_parse(paths[0], raws[0], ncols)]  # NaN, spaces, blank lines; or raises naming the line
    mid = len(raws) // 2
    return _parse_files(paths[:mid], raws[:mid], ncols) + _parse_files(paths[mid:], raws[mid:], ncols)


def _slow_parse(path, raw: bytes, ncols: int) -> np.ndarray:
    """The tolerant parser on the bytes already read (UTF-8, BOM tolerated, as `read_text`)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        return parse_rows(text, path, ncols=ncols)
    except DataError as exc:
        raise ResultsError(str(exc)) from exc


def read_box_block(paths: Iterable[str | Path], ncols: int = 4) -> BoxBlock:
    """Many files of `ncols` numbers per row -> one `BoxBlock` (rows stacked in file order).

    Accepts tab, comma, semicolon or space separators, ints or floats, CRLF, NaN; never rounds.
    Plain decimal files (``save_bb`` tab ints, comma ints, ``%.4f`` floats) are parsed in one
    compiled pass for all files (one pandas call without numba); anything else goes through the
    tolerant per-file parser, which raises ResultsError naming the file and line for a malformed
    row or a non-number.
    """
    paths = [os.fspath(p) for p in paths]  # plain strings: pathlib costs more than the read here
    kernel = compiled(_parse_decimals_kernel)
    if kernel is None:
        return parse_box_block(paths, [_read_bytes(p) for p in paths], ncols)
    data, starts = _read_files(paths)
    return _parse_buffer(kernel, paths, data, starts, ncols)


def parse_box_block(paths: Sequence[str], raws: Sequence[bytes], ncols: int = 4) -> BoxBlock:
    """The bytes of many files (`paths` only name them in errors) -> one `BoxBlock`."""
    raws = list(raws)
    kernel = compiled(_parse_decimals_kernel)
    if kernel is None:
        block = _parse_joined(raws, ncols)
        return block if block is not None else BoxBlock.stack(_parse_files(list(paths), raws, ncols), ncols)
    starts = np.zeros(len(raws) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in raws], out=starts[1:])
    return _parse_buffer(kernel, paths, np.frombuffer(b"".join(raws), dtype=np.uint8), starts, ncols)


def _parse_buffer(kernel, paths: Sequence[str], data: np.ndarray, starts: np.ndarray, ncols: int) -> BoxBlock:
    """Compiled parse of file i = data[starts[i]:starts[i + 1]]; the files it declines go through
    `_parse_files` (pandas, then the tolerant parser that names the file and line)."""
    block, declined = _parse_decimals(kernel, data, starts, ncols)
    if not declined:
        return block
    raws = [data[starts[i]:starts[i + 1]].tobytes() for i in declined]
    fixed = _parse_files([paths[i] for i in declined], raws, ncols)
    parts = block.parts()  # a declined file has no rows there: put its careful parse in its place
    for i, a in zip(declined, fixed):
        parts[i] = a
    return BoxBlock.stack(parts, ncols)


def read_box_files(paths: Iterable[str | Path], ncols: int = 4) -> list[np.ndarray]:
    """Many files of `ncols` numbers per row -> list of float64 arrays (N_i, ncols), in order
    (views into one `read_box_block`). A missing or malformed file raises ResultsError."""
    return read_box_block(paths, ncols).parts()


# ---------------------------------------------------------------------------------------------
# compiled parser (numba kernels; `metrics.compiled` compiles them on first use)

# 10^k for k = 0..15: exact doubles, so mantissa / 10^k (mantissa < 10^15 < 2^53, also exact)
# is ONE correctly rounded IEEE division: the double Python's float() gives for the same text
_POW10 = np.array([float(10**k) for k in range(16)])
_POW10_INT = np.array([10**k for k in range(9)], dtype=np.int64)
_MAX_DIGITS = 15

# SWAR: 8 bytes of a token in one little-endian uint64 (first byte lowest). The kernel indexes
# with uint64 so numba emits no negative-index wraparound and the 8 byte loads become one.
_U = np.uint64
_ASCII_ZEROS = _U(0x3030303030303030)  # b ^ 0x30 maps '0'..'9' to 0..9 and every other byte elsewhere
_LOW7 = _U(0x7F7F7F7F7F7F7F7F)
_TEN_UP = _U(0x7676767676767676)  # (t & 0x7F) + 0x76 has bit 7 set iff (t & 0x7F) >= 10; no carry out
_BIT7 = _U(0x8080808080808080)
_BYTE_ONES = _U(0x0101010101010101)
_PAIR_MASK = _U(0x000000FF000000FF)
_MUL_100_1E6 = _U(0x000F424000000064)  # 100 + 10^6·2^32 (digit pairs -> 4-digit groups -> 8 digits)
_MUL_1_1E4 = _U(0x0000271000000001)  # 1 + 10^4·2^32


def _parse_decimals(kernel, data: np.ndarray, starts: np.ndarray, ncols: int) -> tuple[BoxBlock, list[int]]:
    """All files in one compiled pass -> (block, indices of the files the kernel declined).

    data (B,) uint8, file i = data[starts[i]:starts[i + 1]]. A declined file gets no rows in the
    block (the caller parses it the careful way).
    """
    n_files = len(starts) - 1
    # a row takes >= 2·ncols bytes with its line end (one less for a file's last line); the
    # unused part of this bound is never touched, so the OS never backs it with memory
    capacity = (len(data) + n_files) // (2 * ncols) + n_files
    values = np.empty((capacity, ncols), order="F")  # owns its memory: scoring recognises its row views
    rows, ok = kernel(data, starts, values, _POW10, _MAX_DIGITS)
    offsets = np.zeros(n_files + 1, dtype=np.int64)
    np.cumsum(rows, out=offsets[1:])
    # a view of the used rows: each column stays contiguous
    return BoxBlock(values[: int(offsets[-1])], offsets), np.flatnonzero(~ok).tolist()


def _parse_decimals_kernel(data, starts, values, pow10, max_digits):
    """Parse file i = data[starts[i]:starts[i + 1]] into the next rows of `values`.

    Accepted: tokens ``[+-]d*[.d*]`` (1 to `max_digits` digits) separated by runs of , ; tab
    space, lines ended by \\n or \\r (blank lines skipped, as ``str.splitlines`` and the tolerant
    parser do), exactly ncols tokens per line. value = mantissa / 10^k (k decimals), negated
    for '-' (so "-0" is -0.0 as in float()). Anything else (exponent, nan, inf, more digits,
    wrong column count, a line of commas, other bytes) declines the whole file: ok[i] False,
    no rows. A canonical line (single separators, <= 7 digits before and after the dot) is read
    8 bytes per token (SWAR: digit count from a bit mask, value from three multiplications);
    any other line goes through the byte-by-byte path (the two share no helper: a numba kernel
    compiled on demand cannot call plain Python functions).
    data (B,) uint8, starts (S + 1,), values (capacity, ncols) -> rows (S,) int64, ok (S,) bool
    """
    capacity, ncols = values.shape
    n_files = len(starts) - 1
    ok = np.zeros(n_files, dtype=np.bool_)
    rows = np.zeros(n_files, dtype=np.int64)
    row = 0
    for i in range(n_files):
        p, end, first_row, good = starts[i], starts[i + 1], row, True
        while p < end and good:
            # fast path: a canonical line "[-]d{1,7}[.d{1,7}]" x ncols with single separators,
            # each token read 8 bytes at a time (SWAR) instead of byte by byte
            q, fast = p, row < capacity
            for col in range(ncols):
                negative = data[_U(q)] == 45
                if negative:
                    q += 1
                if q + 8 > end:  # the 8 bytes must stay inside this file
                    fast = False
                    break
                uq = _U(q)
                t = (_U(data[uq]) | (_U(data[uq + _U(1)]) << _U(8)) | (_U(data[uq + _U(2)]) << _U(16))
                     | (_U(data[uq + _U(3)]) << _U(24)) | (_U(data[uq + _U(4)]) << _U(32))
                     | (_U(data[uq + _U(5)]) << _U(40)) | (_U(data[uq + _U(6)]) << _U(48))
                     | (_U(data[uq + _U(7)]) << _U(56))) ^ _ASCII_ZEROS
                non_digits = (((t & _LOW7) + _TEN_UP) | t) & _BIT7
                below = (non_digits & (~non_digits + _U(1))) - _U(1)  # the bytes before the first non-digit
                n_int = np.int64(((below & _BYTE_ONES) * _BYTE_ONES) >> _U(56)) - 1
                if non_digits == _U(0) or n_int == 0:
                    fast = False
                    break
                t <<= _U(8 * (8 - n_int))  # digits to the top bytes, '0' digits below
                t = t * _U(10) + (t >> _U(8))
                mantissa = np.int64(((t & _PAIR_MASK) * _MUL_100_1E6 + ((t >> _U(16)) & _PAIR_MASK) * _MUL_1_1E4)
                                    >> _U(32))
                q += n_int
                n_decimals = 0
                if data[_U(q)] == 46:  # '.': the decimals the same way
                    q += 1
                    if q + 8 > end:
                        fast = False
                        break
                    uq = _U(q)
                    t = (_U(data[uq]) | (_U(data[uq + _U(1)]) << _U(8)) | (_U(data[uq + _U(2)]) << _U(16))
                         | (_U(data[uq + _U(3)]) << _U(24)) | (_U(data[uq + _U(4)]) << _U(32))
                         | (_U(data[uq + _U(5)]) << _U(40)) | (_U(data[uq + _U(6)]) << _U(48))
                         | (_U(data[uq + _U(7)]) << _U(56))) ^ _ASCII_ZEROS
                    non_digits = (((t & _LOW7) + _TEN_UP) | t) & _BIT7
                    below = (non_digits & (~non_digits + _U(1))) - _U(1)
                    n_decimals = np.int64(((below & _BYTE_ONES) * _BYTE_ONES) >> _U(56)) - 1
                    if non_digits == _U(0) or n_decimals == 0 or n_int + n_decimals > max_digits:
                        fast = False
                        break
                    t <<= _U(8 * (8 - n_decimals))
                    t = t * _U(10) + (t >> _U(8))
                    fraction = np.int64(((t & _PAIR_MASK) * _MUL_100_1E6 + ((t >> _U(16)) & _PAIR_MASK) * _MUL_1_1E4)
                                        >> _U(32))
                    mantissa = mantissa * _POW10_INT[n_decimals] + fraction
                    q += n_decimals
                value = float(mantissa) if n_decimals == 0 else mantissa / pow10[n_decimals]
                values[row, col] = -value if negative else value
                c = data[_U(q)]
                q += 1
                if col + 1 < ncols:
                    if not (c == 44 or c == 9 or c == 32 or c == 59):
                        fast = False
                        break
                elif c == 13 and q < end and data[_U(q)] == 10:  # CRLF
                    q += 1
                elif not (c == 10 or c == 13):
                    fast = False
                    break
            if fast:
                row += 1
                p = q
                continue
            # general path, one line: runs of separators, tokens "[+-]d*[.d*]" of any length
            col, commas = 0, False
            while p < end:
                c = data[_U(p)]
                if c == 44 or c == 9 or c == 32 or c == 59:  # , tab space ;
                    commas = commas or c == 44 or c == 59
                    p += 1
                    continue
                if c == 10 or c == 13:  # line end (a line of separators only is a blank line here)
                    p += 1
                    break
                negative = c == 45
                if c == 45 or c == 43:  # - +
                    p += 1
                mantissa, q = 0, p  # wraps past 18 digits: declined below
                while q < end and 48 <= data[_U(q)] <= 57:
                    mantissa = mantissa * 10 + (np.int64(data[_U(q)]) - 48)
                    q += 1
                n_digits, n_decimals = q - p, 0
                if q < end and data[_U(q)] == 46:  # .
                    q += 1
                    while q < end and 48 <= data[_U(q)] <= 57:
                        mantissa = mantissa * 10 + (np.int64(data[_U(q)]) - 48)
                        q += 1
                        n_decimals += 1
                    n_digits += n_decimals
                at_boundary = q == end
                if not at_boundary:
                    c = data[_U(q)]
                    at_boundary = c == 44 or c == 9 or c == 32 or c == 59 or c == 10 or c == 13
                good = at_boundary and 0 < n_digits <= max_digits and col < ncols and row < capacity
                if not good:
                    break
                value = float(mantissa) if n_decimals == 0 else mantissa / pow10[n_decimals]
                values[row, col] = -value if negative else value
                col += 1
                p = q
            if good and col != 0:
                good = col == ncols
                row += 1
            elif commas:  # "," or ";" alone: not blank for the tolerant parser (0 values)
                good = False
        ok[i] = good
        if not good:
            row = first_row  # declined: the next file's rows overwrite what was written
        rows[i] = row - first_row
    return rows, ok
