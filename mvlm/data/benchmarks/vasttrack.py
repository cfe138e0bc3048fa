"""VastTrack layout: ``<root>/[<split>/]<class>/<seq>/``.

Per sequence: ``imgs/`` (``%05d.jpg``), ``Groundtruth.txt`` (x,y,w,h, comma) and ``nlp.txt``
(one sentence). There are no flag files; an all-zero GT row marks an absent target:

    visible_t = not (x_t == y_t == w_t == h_t == 0)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mvlm.data.benchmarks.common import (
    check_frames,
    list_frames,
    load_boxes,
    load_sentence,
    missing_sequence,
    natural_key,
    select_names,
)
from mvlm.data.sequence import DataError, Sequence

DATASET = "vasttrack"
GT_FILE = "Groundtruth.txt"


def is_sequence_dir(path: Path) -> bool:
    return (path / GT_FILE).is_file() or (path / "imgs").is_dir() or (path / "nlp.txt").is_file()


def _sorted_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))


def load_sequence(seq_dir: str | Path, require_frames: bool = True) -> Sequence:
    """One VastTrack sequence folder; problems are recorded, never raised."""
    seq_dir = Path(seq_dir)
    gt_path = seq_dir / GT_FILE
    boxes, problems = load_boxes(gt_path)
    language, sentence_problems = load_sentence(seq_dir / "nlp.txt")
    problems += sentence_problems
    visible = ~(boxes == 0).all(axis=1) if len(boxes) else None
    frame_dir = seq_dir / "imgs"
    frames, frame_problems = check_frames(frame_dir, list_frames(frame_dir), len(boxes), gt_path)
    if require_frames:
        problems += frame_problems
    return Sequence(name=seq_dir.name, frames=frames, boxes=boxes, language=language,
                    visible=np.asarray(visible) if visible is not None else None,
                    dataset=DATASET, problems=problems,
                    meta={"path": str(seq_dir), "class": seq_dir.parent.name})


def load(
    root: str | Path,
    split: str | None = None,
    sequences: list[str] | None = None,
    require_frames: bool = True,
) -> list[Sequence]:
    """VastTrack sequences under `root` (or `root/<split>`), or `root` itself if it is one."""
    root = Path(root)
    if is_sequence_dir(root):
        return [load_sequence(root, require_frames)]
    if split is not None:
        if not (root / split).is_dir():
            raise DataError(f"{root / split}: VastTrack split folder not found")
        root = root / split
    found: dict[str, Path] = {}
    for class_dir in _sorted_dirs(root):
        if is_sequence_dir(class_dir):  # root is one class folder
            found[class_dir.name] = class_dir
            continue
        for seq_dir in _sorted_dirs(class_dir):
            if is_sequence_dir(seq_dir):
                found[seq_dir.name] = seq_dir
    names, unknown = select_names(list(found), sequences)
    out = [load_sequence(found[n], require_frames) for n in names]
    return out + [missing_sequence(n, root / n.rsplit("-", 1)[0] / n, DATASET) for n in unknown]
