"""OTB99-Lang layout, and the plain OTB-2015 layout it is built on.

OTB99-Lang::

    <root>/OTB_videos/<Seq>/img/0001.jpg ...     frames
    <root>/OTB_videos/<Seq>/groundtruth_rect.txt x,y,w,h; tab, comma or space; LF or CRLF
    <root>/OTB_query_train/<name>.txt            one sentence per sequence (train split)
    <root>/OTB_query_test/<name>.txt             (test split)

Plain OTB-2015: ``<root>/<Seq>/img`` + ``groundtruth_rect.txt`` (and often ``cfg.json``,
``attrs.txt``); no sentences, so `language` is "" and an error says so.

Quirks handled:
* multi-target videos: ``Human4_2`` -> ``Human4/groundtruth_rect.2.txt``, ``Skating2-1`` ->
  ``Skating2/groundtruth_rect.1.txt`` (``-`` and ``_`` both accepted);
* start-frame offsets: the first annotated frame is ``cfg.json``'s ``startFrame`` when present,
  else `START_FRAMES`, else the first image (BlurCar1 has no 0001.jpg, it begins at 0247.jpg);
* fewer GT lines than images (Football1: 74 for 81): frames are cut to the GT length and a
  warning is recorded.
The sentence file is read as text (first non-empty line, stripped); unlike the reference
loader, a sentence with commas stays a sentence.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mvlm.data.benchmarks.common import (
    ERROR,
    INFO,
    check_frames,
    frame_number,
    list_frames,
    load_boxes,
    load_sentence,
    missing_sequence,
    natural_key,
    problem,
    read_text,
    select_names,
)
from mvlm.data.sequence import DataError, Sequence

DATASET = "otb99_lang"
GT_FILE = "groundtruth_rect.txt"
SPLITS = ("train", "test")

# OTB-100 videos whose annotation starts after their first image (OTB toolkit configs)
START_FRAMES = {"BlurCar1": 247, "BlurCar3": 3, "BlurCar4": 18, "David": 300}

_TARGET_SUFFIX = re.compile(r"^(?P<video>.+?)[-_](?P<target>\d+)$")
_TARGET_GT = re.compile(r"^groundtruth_rect\.(?P<target>\d+)\.txt$")


def _is_video_dir(path: Path) -> bool:
    return (path / "img").is_dir() or any(path.glob("groundtruth_rect*.txt"))


def _video_targets(video_dir: Path) -> dict[str, Path]:
    """Sequence name -> GT file for one video folder (several when it has .1/.2 GT files)."""
    if (video_dir / GT_FILE).is_file():
        return {video_dir.name: video_dir / GT_FILE}
    targets = {}
    for gt in sorted(video_dir.glob("groundtruth_rect.*.txt"), key=lambda p: natural_key(p.name)):
        match = _TARGET_GT.match(gt.name)
        if match:
            targets[f"{video_dir.name}-{match['target']}"] = gt
    return targets or {video_dir.name: video_dir / GT_FILE}  # no GT at all: reported on load


def resolve(videos_dir: Path, name: str) -> tuple[Path, Path] | None:
    """(video folder, GT file) of a sequence name, None when no folder matches."""
    if (videos_dir / name).is_dir():
        return videos_dir / name, videos_dir / name / GT_FILE
    match = _TARGET_SUFFIX.match(name)
    if match and (videos_dir / match["video"]).is_dir():
        video_dir = videos_dir / match["video"]
        return video_dir, video_dir / f"groundtruth_rect.{match['target']}.txt"
    return None


def _read_cfg(video_dir: Path) -> tuple[dict, list[str]]:
    path = video_dir / "cfg.json"
    if not path.is_file():
        return {}, []
    try:
        cfg = json.loads(read_text(path))
    except (DataError, json.JSONDecodeError) as exc:
        return {}, [problem(ERROR, path, f"unreadable sequence config ({exc})")]
    return (cfg if isinstance(cfg, dict) else {}), []


def _attributes(video_dir: Path, cfg: dict) -> dict[str, bool]:
    names = cfg.get("attributes")
    if not isinstance(names, list) and (video_dir / "attrs.txt").is_file():
        try:
            names = re.split(r"[,\s]+", read_text(video_dir / "attrs.txt"))
        except DataError:
            names = []
    return {str(n).strip(): True for n in names or [] if str(n).strip()}


def load_sequence(
    name: str,
    video_dir: str | Path,
    gt_path: str | Path,
    sentence_path: str | Path | None = None,
    require_frames: bool = True,
) -> Sequence:
    """One OTB sequence (`sentence_path` None = plain OTB, no sentence); never raises."""
    video_dir, gt_path = Path(video_dir), Path(gt_path)
    boxes, problems = load_boxes(gt_path)
    if sentence_path is None:
        language = ""
        problems.append(problem(ERROR, video_dir, "no sentence (plain OTB layout: no OTB_query_* file)"))
    else:
        language, sentence_problems = load_sentence(sentence_path)
        problems += sentence_problems

    cfg, cfg_problems = _read_cfg(video_dir)
    problems += cfg_problems
    frame_dir = video_dir / "img"
    listed = list_frames(frame_dir)
    start = cfg.get("startFrame", START_FRAMES.get(video_dir.name))
    frame_problems = []
    if isinstance(start, int) and listed and frame_number(listed[0]) is not None and frame_number(listed[0]) < start:
        kept = [f for f in listed if (frame_number(f) or 0) >= start]
        frame_problems.append(problem(INFO, frame_dir, f"annotation starts at frame {start}: "
                                                       f"{len(listed) - len(kept)} earlier images skipped"))
        listed = kept
    frames, more = check_frames(frame_dir, listed, len(boxes), gt_path)
    if require_frames:
        problems += frame_problems + more
    return Sequence(
        name=name, frames=frames, boxes=boxes, language=language, visible=None,
        attributes=_attributes(video_dir, cfg), dataset=DATASET, problems=problems,
        meta={"path": str(video_dir), "gt": str(gt_path), "start_frame": start or (frame_number(listed[0]) if listed else None)},
    )


def _query_names(root: Path, split: str | None) -> dict[str, Path] | None:
    """name -> sentence file from the OTB_query_<split> folders; None when the root has none."""
    splits = [split] if split is not None else list(SPLITS)
    if split is not None and split not in SPLITS:
        raise DataError(f"{root}: unknown OTB99-Lang split {split!r} (use train or test)")
    folders = [root / f"OTB_query_{s}" for s in splits if (root / f"OTB_query_{s}").is_dir()]
    if split is not None and not folders:
        raise DataError(f"{root / f'OTB_query_{split}'}: sentence folder not found")
    if not folders:
        return None
    names: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.txt"), key=lambda p: natural_key(p.stem)):
            names[path.stem] = path
    return names


def load(
    root: str | Path,
    split: str | None = None,
    sequences: list[str] | None = None,
    require_frames: bool = True,
) -> list[Sequence]:
    """OTB99-Lang sequences (`split` "train"/"test"; None = both), or plain OTB-2015 folders.

    `root` may also be one video folder (``.../Football1``).
    """
    root = Path(root)
    videos_dir = root / "OTB_videos" if (root / "OTB_videos").is_dir() else root
    if videos_dir == root and _is_video_dir(root):  # a single video folder
        return [load_sequence(n, root, gt, None, require_frames) for n, gt in _video_targets(root).items()]

    sentences = _query_names(root, split)
    if sentences is None and split is not None:
        raise DataError(f"{root}: plain OTB layout has no splits")
    if sentences is not None:
        names = list(sentences)
    else:
        videos = sorted((p for p in videos_dir.iterdir() if p.is_dir() and _is_video_dir(p)),
                        key=lambda p: natural_key(p.name))
        names = [n for v in videos for n in _video_targets(v)]
    names, unknown = select_names(names, sequences)
    out = []
    for name in names + unknown:
        where = resolve(videos_dir, name)
        if where is None:
            out.append(missing_sequence(name, videos_dir / name, DATASET))
            continue
        sentence = sentences.get(name) if sentences is not None else None
        out.append(load_sequence(name, where[0], where[1], sentence, require_frames))
    return out
