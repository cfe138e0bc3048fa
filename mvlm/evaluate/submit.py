"""MGIT (VideoCube) test-split submission: the toolkit's result and time files in one zip.

MGIT test ground truth is hidden; the VideoCube evaluation server scores a zip laid out as the
official toolkit's ``report()`` packs it (docs/mgit.md lists what was checked against the toolkit):

    result/<tracker>_<seq>.txt   one row per frame (first frame included), x,y,w,h, comma
    time/<tracker>_<seq>.txt     one row per frame, seconds spent in the tracker

Sequence ids are the dataset's strings ('001'..'500'), used as they are. Every sequence of the
split must be present and complete; all problems are collected and reported together.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from mvlm.atomic import write_with
from mvlm.data.benchmarks import mgit
from mvlm.data.benchmarks.common import list_frames
from mvlm.data.sequence import DataError
from mvlm.evaluate.results import ResultsError, meta_path, read_results, result_path

# the runner stores per-frame tracker time (frame decoding excluded, as the toolkit times
# only init/update) in milliseconds under this key of <seq>_meta.json
TIME_KEY = "tracker_ms"
_TRACKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SubmitError(DataError):
    """The results cannot be submitted; the message lists every problem found."""


def split_ids(split_json: str | Path, version: str = "tiny", split: str = "test") -> list[str]:
    """Sequence ids of `split` from mgit.json / videocube.json ({version: {split: [ids]}})."""
    path = Path(split_json)
    try:
        ids = json.loads(path.read_text())[version][split]
    except FileNotFoundError:
        raise SubmitError(f"{path}: split file not found") from None
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SubmitError(f"{path}: no {version}/{split} id list ({type(exc).__name__}: {exc})") from exc
    return [str(i) for i in ids]


def find_split_json(root: str | Path) -> Path:
    """The split file the MGIT loader reads under a dataset root."""
    root = Path(root)
    for name in ("mgit.json", "videocube.json"):
        if (root / name).is_file():
            return root / name
    raise SubmitError(f"{root}: no mgit.json or videocube.json (give --split-json)")


def frame_counts(root: str | Path, ids: list[str], split: str = "test") -> dict[str, int]:
    """Images per sequence on disk (test GT is hidden, so the frames are the reference count)."""
    return {i: len(list_frames(mgit.frame_dir(Path(root), split, i))) for i in ids}


def read_times(results_dir: Path, seq: str, n_boxes: int) -> np.ndarray:
    """Per-frame tracker seconds from `<seq>_meta.json`; never invented when missing."""
    path = meta_path(results_dir, seq)
    if not path.is_file():
        raise SubmitError(f"{path}: meta file missing (per-frame '{TIME_KEY}' times are needed)")
    try:
        values = json.loads(path.read_text()).get(TIME_KEY)
    except (OSError, json.JSONDecodeError, AttributeError) as exc:
        raise SubmitError(f"{path}: unreadable meta ({type(exc).__name__}: {exc})") from exc
    if not isinstance(values, list):
        raise SubmitError(f"{path}: no per-frame '{TIME_KEY}' list")
    if len(values) != n_boxes:
        raise SubmitError(f"{path}: {len(values)} '{TIME_KEY}' values for {n_boxes} boxes")
    try:
        ms = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise SubmitError(f"{path}: '{TIME_KEY}' holds non-numbers") from None
    bad = np.flatnonzero(~np.isfinite(ms) | (ms < 0))
    if bad.size:
        raise SubmitError(f"{path}: '{TIME_KEY}' not a finite non-negative time at frame(s) "
                          f"{', '.join(map(str, bad[:5] + 1))}")
    return ms / 1000.0


def read_sequence(results_dir: Path, seq: str, expected: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(boxes (N,4), seconds (N,)) of one sequence, checked; SubmitError naming the file."""
    path = result_path(results_dir, seq)
    try:
        boxes = read_results(path)
    except ResultsError as exc:
        raise SubmitError(str(exc)) from None
    if expected is not None and len(boxes) != expected:
        # the toolkit asserts boxes.shape == anno.shape: any other count fails on the server
        raise SubmitError(f"{path}: {len(boxes)} boxes for {expected} frames")
    bad = np.flatnonzero(~np.isfinite(boxes).all(axis=1))
    if bad.size:
        raise SubmitError(f"{path}: non-finite box at frame(s) {', '.join(map(str, bad[:5] + 1))}")
    return boxes, read_times(results_dir, seq, len(boxes))


def format_boxes(boxes: np.ndarray) -> str:
    # as the toolkit's ExperimentMGIT.convert_results writes them: np.savetxt, ',' and its
    # default '%.18e' (full double precision, no rounding of our float boxes)
    buf = io.StringIO()
    np.savetxt(buf, np.asarray(boxes, dtype=np.float64).reshape(-1, 4), delimiter=",")
    return buf.getvalue()


def format_times(seconds: np.ndarray) -> str:
    # as the toolkit's _record writes time files (one repetition = one column): '%.8f'
    buf = io.StringIO()
    np.savetxt(buf, np.asarray(seconds, dtype=np.float64).reshape(-1, 1), fmt="%.8f", delimiter=",")
    return buf.getvalue()


def build_submission(
    results_dir: str | Path,
    out: str | Path,
    ids: list[str],
    tracker_name: str = "MVLM",
    counts: dict[str, int] | None = None,
) -> dict:
    """Check the results of every id and write the zip atomically; returns a summary.

    counts: frames per id (from the dataset); without it only boxes vs times are compared.
    Raises SubmitError listing every missing, short or malformed sequence.
    """
    results_dir = Path(results_dir)
    if not _TRACKER_NAME.match(tracker_name):
        raise SubmitError(f"tracker name {tracker_name!r}: use letters, digits, '_', '.', '-'")
    if not results_dir.is_dir():
        raise SubmitError(f"{results_dir}: results folder not found")
    if not ids:
        raise SubmitError("the split lists no sequences")
    problems, data = [], {}
    missing = [i for i in ids if not result_path(results_dir, i).is_file()]
    if missing:
        problems.append(f"{results_dir}: {len(missing)} of {len(ids)} sequences missing: {', '.join(missing)}")
    counts = counts or {}
    no_frames = [i for i in ids if i in counts and counts[i] == 0]
    if no_frames:
        problems.append(f"no frames found in the dataset for: {', '.join(no_frames)}")
    for seq in ids:
        if seq in missing or seq in no_frames:
            continue
        try:
            data[seq] = read_sequence(results_dir, seq, counts.get(seq))
        except SubmitError as exc:
            problems.append(str(exc))
    if problems:
        raise SubmitError("cannot build the submission:\n  " + "\n  ".join(problems))

    def write_zip(tmp: Path) -> None:
        # layout of shutil.make_archive over the toolkit's submission folder: the two folder
        # entries, then the files, deflated, no enclosing folder
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for folder in ("result/", "time/"):
                zf.writestr(folder, "", compress_type=zipfile.ZIP_STORED)
            for seq, (boxes, seconds) in data.items():
                zf.writestr(f"result/{tracker_name}_{seq}.txt", format_boxes(boxes))
                zf.writestr(f"time/{tracker_name}_{seq}.txt", format_times(seconds))

    write_with(out, write_zip)
    listed = set(ids)
    extra = sorted(p.stem for p in results_dir.glob("*.txt") if p.stem not in listed)
    return {"out": str(out), "sequences": len(data), "frames": int(sum(len(b) for b, _ in data.values())),
            "ignored": extra}
