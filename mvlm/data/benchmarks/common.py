"""Text-file readers and checks shared by every benchmark loader.

Annotation files in the wild mix separators (comma, tab, spaces), line ends (LF, CRLF) and
encodings. The `read_*` functions accept all of them and raise `DataError` naming the file and
line for anything they cannot parse, so a broken file never surfaces as a numpy traceback.
The `load_*` / `check_*` functions below never raise: they return the data they could read and
problem strings ``"<level>: <file>: <message>"`` for the loaders to keep on `Sequence.problems`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from mvlm.data.sequence import DataError, Sequence

_SEPARATORS = re.compile(r"[,\t ;]+")


def read_text(path: str | Path, required: bool = True) -> str:
    """File content as str: UTF-8 (BOM tolerated), else a clear error naming the file."""
    path = Path(path)
    if not path.is_file():
        if required:
            raise DataError(f"{path}: file not found")
        return ""
    try:
        raw = path.read_bytes()
    except OSError as exc:  # permission, I/O error, ...: a problem of this file, not a traceback
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
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


# --------------------------------------------------------------------------------------------
# problems: "<level>: <file>: <message>" strings kept on `Sequence.problems`
#
# A loader never raises for one damaged sequence: it records what is wrong and returns the
# sequence with empty or partial data, so a run over a thousand sequences goes on. The level
# says whether the sequence can still be used:
#   error   - unusable as loaded (missing/unparseable GT, empty sentence, missing frames ...)
#   warning - usable, but something was adjusted (frames cut to the GT length ...)
#   info    - normal for the benchmark, worth knowing (zero-size rows for absent frames ...)

ERROR, WARNING, INFO = "error", "warning", "info"
LEVELS = (ERROR, WARNING, INFO)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
_FIRST_LINES_SHOWN = 3
_DIGITS = re.compile(r"([0-9]+)")  # ASCII only: int() of every match must work


def problem(level: str, path: str | Path, message: str) -> str:
    """One problem string; `path` is the file (or folder) the problem is about."""
    return f"{level}: {path}: {message}"


def problem_level(text: str) -> str:
    """Level of a problem string; anything without a known prefix counts as an error."""
    head = text.split(":", 1)[0].strip()
    return head if head in LEVELS else ERROR


# problems about the sentence: the sentence files of each layout, or its absence
_SENTENCE_PROBLEM = re.compile(r"nlp\.txt|language\.txt|OTB_query_|mgit_nlp|no sentence|empty sentence|empty description")


def is_sentence_problem(text: str) -> bool:
    """Whether a problem string is about the sentence (scoring needs none; --default-text gives one)."""
    return bool(_SENTENCE_PROBLEM.search(text))


def errors(problems: list[str]) -> list[str]:
    return [p for p in problems if problem_level(p) == ERROR]


def natural_key(name: str) -> list:
    """Sort key where embedded numbers compare as numbers: airplane-2 < airplane-10."""
    return [int(part) if _is_number(part) else part.lower() for part in _DIGITS.split(name)]


def _is_number(text: str) -> bool:
    # str.isdigit() is also true for "²" or "①", which int() rejects
    return text.isascii() and text.isdigit()


# --------------------------------------------------------------------------------------------
# frames


def frame_number(path: str | Path) -> int | None:
    """Integer file stem (`00000012.jpg` -> 12), None when the stem is not a number."""
    # string operations, not Path: this runs once per frame of every listed video
    stem = os.path.splitext(os.path.basename(path))[0]
    return int(stem) if _is_number(stem) else None


def list_frames(folder: str | Path) -> list[Path]:
    """Image files directly inside `folder`, in display order; [] when the folder is missing.

    Uses one `os.scandir` and no image decoding, so listing a 10k-frame video costs
    milliseconds. Numbered files sort by their number (so `10.jpg` follows `9.jpg`), others by
    natural name order after them.
    """
    folder = Path(folder)
    try:
        with os.scandir(folder) as entries:
            names = [
                e.name
                for e in entries
                if os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS and e.is_file()
            ]
    except (FileNotFoundError, NotADirectoryError):
        return []

    def key(name: str):
        number = frame_number(name)
        return (0, number, name) if number is not None else (1, natural_key(name), name)

    prefix = os.path.join(str(folder), "")
    # Path(str) is cheaper than folder / name when done tens of thousands of times
    return [Path(prefix + name) for name in sorted(names, key=key)]


def _missing_numbers(frames: list[Path]) -> list[int]:
    numbers = [frame_number(f.name) for f in frames]
    if not numbers or any(n is None for n in numbers):
        return []  # not a numbered sequence: gaps cannot be told
    present = set(numbers)
    return [n for n in range(min(numbers), max(numbers) + 1) if n not in present]


def check_frames(
    folder: str | Path, frames: list[Path], n_gt: int, gt_path: str | Path
) -> tuple[list[Path], list[str]]:
    """Compare the listed frames with the GT rows; returns (frames cut to the GT length, problems).

    * folder missing / no images / gaps in the numbering / fewer frames than GT rows -> error;
    * more frames than GT rows -> warning, and the frames are cut to the first `n_gt`
      (OTB Football1: 81 images, 74 GT lines).
    With `n_gt == 0` (GT missing or broken) frames are returned as listed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return frames, [problem(ERROR, folder, "frame folder not found")]
    if not frames:
        return frames, [problem(ERROR, folder, "no image files in the frame folder")]
    problems: list[str] = []
    unnumbered = [f.name for f in frames if frame_number(f) is None]
    if unnumbered and len(unnumbered) < len(frames):
        shown = ", ".join(unnumbered[:_FIRST_LINES_SHOWN])
        problems.append(problem(ERROR, folder, f"{len(unnumbered)} image files among numbered frames are not "
                                               f"frame numbers (first: {shown}): their place in the video is unknown"))
    missing = _missing_numbers([f for f in frames if frame_number(f) is not None])
    if missing:
        width, ext = len(frames[0].stem), frames[0].suffix
        first = ", ".join(f"{n:0{width}d}{ext}" for n in missing[:_FIRST_LINES_SHOWN])
        problems.append(problem(ERROR, folder, f"{len(missing)} missing frame files (first: {first})"))
    if n_gt <= 0:
        return frames, problems
    if len(frames) < n_gt:
        problems.append(problem(ERROR, folder, f"{len(frames)} frames for {n_gt} GT rows in {gt_path}"))
    elif len(frames) > n_gt:
        problems.append(
            problem(WARNING, folder, f"{len(frames)} frames for {n_gt} GT rows in {gt_path}; "
                                     f"frames cut to the first {n_gt}")
        )
        frames = frames[:n_gt]
    return frames, problems


# --------------------------------------------------------------------------------------------
# ground truth and sentences that never raise


def _numbered_rows(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """GT values (N, 4 or 8) and the 1-based file line of each row (blank lines are skipped)."""
    text = read_text(path)
    values = parse_rows(text, path)
    lines = np.array([i for i, line in enumerate(text.splitlines(), start=1) if line.strip()], dtype=int)
    return values, lines


def _first_lines(lines: np.ndarray, mask: np.ndarray) -> str:
    shown = ", ".join(str(int(n)) for n in lines[mask][:_FIRST_LINES_SHOWN])
    return f"{int(mask.sum())} rows (first lines {shown})"


def check_boxes(boxes: np.ndarray, lines: np.ndarray, path: str | Path) -> list[str]:
    """NaN/inf rows and negative sizes are errors; zero-size rows (absent target) are info."""
    problems = []
    not_finite = ~np.isfinite(boxes).all(axis=1)
    if not_finite.any():
        problems.append(problem(ERROR, path, f"NaN/inf values in {_first_lines(lines, not_finite)}"))
    with np.errstate(invalid="ignore"):
        negative = ~not_finite & ((boxes[:, 2] < 0) | (boxes[:, 3] < 0))
        zero = ~not_finite & ~negative & ((boxes[:, 2] == 0) | (boxes[:, 3] == 0))
    if negative.any():
        problems.append(problem(ERROR, path, f"negative width/height in {_first_lines(lines, negative)}"))
    if zero.any():
        problems.append(problem(INFO, path, f"zero-size boxes (target absent) in {_first_lines(lines, zero)}"))
    return problems


def load_boxes(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """GT boxes (N, 4) x,y,w,h (polygons converted) and problems; never raises.

    A missing or unparseable file gives an empty (0, 4) array and an error naming the file.
    """
    try:
        values, lines = _numbered_rows(path)
    except DataError as exc:
        return np.zeros((0, 4)), [f"{ERROR}: {exc}"]
    if values.shape[1] == 8:
        values = polygons_to_boxes(values)
    elif values.shape[1] != 4:
        return np.zeros((0, 4)), [
            problem(ERROR, path, f"expected 4 (x,y,w,h) or 8 (polygon) values per line, got {values.shape[1]}")
        ]
    if len(values) == 0:
        return values, [problem(ERROR, path, "no boxes in the GT file")]
    return values, check_boxes(values, lines, path)


def load_flags(path: str | Path, n_gt: int) -> tuple[np.ndarray | None, list[str]]:
    """0/1 flags checked against the GT length; (None, [error]) when missing, broken or off-length."""
    try:
        flags = read_flags(path)
    except DataError as exc:
        return None, [f"{ERROR}: {exc}"]
    if n_gt and len(flags) != n_gt:
        return None, [problem(ERROR, path, f"{len(flags)} flags for {n_gt} GT rows")]
    return flags, []


def load_sentence(path: str | Path) -> tuple[str, list[str]]:
    """The sentence of a language file (stripped) and problems; never raises."""
    try:
        sentence = read_sentence(path)
    except DataError as exc:
        return "", [f"{ERROR}: {exc}"]
    if not sentence:
        return "", [problem(ERROR, path, "empty sentence")]
    return sentence, []


# --------------------------------------------------------------------------------------------
# selection and usability


def select_names(available: list[str], wanted: list[str] | None) -> tuple[list[str], list[str]]:
    """(names kept in `available` order, wanted names that are not available)."""
    if wanted is None:
        return list(available), []
    have = set(available)
    wanted_set = set(wanted)
    return [n for n in available if n in wanted_set], [n for n in wanted if n not in have]


def missing_sequence(name: str, path: str | Path, dataset: str, what: str = "sequence folder not found") -> Sequence:
    """Placeholder for a listed sequence that is not on disk, so the run can report it."""
    return Sequence(name=name, frames=[], boxes=np.zeros((0, 4)), dataset=dataset,
                    problems=[problem(ERROR, path, what)])


def usability_reasons(seq: Sequence, require_frames: bool = True, require_gt: bool = True) -> list[str]:
    """Why `seq` cannot be used ([] = usable).

    Usable means: no error-level problem, at least one GT row (unless `require_gt` is False: a
    results-only run on a split whose GT is hidden), a non-empty sentence and, when frames are
    required, at least as many frames as GT rows.
    """
    reasons = errors(seq.problems)
    if require_gt and len(seq.boxes) == 0:
        reasons.append("no GT boxes")
    if not seq.language.strip():
        reasons.append("no sentence")
    if require_frames and len(seq.frames) < len(seq.boxes):
        reasons.append(f"{len(seq.frames)} frames for {len(seq.boxes)} GT rows")
    return reasons
