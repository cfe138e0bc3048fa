"""`mvlm evaluate`: run the tracker over a benchmark into a results folder (resumable)."""

from __future__ import annotations

import argparse
import json
import sys

from mvlm.commands.track import RANDOM_INIT_WARNING, add_tracker_options, spec_from_args


def _run(args: argparse.Namespace) -> int:
    from mvlm.config import ConfigError
    from mvlm.data.sequence import DataError, fill_missing_language
    from mvlm.evaluate.runner import RunOptions, print_progress, run_dataset, sequences_subset

    try:
        from mvlm.data.benchmarks import load_dataset

        sequences = load_dataset(args.dataset, args.root, split=args.split, sequences=args.sequences or None)
        sequences = fill_missing_language(sequences_subset(sequences, args.sequences), args.default_text)
        if not args.checkpoint:
            print(RANDOM_INIT_WARNING.format(preset=args.model_preset, seed=args.seed), file=sys.stderr)
        summary = run_dataset(sequences, args.out, spec_from_args(args), workers=args.workers,
                              resume=args.resume, threads=args.threads, options=RunOptions(init=args.init, max_frames=args.max_frames),
                              on_result=None if args.quiet else print_progress)
    except (DataError, ConfigError, ValueError, OSError) as exc:
        print(f"mvlm evaluate: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: summary[k] for k in ("out_dir", "sequences", "frames", "tracking_fps")}
                     | {"done": len(summary["done"]), "skipped": len(summary["skipped"]),
                        "stale": summary["stale"], "failed": summary["failed"]}))
    return 1 if summary["failed"] else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="run the tracker over a dataset -> results folder")
    p.add_argument("--dataset", required=True, help="lasot, tnl2k, otb99lang, mgit, vasttrack, synth, ...")
    p.add_argument("--root", required=True, help="dataset root folder")
    p.add_argument("--split", default=None)
    p.add_argument("--out", required=True, help="results folder (<seq>.txt + <seq>_meta.json)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes, each with --threads torch threads (with --device cuda: spread over the visible GPUs)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1; 0 = torch's default)")
    p.add_argument("--resume", action="store_true", help="skip sequences whose results are complete and were made with the same settings and "
                   "weights (results of other settings are moved to stale/ and tracked again)")
    p.add_argument("--sequences", nargs="*", default=None, help="only these sequence names")
    p.add_argument("--init", choices=["box", "language"], default=None,
                   help="start from the first GT box or from language only (default: by the preset)")
    p.add_argument("--max-frames", type=int, default=0, help="cap frames per sequence (smoke runs)")
    p.add_argument("--default-text", default=None,
                   help="sentence for sequences that have none (plain OTB, VOT), e.g. 'the tracked object'")
    p.add_argument("--quiet", action="store_true")
    add_tracker_options(p)
    p.set_defaults(func=_run)
