"""MGIT (VideoCube) layout.

    <root>/data/<split>/<id>/[frame_<id>/]000000.jpg ...   frames (both layouts accepted: the
                                                           README shows the extra frame_<id>/ level)
    <root>/attribute/groundtruth/<id>.txt                  x,y,w,h per frame, comma
    <root>/mgit_nlp/<id>.xlsx                              one sheet, rows = levels
    <root>/mgit.json (or videocube.json)                   {"full"|"tiny": {"train"|"val"|"test": [ids]}}

Language: the ``description`` column of the LAST filled row (the story level), as the official
loader does. Cells are read as values: the ``length`` column holds formulas like ``=D2-C2+1``
and their cached results are used, never the formula text. Every level's description with its
frame range is kept in ``meta["levels"]`` for granularity-specific runs. MGIT has no
visibility flags (`visible` None). Test-split GT is hidden upstream: on the test split a missing
GT file is a warning (the sequence has no boxes), partial GT never shortens the video, and the
runner tracks such sequences in results-only runs (`RunOptions.require_gt` False).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mvlm.data.benchmarks.common import (
    ERROR,
    WARNING,
    check_frames,
    list_frames,
    load_boxes,
    natural_key,
    problem,
    read_text,
    select_names,
)
from mvlm.data.sequence import DataError, Sequence

DATASET = "mgit"
SPLITS = ("train", "val", "test")
VERSIONS = ("full", "tiny")
_SPLIT_FILES = ("mgit.json", "videocube.json")


def frame_dir(root: Path, split: str | None, seq_id: str) -> Path:
    """The folder holding the images of `seq_id` (flat or with the README's frame_<id>/ level)."""
    splits = [split] if split else [s for s in SPLITS if (root / "data" / s / seq_id).is_dir()] or ["test"]
    base = root / "data" / splits[0] / seq_id
    nested = base / f"frame_{seq_id}"
    return nested if nested.is_dir() else base


def _cell_text(value) -> str:
    return "" if value is None else str(value).strip()


def read_levels(path: str | Path) -> list[dict]:
    """Rows of an MGIT sheet as dicts {level, start_frame, end_frame, length, description}.

    Cells are read as values: a formula cell gives its cached result, never its text.

    Raises DataError naming the file when the workbook cannot be read or has no
    ``description`` column.
    """
    import openpyxl

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            rows = [tuple(r) for r in workbook.worksheets[0].iter_rows(values_only=True)]
        finally:
            workbook.close()
    except Exception as exc:  # openpyxl raises zipfile/KeyError/ValueError/... on damaged files
        raise DataError(f"{path}: unreadable spreadsheet ({type(exc).__name__}: {exc})") from exc
    rows = [r for r in rows if any(_cell_text(v) for v in r)]
    if not rows:
        raise DataError(f"{path}: empty spreadsheet")
    header = [_cell_text(v).lower() for v in rows[0]]
    if "description" not in header:
        raise DataError(f"{path}: no 'description' column in the header row {header}")
    column = {name: header.index(name) for name in ("level", "start_frame", "end_frame", "length", "description")
              if name in header}

    def get(row, name):
        i = column.get(name)
        return row[i] if i is not None and i < len(row) else None

    return [
        {"level": _cell_text(get(r, "level")), "start_frame": get(r, "start_frame"),
         "end_frame": get(r, "end_frame"), "length": get(r, "length"), "description": _cell_text(get(r, "description"))}
        for r in rows[1:]
    ]


def load_sentence(path: Path) -> tuple[str, list[dict], list[str]]:
    """(story sentence = last row's description, all levels, problems); never raises."""
    try:
        levels = read_levels(path)
    except DataError as exc:
        return "", [], [f"{ERROR}: {exc}"]
    if not levels:
        return "", [], [problem(ERROR, path, "no rows below the header")]
    sentence = levels[-1]["description"]
    if not sentence:
        # a formula cell saved without a cached value also reads as empty here
        return "", levels, [problem(ERROR, path, f"empty description in the last row (row {len(levels) + 1})")]
    return sentence, levels, []


def load_sequence(root: str | Path, seq_id: str, split: str | None = None, require_frames: bool = True) -> Sequence:
    """One MGIT sequence by id; problems are recorded, never raised."""
    root = Path(root)
    gt_path = root / "attribute" / "groundtruth" / f"{seq_id}.txt"
    hidden = split == "test"  # test GT is withheld upstream: missing or partial, results only
    if hidden and not gt_path.is_file():
        boxes = np.zeros((0, 4))
        problems = [problem(WARNING, gt_path, "test GT is hidden upstream: results only (docs/mgit.md)")]
    else:
        boxes, problems = load_boxes(gt_path)
    sentence, levels, sentence_problems = load_sentence(root / "mgit_nlp" / f"{seq_id}.xlsx")
    problems += sentence_problems
    folder = frame_dir(root, split, seq_id)
    # every frame of a test video is tracked, however many rows its (partial) GT has
    frames, frame_problems = check_frames(folder, list_frames(folder), 0 if hidden else len(boxes), gt_path)
    if require_frames:
        problems += frame_problems
    return Sequence(name=seq_id, frames=frames, boxes=boxes, language=sentence, visible=None,
                    dataset=DATASET, problems=problems,
                    meta={"path": str(folder), "split": split, "levels": levels})


def read_split_ids(root: Path, split: str | None, version: str = "full") -> dict[str, str | None] | None:
    """id -> split from mgit.json/videocube.json; None when the root has no such file."""
    path = next((root / f for f in _SPLIT_FILES if (root / f).is_file()), None)
    if path is None:
        return None
    try:
        table = json.loads(read_text(path))[version]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: no {version!r} split table ({exc})") from exc
    if split is not None and split not in table:
        raise DataError(f"{path}: unknown split {split!r} (has {sorted(table)})")
    ids: dict[str, str | None] = {}
    for name in [split] if split else [s for s in SPLITS if s in table]:
        for seq_id in table[name]:
            ids[str(seq_id)] = name
    return ids


def _ids_on_disk(root: Path) -> dict[str, str | None]:
    """Ids seen in the sheets, the GT folder or data/<split>/ when no split file exists."""
    ids: dict[str, str | None] = {}
    for path in (root / "mgit_nlp").glob("*.xlsx"):
        ids.setdefault(path.stem, None)
    for path in (root / "attribute" / "groundtruth").glob("*.txt"):
        ids.setdefault(path.stem, None)
    for split in SPLITS:
        for path in (root / "data" / split).glob("*"):
            if path.is_dir():
                ids[path.name] = split
    return dict(sorted(ids.items(), key=lambda kv: natural_key(kv[0])))


def load(
    root: str | Path,
    split: str | None = None,
    sequences: list[str] | None = None,
    require_frames: bool = True,
    version: str = "full",
) -> list[Sequence]:
    """MGIT sequences of `split` ("train"/"val"/"test"; None = all) from the `version` table."""
    root = Path(root)
    if version not in VERSIONS:
        raise DataError(f"{root}: unknown MGIT version {version!r} (use full or tiny)")
    if split is not None and split not in SPLITS:
        raise DataError(f"{root}: unknown MGIT split {split!r} (use train, val or test)")
    ids = read_split_ids(root, split, version)
    if ids is None:
        ids = {k: v for k, v in _ids_on_disk(root).items() if split is None or v in (split, None)}
        if split is not None:
            ids = {k: split for k in ids}
    names, unknown = select_names(list(ids), sequences)
    return [load_sequence(root, n, ids.get(n, split), require_frames) for n in names + unknown]
