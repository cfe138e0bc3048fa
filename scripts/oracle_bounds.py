"""Upper bounds of a trained network under oracle help: what would the tracker score if its
re-detection were perfect? A diagnostic of
what limits the embedded networks' accuracy, not a tracker mode.

Each sequence is tracked with the pipeline's tracker settings (params.yaml `tracker`), except that
after some frames the ground-truth box of that frame is handed over, as a perfect re-detection
would find it: the tracker's state becomes that box, its next pass is local and its memory is
cleared. The frame itself keeps the tracker's own answer, so no frame scores by construction; the
one exception is the template-free first frame, which starts from the GT box as the reference
harness does (its frame 0 is the GT box there).

  --oracle none    no help (equals `mvlm evaluate` with the same settings)
  --oracle events  hand over after the first visible frame that follows the target's absence (full
                   occlusion, out of view) and after the first frame of every new shot (camera
                   cut): perfect re-detection exactly where local tracking cannot follow;
                   `--events cut,occlusion,exit` picks the kinds (default all three; `--events ''`
                   leaves only the template-free first frame)
  --oracle lost    hand over after every visible frame whose answer has IoU < --lost-iou (0.1):
                   perfect re-detection whenever the tracker is off the target, the most that a
                   gate and a global pass could add to this network's local tracking

    python scripts/oracle_bounds.py --checkpoint models/tiny_bbox/final.safetensors --mode bbox \
        --root data/synth/test --oracle lost --out results/oracle/bbox_lost
"""

from __future__ import annotations

import argparse
import json
import traceback
from pathlib import Path

import numpy as np
import torch

from mvlm.config import load_params
from mvlm.data.benchmarks import load_dataset
from mvlm.data.benchmarks.common import load_flags
from mvlm.evaluate.metrics import iou_continuous
from mvlm.evaluate.results import write_results
from mvlm.evaluate.scoring import score_dataset
from mvlm.pipeline import _tracker_overrides
from mvlm.track.tracker import TrackerSpec, build_tracker

LOST_IOU = 0.1
EVENTS = ("cut", "occlusion", "exit")


def shot_starts(seq) -> set[int]:
    """First frames of every shot after the first (camera cuts), from the embedded benchmark's
    meta.json; none for a sequence without one (a real benchmark)."""
    meta_file = Path(seq.meta.get("path", "")) / "meta.json"
    if not meta_file.is_file():
        return set()
    shots = json.loads(meta_file.read_text()).get("shots", [])
    return {int(s["first"]) for s in shots[1:]}


def absences(seq) -> dict[str, np.ndarray]:
    """Per-frame absence flags by cause, from LaSOT's full_occlusion.txt / out_of_view.txt; a
    sequence without those files has one cause-less absence flag, counted as both."""
    folder = Path(seq.meta.get("path", ""))
    flags = {kind: load_flags(folder / name, len(seq.boxes))[0]
             for kind, name in (("occlusion", "full_occlusion.txt"), ("exit", "out_of_view.txt"))}
    if any(f is None for f in flags.values()):
        absent = ~seq.visible if seq.visible is not None else np.zeros(len(seq.boxes), bool)
        return {"occlusion": absent, "exit": absent}
    return flags


def hand_over(tracker, box: np.ndarray) -> None:
    """Put the tracker where a perfect re-detection would: on `box`, local next, no memory."""
    tracker.state = box.astype(np.float64).copy()
    tracker.mode = "local"
    tracker.memory, tracker.memory_view = None, None
    tracker.empty_run = 0


def track_with_oracle(tracker, seq, oracle: str, lost_iou: float = LOST_IOU,
                      events: tuple[str, ...] = EVENTS) -> tuple[np.ndarray, int]:
    """Boxes (N, 4) of one sequence and the number of handovers."""
    template_free = tracker.cfg.template_free
    n = len(seq.frames)
    visible = seq.visible if seq.visible is not None else np.ones(n, bool)
    cuts = shot_starts(seq) if "cut" in events else set()
    absent = {kind: flags for kind, flags in absences(seq).items() if kind in events}
    boxes = np.zeros((n, 4))
    handovers = 0
    for i in range(n):
        frame = seq.read_frame(i)
        if i == 0:
            given = seq.boxes[0] if (oracle != "none" or not template_free) else None
            boxes[0] = tracker.initialize(frame, seq.language, box=given).box
            if given is not None and template_free:
                hand_over(tracker, seq.boxes[0])
                handovers += 1
            continue
        boxes[i] = tracker.track(frame).box
        if oracle == "none" or not visible[i]:
            continue
        if oracle == "events":
            help_now = i in cuts or any(flags[i - 1] for flags in absent.values())
        else:  # lost
            help_now = iou_continuous(boxes[i:i + 1], seq.boxes[i:i + 1])[0] < lost_iou
        if help_now:
            hand_over(tracker, seq.boxes[i])
            handovers += 1
    return boxes, handovers


def oracle_bounds(spec: TrackerSpec, sequences: list, out: Path, oracle: str, lost_iou: float = LOST_IOU,
                  events: tuple[str, ...] = EVENTS) -> dict:
    """Track `sequences` with oracle help, write `<seq>.txt` and `oracle_summary.json` to `out`,
    and return the summary: settings, handovers and scores (vl_python profile, LaSOT rules)."""
    tracker = build_tracker(spec).tracker
    frames = handovers = 0
    done, failures = [], {}
    for seq in sequences:
        try:  # a broken sequence is reported and the others go on, as in `mvlm evaluate`
            boxes, n = track_with_oracle(tracker, seq, oracle, lost_iou, events)
        except Exception as exc:  # noqa: BLE001
            failures[seq.name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
            continue
        write_results(out, seq.name, boxes)
        done.append(seq)
        frames += len(boxes)
        handovers += n
    scores = score_dataset(done, out, profile="vl_python", dataset="lasot").scores() if done else None
    summary = {"mode": "tf" if tracker.cfg.template_free else "bbox", "oracle": oracle, "overrides": list(spec.overrides),
               "lost_iou": lost_iou if oracle == "lost" else None,
               "events": list(events) if oracle == "events" else None, "frames": frames, "handovers": handovers,
               "sequences": len(done), "failures": failures, **(scores or {})}
    (out / "oracle_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--mode", choices=["tf", "bbox"], required=True)
    ap.add_argument("--root", required=True, help="embedded benchmark split (LaSOT layout)")
    ap.add_argument("--oracle", choices=["none", "events", "lost"], default="events")
    ap.add_argument("--out", required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--lost-iou", type=float, default=LOST_IOU, help="IoU under which --oracle lost hands over")
    ap.add_argument("--events", default=",".join(EVENTS), help="kinds for --oracle events, comma-separated")
    ap.add_argument("--set", action="append", default=[], help="extra tracker override key=value")
    args = ap.parse_args()

    torch.set_num_threads(1)  # as one evaluation worker runs
    compat, overrides = _tracker_overrides(load_params(args.params)["tracker"], args.mode)
    spec = TrackerSpec(checkpoint=args.checkpoint, compat=compat, overrides=overrides + tuple(args.set))
    events = tuple(e for e in args.events.split(",") if e)
    unknown = set(events) - set(EVENTS)
    if unknown:
        ap.error(f"--events: unknown kind(s) {sorted(unknown)}; choose from {', '.join(EVENTS)}")
    sequences = load_dataset("lasot", args.root)
    summary = oracle_bounds(spec, sequences, Path(args.out), args.oracle, args.lost_iou, events)
    print(json.dumps({"checkpoint": args.checkpoint, "root": args.root, **summary}))


if __name__ == "__main__":
    main()
