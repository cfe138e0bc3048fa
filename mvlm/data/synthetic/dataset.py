"""Writing the embedded benchmark in LaSOT layout, and summarising a written folder.

Layout (read by `mvlm.data.benchmarks.lasot`)::

    <out>/dataset.json                      generator parameters (no timings: the folder is
                                            byte-identical across runs with the same arguments)
    <out>/testing_set.txt                   sequence names, one per line (training_set.txt for
                                            --split train, validation_set.txt for val)
    <out>/<shape>/<shape>-<i+1>/img/%08d.jpg
                               groundtruth.txt      x,y,w,h integers, one row per frame;
                                                    0,0,0,0 where the target is absent
                               nlp.txt              one sentence, no trailing newline
                               full_occlusion.txt   one line, comma-separated 0/1
                               out_of_view.txt      one line, comma-separated 0/1
                               attributes.json      {flag: bool} (LaSOT-like attributes)
                               meta.json            events with frame ranges, objects, sentence

Frame indices inside meta.json are 0-based rows of groundtruth.txt (image = index + 1).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from mvlm.data.sequence import DataError
from mvlm.data.synthetic.plan import (
    ATTRIBUTE_KEYS, PARTIAL_OCCLUSION, SynthError, SequencePlan, check_size, plan_sequence,
)
from mvlm.data.synthetic.render import SequenceRenderer
from mvlm.data.synthetic.vocab import SHAPES

GENERATOR_VERSION = 1
JPEG_QUALITY = 90
SPLIT_FILES = {"train": "training_set.txt", "val": "validation_set.txt", "test": "testing_set.txt"}
ABSENT_BOX = (0, 0, 0, 0)
LOW_RESOLUTION = 0.06  # target side sqrt(w·h) below this share of the short side
SIMILAR_DISTRACTORS = 2  # "distractors" flag: at least this many share an attribute


# ---------------------------------------------------------------------------------------------
# events and attributes of a plan


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) of every run of True in a bool array."""
    padded = np.concatenate([[False], flags.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def partial_occlusion_frames(plan: SequencePlan) -> np.ndarray:
    return plan.visible & (plan.occluded_fraction >= PARTIAL_OCCLUSION)


def fast_motion_frames(plan: SequencePlan) -> np.ndarray:
    """Frames whose target centre moved more than half its size since the previous frame
    (both frames visible, same shot). Size = sqrt(w·h) of the previous box."""
    boxes = plan.boxes.astype(float)
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    step = np.hypot(*(centre[1:] - centre[:-1]).T)
    size = np.sqrt(boxes[:-1, 2] * boxes[:-1, 3])
    same_shot = np.array([plan.shot_of(t) == plan.shot_of(t + 1) for t in range(plan.frames - 1)])
    both = plan.visible[1:] & plan.visible[:-1] & same_shot
    fast = both & (step > np.maximum(3.0, 0.5 * size))
    return np.concatenate([[False], fast])


def events_of(plan: SequencePlan) -> list[dict]:
    """Every event of the sequence with its 0-based inclusive frame range, ordered by start.

    Occlusion and out-of-view events are the runs of the written flags (so they always agree
    with the flag files); the others come from the plan.
    """
    events: list[dict] = []
    planned = plan.planned
    for first, last in _runs(plan.full_occlusion):
        p = planned.get("full_occlusion")
        events.append({"type": "full_occlusion", "first": first, "last": last,
                       "planned": bool(p and first <= p["last"] and last >= p["first"])})
    for first, last in _runs(plan.out_of_view):
        info = {k: v for k, v in planned.get("out_of_view", {}).items() if k.endswith("_side")}
        events.append({"type": "out_of_view", "first": first, "last": last, **info})
    for first, last in _runs(partial_occlusion_frames(plan)):
        events.append({"type": "partial_occlusion", "first": first, "last": last})
    if "cut" in planned:
        c = planned["cut"]
        events.append({"type": "cut", "first": c["frame"], "last": c["frame"], "jump_px": c["jump_px"]})
    for name in ("scale_change", "fast_motion", "noise", "illumination"):
        if name in planned:
            events.append({"type": name, **_plain(planned[name])})
    if "fast_motion" in planned:
        blurred = _runs(plan.blur_length > 0)
        for first, last in blurred:
            events.append({"type": "motion_blur", "first": first, "last": last,
                           "max_kernel_px": int(plan.blur_length[first : last + 1].max())})
    events.sort(key=lambda e: (e["first"], e["type"]))
    return events


def attributes_of(plan: SequencePlan) -> dict[str, bool]:
    """LaSOT-like per-sequence flags (keys in `ATTRIBUTE_KEYS`), from the written geometry."""
    S = plan.short_side
    boxes = plan.boxes.astype(float)
    whole = plan.visible & (plan.in_frame_fraction > 0.99) & (plan.occluded_fraction < 0.01)
    area = boxes[:, 2] * boxes[:, 3]
    ratio = area[whole] / max(1.0, area[0])
    sides = np.sqrt(area[plan.visible])
    distractors = [o for o in plan.objects[1:] if o.shares]
    flags = {
        "full_occlusion": bool(plan.full_occlusion.any()),
        "partial_occlusion": bool(partial_occlusion_frames(plan).any()),
        "out_of_view": bool(plan.out_of_view.any()),
        "cut": "cut" in plan.planned,
        "scale_change": bool(((ratio < 0.5) | (ratio > 2.0)).any()),  # LaSOT SV rule
        "fast_motion": bool(fast_motion_frames(plan).any()),
        "motion_blur": bool((plan.blur_length > 0).any()),
        "noise": bool(plan.noisy.any()),
        "illumination_variation": bool((np.abs(plan.gain - 1.0) > 0.15).any()),
        "low_resolution": bool(len(sides) and sides.min() < LOW_RESOLUTION * S),
        "distractors": len(distractors) >= SIMILAR_DISTRACTORS,
        "similar_object": any({"shape", "colour"} <= set(o.shares) for o in plan.objects[1:]),
        "background_clutter": any(shot.background in ("stripes", "blobs") for shot in plan.shots),
        "camera_motion": any(shot.pan for shot in plan.shots),
        "relational_sentence": plan.sentence_kind == "relational",
        "motion_sentence": plan.sentence_kind == "motion",
    }
    assert tuple(flags) == ATTRIBUTE_KEYS
    return flags


def _plain(value):
    """JSON-safe copy: numpy scalars to Python, floats rounded to 0.1 px."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return round(float(value), 3)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def meta_of(plan: SequencePlan) -> dict:
    target = plan.target
    return _plain({
        "generator": "mvlm.data.synthetic", "version": GENERATOR_VERSION,
        "name": plan.name, "index": plan.index, "seed": plan.seed,
        "width": plan.width, "height": plan.height, "frames": plan.frames,
        "frame_index_base": 0, "absent_box": list(ABSENT_BOX),
        "sentence": plan.sentence, "sentence_kind": plan.sentence_kind, "sentence_parts": plan.sentence_parts,
        "target": {**target.describe(), "diameter_px": round(float(plan.diameters[0, 0]), 1)},
        "objects": [{"id": k, **o.describe(), "diameter_px": round(float(plan.diameters[0, k]), 1)}
                    for k, o in enumerate(plan.objects)],
        "distractors_sharing": sum(1 for o in plan.objects[1:] if o.shares),
        "events": events_of(plan),
        "shots": [{"first": s.first, "last": s.last, "background": s.background, "pan": s.pan} for s in plan.shots],
        "occluders": [{"kind": o.kind, "rect_xyxy": list(o.rect), "first": o.first, "last": o.last}
                      for o in plan.occluders],
        "visible_fraction": [round(float(v), 2) for v in plan.visible_fraction],
    })


# ---------------------------------------------------------------------------------------------
# writing


def _flags_line(flags: np.ndarray) -> str:
    return ",".join("1" if f else "0" for f in flags)


def write_sequence(plan: SequencePlan, out: Path) -> int:
    """Write one sequence under `out/<class>/<name>` (atomically: a temp folder, then rename).
    Returns the number of frames written."""
    seq_dir = out / plan.target.shape / plan.name
    tmp = seq_dir.with_name(f".{plan.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "img").mkdir(parents=True)
    renderer = SequenceRenderer(plan)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    for t in range(plan.frames):
        path = tmp / "img" / f"{t + 1:08d}.jpg"
        if not cv2.imwrite(str(path), renderer.frame(t), params):
            raise SynthError(f"{path}: could not write the frame (disk full or not writable?)")
    rows = "\n".join(",".join(str(int(v)) for v in box) for box in plan.boxes)
    (tmp / "groundtruth.txt").write_text(rows + "\n")
    (tmp / "nlp.txt").write_text(plan.sentence)
    (tmp / "full_occlusion.txt").write_text(_flags_line(plan.full_occlusion))
    (tmp / "out_of_view.txt").write_text(_flags_line(plan.out_of_view))
    (tmp / "attributes.json").write_text(json.dumps(attributes_of(plan), indent=1) + "\n")
    (tmp / "meta.json").write_text(json.dumps(meta_of(plan), indent=1) + "\n")
    if seq_dir.exists():
        shutil.rmtree(seq_dir)
    os.replace(tmp, seq_dir)
    return plan.frames


def _generate_one(job: tuple) -> tuple[str, int]:
    seed, index, width, height, frames, out = job
    cv2.setNumThreads(1)  # parallelism is across sequences; threads inside would oversubscribe
    plan = plan_sequence(seed, index, width, height, frames)
    return plan.name, write_sequence(plan, Path(out))


def _prepare_out(out: Path, overwrite: bool) -> None:
    """Create `out`; an existing non-empty folder is replaced only if it is a previous output of
    this generator (dataset.json present) and `overwrite` is set."""
    if out.exists() and not out.is_dir():
        raise SynthError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        marker = out / "dataset.json"
        if not overwrite:
            raise SynthError(f"{out}: folder is not empty (pass --overwrite to replace a dataset written by mvlm synth)")
        if not marker.is_file():
            raise SynthError(f"{out}: not empty and has no dataset.json, so it was not written by mvlm synth; refusing to delete it")
        for shape in SHAPES:  # remove only what this generator writes
            if (out / shape).is_dir():
                shutil.rmtree(out / shape)
        for name in [*SPLIT_FILES.values(), "dataset.json"]:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _check_args(sequences, seed, split, workers) -> None:
    if isinstance(sequences, bool) or not isinstance(sequences, (int, np.integer)) or sequences < 1:
        raise SynthError(f"sequences must be a positive integer, got {sequences!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SynthError(f"seed must be a non-negative integer, got {seed!r}")
    if split not in SPLIT_FILES:
        raise SynthError(f"unknown split {split!r} (use one of: {', '.join(SPLIT_FILES)})")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise SynthError(f"workers must be >= 0 (0 = one per CPU, at most 2), got {workers!r}")


def generate_dataset(
    out: str | Path,
    sequences: int = 30,
    seed: int = 3,
    size: tuple[int, int] = (256, 192),
    frames: int = 120,
    split: str = "test",
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = False,
) -> dict:
    """Generate `sequences` sequences of `frames` frames at `size` = (W, H) into `out`.

    Sequence i depends only on (seed, i), so any `workers` count gives identical files.
    Returns `dataset_stats(out)` plus a "generation" entry with seconds and frames/s.
    """
    _check_args(sequences, seed, split, workers)
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError) as exc:
        raise SynthError(f"size must be (width, height), got {size!r}") from exc
    check_size(width, height, frames)
    out = Path(out)
    _prepare_out(out, overwrite)
    workers = workers or min(2, os.cpu_count() or 1)
    workers = min(workers, sequences)
    jobs = [(int(seed), i, width, height, int(frames), str(out)) for i in range(sequences)]
    start = time.perf_counter()
    names = []
    bar = _progress_bar(sequences, progress)
    if workers == 1:
        for job in jobs:
            names.append(_generate_one(job)[0])
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for name, _n in pool.map(_generate_one, jobs, chunksize=1):
                names.append(name)
                bar.update(1)
    bar.close()
    seconds = time.perf_counter() - start
    (out / SPLIT_FILES[split]).write_text("\n".join(names) + "\n")
    info = {
        "generator": "mvlm.data.synthetic", "version": GENERATOR_VERSION, "split": split, "seed": int(seed),
        "sequences": int(sequences), "width": width, "height": height, "frames": int(frames),
        "jpeg_quality": JPEG_QUALITY, "absent_box": list(ABSENT_BOX), "frame_index_base": 0,
    }
    (out / "dataset.json").write_text(json.dumps(info, indent=1) + "\n")
    stats = dataset_stats(out)
    total = sequences * frames
    stats["generation"] = {
        "seconds": round(seconds, 2), "frames": total, "frames_per_second": round(total / seconds, 1),
        "workers": workers, "cpu_count": os.cpu_count(),
    }
    return stats


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="seq", desc="synth")


# ---------------------------------------------------------------------------------------------
# statistics of a written folder


def _sequence_dirs(root: Path) -> list[Path]:
    """Sequence folders in split-list order (any *_set.txt), else every <class>/<name>/meta.json."""
    for list_name in SPLIT_FILES.values():
        path = root / list_name
        if path.is_file():
            names = [n.strip() for n in path.read_text().splitlines() if n.strip()]
            return [root / n.rsplit("-", 1)[0] / n for n in names]
    return sorted(p.parent for p in root.glob("*/*/meta.json"))


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc


def _quantiles(values: list[float]) -> dict:
    if not values:
        return {}
    v = np.asarray(values, float)
    q = np.quantile(v, [0.0, 0.1, 0.5, 0.9, 1.0])
    return {k: round(float(x), 4) for k, x in zip(("min", "p10", "median", "p90", "max"), q)}


_BREAKS = {
    "perfect": (),
    "lost_at_first_cut_or_exit": ("cut", "out_of_view"),
    "lost_at_first_cut_exit_or_full_occlusion": ("cut", "out_of_view", "full_occlusion"),
}


def success_ceilings(visible: np.ndarray, events: list[dict]) -> dict[str, float]:
    """Success AUC (x100) one sequence gives idealized trackers under the pytracking protocol.

    A frame with IoU 1 counts in 20 of the 21 thresholds (IoU > 1.0 is impossible) and an absent
    frame is a miss, so a tracker exact on K of N frames scores 100 * (20/21) * K / N:

        perfect                                   K = visible frames
        lost_at_first_cut_or_exit                 K = visible frames before the first cut/exit event
        lost_at_first_cut_exit_or_full_occlusion  ... or full occlusion event

    The last two bound a tracker that never re-detects: what local tracking alone can reach.
    """
    visible = np.asarray(visible, bool)
    n = len(visible)
    ceilings = {}
    for name, kinds in _BREAKS.items():
        stop = min([int(e["first"]) for e in events if e["type"] in kinds] + [n])
        ceilings[name] = 100.0 * (20 / 21) * float(visible[:stop].sum()) / n
    return ceilings


def dataset_stats(root: str | Path) -> dict:
    """Summary of a generated folder: sequences, frames, share of sequences with each attribute,
    target size as sqrt(w·h) / min(W, H) over visible frames, distractors sharing an attribute
    with the target, sentence kinds, `success_ceilings` averaged over sequences. Inconsistencies
    (flag/GT/image counts) go to "problems"."""
    from mvlm.data.benchmarks.common import read_boxes, read_flags

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    seq_dirs = _sequence_dirs(root)
    if not seq_dirs:
        raise DataError(f"{root}: no sequences found (no split list and no <class>/<name>/meta.json)")
    problems: list[str] = []
    frame_counts, sizes, first_sizes, sharing, objects, absent = [], [], [], [], [], 0
    ceilings: dict[str, list[float]] = {name: [] for name in _BREAKS}
    attribute_counts = dict.fromkeys(ATTRIBUTE_KEYS, 0)
    kinds: dict[str, int] = {}
    classes: dict[str, int] = {}
    for seq_dir in seq_dirs:
        meta = _read_json(seq_dir / "meta.json")
        attrs = _read_json(seq_dir / "attributes.json")
        boxes = read_boxes(seq_dir / "groundtruth.txt")
        occluded = read_flags(seq_dir / "full_occlusion.txt")
        out_view = read_flags(seq_dir / "out_of_view.txt")
        n_images = len(list((seq_dir / "img").glob("*.jpg")))
        if not len(boxes) == len(occluded) == len(out_view) == n_images:
            problems.append(f"{seq_dir}: {len(boxes)} boxes, {len(occluded)}+{len(out_view)} flags, {n_images} images")
            continue
        visible = ~(occluded | out_view)
        short = min(meta["width"], meta["height"])
        side = np.sqrt(boxes[:, 2] * boxes[:, 3]) / short
        sizes.extend(side[visible].tolist())
        first_sizes.append(float(side[0]))
        frame_counts.append(len(boxes))
        absent += int((~visible).sum())
        for name, value in success_ceilings(visible, meta["events"]).items():
            ceilings[name].append(value)
        sharing.append(int(meta["distractors_sharing"]))
        objects.append(len(meta["objects"]))
        kinds[meta["sentence_kind"]] = kinds.get(meta["sentence_kind"], 0) + 1
        cls = meta["target"]["shape"]
        classes[cls] = classes.get(cls, 0) + 1
        for key in ATTRIBUTE_KEYS:
            attribute_counts[key] += bool(attrs.get(key, False))
        attribute_counts.setdefault("cut_or_out_of_view", 0)
        attribute_counts["cut_or_out_of_view"] += bool(attrs.get("cut") or attrs.get("out_of_view"))
    n = len(frame_counts)
    if n == 0:
        raise DataError(f"{root}: no readable sequence ({problems[0] if problems else 'none listed'})")
    info = _read_json(root / "dataset.json") if (root / "dataset.json").is_file() else {}
    return {
        "root": str(root),
        "split": info.get("split"),
        "seed": info.get("seed"),
        "image_size": [info.get("width"), info.get("height")] if info else None,
        "sequences": n,
        "frames": int(sum(frame_counts)),
        "frames_per_sequence": {"min": int(min(frame_counts)), "max": int(max(frame_counts))},
        "absent_frame_share": round(absent / sum(frame_counts), 4),
        "success_auc_ceiling": {name: round(float(np.mean(v)), 2) for name, v in ceilings.items()},
        "event_share": {k: round(v / n, 4) for k, v in attribute_counts.items()},
        "target_size": {"definition": "sqrt(w*h) / min(W, H), visible frames", **_quantiles(sizes),
                        "first_frame": _quantiles(first_sizes)},
        "distractors_sharing": {"mean": round(float(np.mean(sharing)), 3), "min": int(min(sharing)),
                                "max": int(max(sharing))},
        "objects_per_sequence": round(float(np.mean(objects)), 3),
        "sentence_kinds": {k: kinds[k] for k in sorted(kinds)},
        "classes": {k: classes[k] for k in sorted(classes)},
        "problems": problems,
    }
