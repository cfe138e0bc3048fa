"""`mvlm track`: track one target described in words over a frame folder or a video file."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from mvlm.track.tracker import TrackerSpec


def add_tracker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="suite checkpoint (carries model preset + mode); omit for a "
                   "random-init network (said loudly)")
    p.add_argument("--model-preset", default="tiny", help="model preset without --checkpoint (default tiny)")
    p.add_argument("--preset", default=None, choices=["tf", "tf_tnl2k", "bbox"],
                   help="tracker preset (default: from the checkpoint, else by the network)")
    p.add_argument("--compat", default="reference", choices=["reference", "corrected"])
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="tracker setting override, e.g. --set tau=0.2 --set memory=false (repeatable)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0, help="seed of the random-init network")
    add_weights_options(p)


def add_weights_options(p: argparse.ArgumentParser) -> None:
    """How to load a checkpoint: preset, mode, CLIP text file, explicit random parts (docs/weights.md)."""
    p.add_argument("--checkpoint-preset", default=None,
                   help="model preset of a checkpoint without a config inside (the released "
                        "MVLM_TF.pth.tar / MVLM_BBOX.pth.tar: base); needs --mode")
    p.add_argument("--mode", choices=["tf", "bbox"], default=None,
                   help="the checkpoint's network: tf (template-free) or bbox (box+language); required "
                        "for files that do not say (released .pth.tar), checked against those that do")
    p.add_argument("--template-mode", action="store_true", help="same as --mode bbox")
    p.add_argument("--text-weights", default=None,
                   help="CLIP ViT-L/14 text weights for a frozen text tower (OpenAI ViT-L-14.pt, open_clip "
                        "or HF file)")
    p.add_argument("--random-init", action="store_true",
                   help="allow a random CLIP text tower when no --text-weights (outputs say random_init)")


def model_section_from_args(args: argparse.Namespace):
    from mvlm.model.metadata import model_section

    if args.template_mode and args.mode == "tf":
        raise SystemExit("--template-mode contradicts --mode tf")
    return model_section(args.checkpoint_preset, "bbox" if args.template_mode else args.mode,
                         args.text_weights, args.random_init)


def spec_from_args(args: argparse.Namespace) -> TrackerSpec:
    model = model_section_from_args(args)
    return TrackerSpec(checkpoint=args.checkpoint, model_preset=args.model_preset, tracker_preset=args.preset,
                       compat=args.compat, overrides=tuple(args.overrides), device=args.device, seed=args.seed,
                       checkpoint_model=model)


RANDOM_INIT_WARNING = ("WARNING: no --checkpoint: using a RANDOM-INIT {preset} network (seed {seed}); "
                       "the boxes are not meaningful")


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class SourceError(ValueError):
    """A frame folder or video cannot be read; the message names the path."""


def _natural(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def frame_folder(directory: str | Path):
    """RGB frames of an image folder in natural order (1.jpg, 2.jpg, 10.jpg)."""
    from mvlm.data.image import read_rgb

    directory = Path(directory)
    if not directory.is_dir():
        raise SourceError(f"{directory}: frame folder not found")
    paths = sorted((p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural)
    if not paths:
        raise SourceError(f"{directory}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    for p in paths:
        yield read_rgb(p)


def video_frames(path: str | Path):
    """RGB frames of a video file decoded by OpenCV."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: video file not found")
    cap = cv2.VideoCapture(str(path))
    try:
        ok, frame = cap.read() if cap.isOpened() else (False, None)
        if not ok or frame is None:
            raise SourceError(f"{path}: cannot decode video (not a video, corrupt, or unsupported codec)")
        while ok:
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            ok, frame = cap.read()
    finally:
        cap.release()


def parse_box(text: str | None):
    if text is None:
        return None
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not np.isfinite(values).all() or values[2] <= 0 or values[3] <= 0:
        raise SourceError(f"--init-box {text!r}: expected x,y,w,h with w,h > 0")
    return np.array(values)


def _run(args: argparse.Namespace) -> int:
    from mvlm.config import ConfigError
    from mvlm.data.sequence import DataError
    from mvlm.evaluate.results import format_boxes
    from mvlm.model.metadata import CheckpointError
    from mvlm.model.text import TextError
    from mvlm.track.tracker import TrackerError, build_tracker

    try:
        box = parse_box(args.init_box)
        frames = frame_folder(args.frames) if args.frames else video_frames(args.video)
        built = build_tracker(spec_from_args(args))
        if built.random_init:
            print(RANDOM_INIT_WARNING.format(preset=args.model_preset, seed=args.seed), file=sys.stderr)
        tracker = built.tracker
        results = []
        for i, frame in enumerate(frames):
            if args.max_frames and i >= args.max_frames:
                break
            results.append(tracker.initialize(frame, args.text, box=box) if i == 0 else tracker.track(frame))
    except (SourceError, DataError, TrackerError, ConfigError, CheckpointError, TextError, OSError) as exc:
        # one line naming the file (a corrupt checkpoint used to end in a traceback)
        print(f"mvlm track: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    boxes = np.array([r.box for r in results])
    text = format_boxes(boxes)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    if args.meta:
        meta = {"text": args.text, "init_box": None if box is None else box.tolist(), "frames": len(results),
                "random_init": built.random_init, "config": built.info,
                "per_frame": [r.to_json() for r in results]}
        Path(args.meta).parent.mkdir(parents=True, exist_ok=True)
        Path(args.meta).write_text(json.dumps(meta, indent=1) + "\n")
    modes = [r.mode for r in results[1:]]
    print(f"tracked {len(results)} frames ({modes.count('global')} global passes)", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("track", help="track a target described in words over frames or a video")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--frames", help="folder of frame images")
    src.add_argument("--video", help="video file (decoded with OpenCV)")
    p.add_argument("--text", required=True, help="description of the target")
    p.add_argument("--init-box", help="x,y,w,h of the target in the first frame (template mode needs it)")
    p.add_argument("--out", help="results file (one x,y,w,h per frame); default stdout")
    p.add_argument("--meta", help="JSON with κ, modes and timings per frame")
    p.add_argument("--max-frames", type=int, default=0)
    add_tracker_options(p)
    p.set_defaults(func=_run)
