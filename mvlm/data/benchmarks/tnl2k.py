"""TNL2K layout: ``<root>/train|test/<seq>/``.

Per sequence: ``imgs/`` (frames = the sorted image files; names and extensions vary),
``groundtruth.txt`` (x,y,w,h, comma) and ``language.txt`` (one sentence, usually without a
newline and often with trailing spaces, which are stripped). TNL2K has no visibility flags, so
`visible` is None; absent frames carry 0,0,0,0 boxes.

Also accepted: a root whose children are the sequence folders themselves (the toolkit's
``revised_annotations/``), and a single sequence folder. The sentence is returned as written
(case kept); lower-casing is the tokenizer's business.
"""

from __future__ import annotations

from pathlib import Path

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

DATASET = "tnl2k"
GT_FILE = "groundtruth.txt"
SPLITS = ("train", "test")


def is_sequence_dir(path: Path) -> bool:
    # a folder with only a sentence is still a sequence (the toolkit's partial updates): its
    # missing GT is then reported instead of the folder being skipped silently
    return (path / GT_FILE).is_file() or (path / "imgs").is_dir() or (path / "language.txt").is_file()


def _sequence_dirs(folder: Path) -> dict[str, Path]:
    children = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))
    return {p.name: p for p in children if is_sequence_dir(p)}


def load_sequence(seq_dir: str | Path, require_frames: bool = True) -> Sequence:
    """One TNL2K sequence folder; problems are recorded, never raised."""
    seq_dir = Path(seq_dir)
    gt_path = seq_dir / GT_FILE
    boxes, problems = load_boxes(gt_path)
    language, sentence_problems = load_sentence(seq_dir / "language.txt")
    problems += sentence_problems
    frame_dir = seq_dir / "imgs"
    frames, frame_problems = check_frames(frame_dir, list_frames(frame_dir), len(boxes), gt_path)
    if require_frames:
        problems += frame_problems
    return Sequence(name=seq_dir.name, frames=frames, boxes=boxes, language=language, visible=None,
                    dataset=DATASET, problems=problems, meta={"path": str(seq_dir)})


def _split_folders(root: Path, split: str | None) -> list[Path]:
    if split is not None:
        if split not in SPLITS:
            raise DataError(f"{root}: unknown TNL2K split {split!r} (use train or test)")
        if not (root / split).is_dir():
            raise DataError(f"{root / split}: TNL2K split folder not found")
        return [root / split]
    present = [root / s for s in SPLITS if (root / s).is_dir()]
    return present or [root]  # flat: the root's children are the sequences


def load(
    root: str | Path,
    split: str | None = None,
    sequences: list[str] | None = None,
    require_frames: bool = True,
) -> list[Sequence]:
    """TNL2K sequences of `split` ("train"/"test"; None = both, or a flat folder of sequences)."""
    root = Path(root)
    if is_sequence_dir(root):
        return [load_sequence(root, require_frames)]
    found: dict[str, Path] = {}
    for folder in _split_folders(root, split):
        found.update(_sequence_dirs(folder))
    names, unknown = select_names(list(found), sequences)
    out = [load_sequence(found[n], require_frames) for n in names]
    return out + [missing_sequence(n, root / n, DATASET) for n in unknown]
