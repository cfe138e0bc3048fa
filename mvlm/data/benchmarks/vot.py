"""VOT-style layout: ``<root>/<seq>/`` with ``groundtruth.txt`` and the frames in ``imgs/``,
``color/`` or the sequence folder itself.

GT lines are 4 values (x,y,w,h) or 8 (a rotated polygon x1,y1,...,x4,y4), which become the
axis-aligned box around the polygon:

    x = min(x_i), y = min(y_i), w = max(x_i) - x, h = max(y_i) - y

VOT has no sentences; an optional ``nlp.txt`` or ``language.txt`` in the sequence folder is
read when present, otherwise `language` is "" and an error says so. `visible` is None. A
``list.txt`` at the root, when present, gives the sequence names and order.
"""

from __future__ import annotations

from pathlib import Path

from mvlm.data.benchmarks.common import (
    ERROR,
    check_frames,
    list_frames,
    load_boxes,
    load_sentence,
    missing_sequence,
    natural_key,
    problem,
    read_text,
    select_names,
)
from mvlm.data.sequence import Sequence

DATASET = "vot"
GT_FILE = "groundtruth.txt"
FRAME_FOLDERS = ("imgs", "color", "img")
SENTENCE_FILES = ("nlp.txt", "language.txt")


def is_sequence_dir(path: Path) -> bool:
    return (path / GT_FILE).is_file() or any((path / f).is_dir() for f in FRAME_FOLDERS)


def frame_folder(seq_dir: Path) -> Path:
    return next((seq_dir / f for f in FRAME_FOLDERS if (seq_dir / f).is_dir()), seq_dir)


def load_sequence(seq_dir: str | Path, require_frames: bool = True) -> Sequence:
    """One VOT sequence folder; problems are recorded, never raised."""
    seq_dir = Path(seq_dir)
    gt_path = seq_dir / GT_FILE
    boxes, problems = load_boxes(gt_path)
    sentence_path = next((seq_dir / f for f in SENTENCE_FILES if (seq_dir / f).is_file()), None)
    if sentence_path is None:
        language = ""
        problems.append(problem(ERROR, seq_dir, f"no sentence ({' or '.join(SENTENCE_FILES)} not found)"))
    else:
        language, sentence_problems = load_sentence(sentence_path)
        problems += sentence_problems
    folder = frame_folder(seq_dir)
    frames, frame_problems = check_frames(folder, list_frames(folder), len(boxes), gt_path)
    if require_frames:
        problems += frame_problems
    return Sequence(name=seq_dir.name, frames=frames, boxes=boxes, language=language, visible=None,
                    dataset=DATASET, problems=problems, meta={"path": str(seq_dir)})


def load(
    root: str | Path,
    split: str | None = None,
    sequences: list[str] | None = None,
    require_frames: bool = True,
) -> list[Sequence]:
    """VOT sequences under `root` (order of ``list.txt`` if present), or `root` if it is one.

    `split` is accepted for a uniform interface: a sub-folder of `root` when given.
    """
    root = Path(root)
    if is_sequence_dir(root):
        return [load_sequence(root, require_frames)]
    if split is not None:
        root = root / split
    if (root / "list.txt").is_file():
        names = [line.strip() for line in read_text(root / "list.txt").splitlines() if line.strip()]
    else:
        names = [p.name for p in sorted(root.iterdir(), key=lambda p: natural_key(p.name))
                 if p.is_dir() and is_sequence_dir(p)]
    names, unknown = select_names(names, sequences)
    return [load_sequence(root / n, require_frames) if (root / n).is_dir()
            else missing_sequence(n, root / n, DATASET) for n in names + unknown]
