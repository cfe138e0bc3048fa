"""LaSOT layout: ``<root>/<class>/<class>-<n>/``.

Per sequence: ``img/%08d.jpg`` (1-based, one per GT row), ``groundtruth.txt`` (x,y,w,h per
line), ``nlp.txt`` (one sentence), ``full_occlusion.txt`` and ``out_of_view.txt`` (0/1 flags,
comma-separated on one line). A frame is visible when both flags are 0:

    visible_t = (full_occlusion_t == 0) and (out_of_view_t == 0)

LaSOT boxes of absent frames are often stale (w, h > 0), so the flags, not the box size, say
whether the target is there. The embedded benchmark (mvlm.data.synthetic) writes the same
layout plus ``attributes.json``.

Splits: ``training_set.txt`` / ``testing_set.txt`` (``validation_set.txt``) at the root (or in the toolkit's
``sequence_evaluation_config/``) list sequence names; without a list every sequence found is
returned. Attributes come from ``attributes.json`` in the sequence folder or from the LaSOT
toolkit's ``annos/att/<seq>.txt`` (14 flags in `ATTRIBUTE_NAMES` order).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from mvlm.data.benchmarks.common import (
    ERROR,
    check_frames,
    list_frames,
    load_boxes,
    load_flags,
    load_sentence,
    missing_sequence,
    natural_key,
    parse_rows,
    problem,
    read_text,
    select_names,
)
from mvlm.data.sequence import DataError, Sequence

DATASET = "lasot"
GT_FILE = "groundtruth.txt"
log = logging.getLogger(__name__)

# column order of the toolkit's annos/att/<seq>.txt (run_tracker_performance_evaluation.m)
ATTRIBUTE_NAMES = ("IV", "POC", "DEF", "MB", "CM", "ROT", "BC", "VC", "SV", "FOC", "FM", "OV", "LR", "ARC")

_SPLIT_FILES = {
    "train": "training_set.txt", "training": "training_set.txt",
    "test": "testing_set.txt", "testing": "testing_set.txt",
    "val": "validation_set.txt", "validation": "validation_set.txt",  # the embedded benchmark's
}


def is_sequence_dir(path: Path) -> bool:
    return (path / GT_FILE).is_file() or (path / "img").is_dir() or (path / "nlp.txt").is_file()


def _sequence_dirs(root: Path) -> dict[str, Path]:
    """name -> folder for every ``<class>/<name>`` holding a GT file or an img/ folder."""
    found: dict[str, Path] = {}
    for class_dir in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)):
        if is_sequence_dir(class_dir):  # root is one class folder
            found[class_dir.name] = class_dir
            continue
        for seq_dir in sorted((p for p in class_dir.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)):
            if is_sequence_dir(seq_dir):
                found[seq_dir.name] = seq_dir
    return found


def _split_list(root: Path, split: str) -> Path | None:
    """The name-list file for `split` (a split name or a path to a list), None if absent."""
    as_path = Path(split)
    if as_path.is_file():
        return as_path
    if split not in _SPLIT_FILES:
        raise DataError(f"{root}: unknown LaSOT split {split!r} (use train, test, val or a list file)")
    for candidate in (root / _SPLIT_FILES[split], root / "sequence_evaluation_config" / _SPLIT_FILES[split]):
        if candidate.is_file():
            return candidate
    return None


def _read_name_list(path: Path) -> list[str]:
    return [line.strip() for line in read_text(path).splitlines() if line.strip()]


def read_attributes_json(path: Path) -> tuple[dict[str, bool], list[str]]:
    """``attributes.json``: {name: bool/0/1}, {"attributes": {...}} or a list of the names set."""
    try:
        data = json.loads(read_text(path))
    except (DataError, json.JSONDecodeError) as exc:
        return {}, [problem(ERROR, path, f"unreadable attributes ({exc})")]
    if isinstance(data, dict) and isinstance(data.get("attributes"), (dict, list)):
        data = data["attributes"]
    if isinstance(data, list):
        return {str(name): True for name in data}, []
    if isinstance(data, dict):
        return {str(k): bool(v) for k, v in data.items()}, []
    return {}, [problem(ERROR, path, "attributes must be an object or a list of names")]


def read_toolkit_attributes(path: Path) -> tuple[dict[str, bool], list[str]]:
    """LaSOT toolkit ``att/<seq>.txt``: one line of 14 comma-separated 0/1 flags."""
    try:
        values = parse_rows(read_text(path), path).reshape(-1)
    except DataError as exc:
        return {}, [f"{ERROR}: {exc}"]
    if len(values) != len(ATTRIBUTE_NAMES):
        return {}, [problem(ERROR, path, f"expected {len(ATTRIBUTE_NAMES)} attribute flags, got {len(values)}")]
    return {name: bool(v) for name, v in zip(ATTRIBUTE_NAMES, values)}, []


def load_sequence(seq_dir: str | Path, require_frames: bool = True, attributes_dir: str | Path | None = None) -> Sequence:
    """One LaSOT sequence folder; problems are recorded, never raised."""
    seq_dir = Path(seq_dir)
    gt_path = seq_dir / GT_FILE
    boxes, problems = load_boxes(gt_path)
    language, sentence_problems = load_sentence(seq_dir / "nlp.txt")
    problems += sentence_problems

    visible = None
    occlusion, p1 = load_flags(seq_dir / "full_occlusion.txt", len(boxes))
    out_of_view, p2 = load_flags(seq_dir / "out_of_view.txt", len(boxes))
    problems += p1 + p2
    if occlusion is not None and out_of_view is not None and len(occlusion) == len(out_of_view) == len(boxes):
        visible = ~occlusion & ~out_of_view

    frame_dir = seq_dir / "img"
    frames, frame_problems = check_frames(frame_dir, list_frames(frame_dir), len(boxes), gt_path)
    if require_frames:
        problems += frame_problems

    attributes: dict[str, bool] = {}
    if (seq_dir / "attributes.json").is_file():
        attributes, p = read_attributes_json(seq_dir / "attributes.json")
        problems += p
    elif attributes_dir is not None:
        attributes, p = read_toolkit_attributes(Path(attributes_dir) / f"{seq_dir.name}.txt")
        problems += p

    return Sequence(
        name=seq_dir.name, frames=frames, boxes=boxes, language=language, visible=visible,
        attributes=attributes, dataset=DATASET, problems=problems,
        meta={"path": str(seq_dir), "class": seq_dir.name.rsplit("-", 1)[0]},
    )


def load(
    root: str | Path,
    split: str | None = None,
    sequences: list[str] | None = None,
    require_frames: bool = True,
    attributes_dir: str | Path | None = None,
) -> list[Sequence]:
    """Every LaSOT sequence under `root` (or of `split`), or `root` itself if it is one sequence.

    `split`: "train"/"test" (reads the root's list file) or a path to a name list; names listed
    but absent on disk come back as sequences with an error problem. `attributes_dir`: the
    toolkit's ``annos/att`` folder.
    """
    root = Path(root)
    if is_sequence_dir(root):
        return [load_sequence(root, require_frames, attributes_dir)]
    found = _sequence_dirs(root)
    names = list(found)
    if split is not None:
        list_file = _split_list(root, split)
        if list_file is None:
            log.warning("%s: no list for split %r; using all %d sequences found", root, split, len(found))
        else:
            names = _read_name_list(list_file)
    names, unknown = select_names(names, sequences)
    out = []
    for name in names + unknown:
        if name in found:
            out.append(load_sequence(found[name], require_frames, attributes_dir))
        else:
            expected = root / name.rsplit("-", 1)[0] / name
            out.append(missing_sequence(name, expected, DATASET))
    return out
