"""`mvlm synth`: generate the embedded benchmark, or summarise a generated folder.

    mvlm synth --out DIR [--sequences N] [--seed S] [--size WxH] [--frames F] [--split NAME]
               [--workers W] [--overwrite] [--json] [--stats-out FILE]
    mvlm synth --stats DIR [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mvlm.config import SynthConfig

_DEFAULTS = SynthConfig()


def parse_size(text: str) -> tuple[int, int]:
    """"256x192" -> (256, 192)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected WIDTHxHEIGHT, e.g. 256x192") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"size {text!r}: width and height must be positive")
    return width, height


def _summary_lines(stats: dict) -> list[str]:
    share = stats["event_share"]
    size = stats["target_size"]
    lines = [
        f"{stats['root']}: {stats['sequences']} sequences, {stats['frames']} frames "
        f"({stats['frames_per_sequence']['min']}-{stats['frames_per_sequence']['max']} per sequence), "
        f"absent frames {100 * stats['absent_frame_share']:.1f}%",
        "events (share of sequences): " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in share.items()),
        f"target size sqrt(wh)/short side: min {size.get('min')} p10 {size.get('p10')} "
        f"median {size.get('median')} p90 {size.get('p90')} max {size.get('max')}",
        f"distractors sharing an attribute: mean {stats['distractors_sharing']['mean']} "
        f"(min {stats['distractors_sharing']['min']}), objects per sequence {stats['objects_per_sequence']}",
        "sentence kinds: " + ", ".join(f"{k} {v}" for k, v in stats["sentence_kinds"].items()),
        "success AUC ceilings (exact on the frames kept): " + ", ".join(
            f"{k} {v}" for k, v in stats["success_auc_ceiling"].items()),
    ]
    if "generation" in stats:
        g = stats["generation"]
        lines.append(f"generated {g['frames']} frames in {g['seconds']} s: {g['frames_per_second']} frames/s "
                     f"({g['workers']} workers)")
    lines += [f"problem: {p}" for p in stats["problems"]]
    return lines


def _run(args: argparse.Namespace) -> int:
    from mvlm.data.sequence import DataError
    from mvlm.data.synthetic import SynthError, dataset_stats, generate_dataset

    try:
        if args.stats:
            stats = dataset_stats(args.stats)
        elif args.out:
            stats = generate_dataset(
                args.out, sequences=args.sequences, seed=args.seed, size=args.size, frames=args.frames,
                split=args.split, workers=args.workers, overwrite=args.overwrite, progress=not args.json,
            )
        else:
            print("mvlm synth: error: give --out DIR (generate) or --stats DIR (summarise)", file=sys.stderr)
            return 2
    except (SynthError, DataError) as exc:
        print(f"mvlm synth: error: {exc}", file=sys.stderr)
        return 2
    if args.stats_out:
        path = Path(args.stats_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stats, indent=2) + "\n")
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print("\n".join(_summary_lines(stats)))
    return 1 if stats["problems"] else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate the embedded benchmark (LaSOT layout) or summarise one")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--out", metavar="DIR", help="folder to generate into")
    what.add_argument("--stats", metavar="DIR", help="summarise a generated folder instead")
    p.add_argument("--sequences", type=int, default=_DEFAULTS.sequences_test)
    p.add_argument("--seed", type=int, default=_DEFAULTS.seed_test)
    p.add_argument("--size", type=parse_size, default=(_DEFAULTS.width, _DEFAULTS.height), metavar="WxH")
    p.add_argument("--frames", type=int, default=_DEFAULTS.frames)
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--workers", type=int, default=0, help="processes (0 = one per CPU, at most 2)")
    p.add_argument("--overwrite", action="store_true", help="replace a folder written by mvlm synth before")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.add_argument("--stats-out", metavar="FILE", help="also write the statistics JSON (with frames/s) here")
    p.set_defaults(func=_run)
