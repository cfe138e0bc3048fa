"""`mvlm submit mgit`: the VideoCube evaluation server's zip (result/ + time/ files) from a
results folder of the MGIT test split. Format and checks: docs/mgit.md."""

from __future__ import annotations

import argparse
import json
import sys


def _run(args: argparse.Namespace) -> int:
    from mvlm.evaluate.submit import SubmitError, build_submission, find_split_json, frame_counts, split_ids

    try:
        if not (args.root or args.split_json):
            raise SubmitError("give --root (dataset root: split ids and frame counts) or --split-json")
        ids = split_ids(args.split_json or find_split_json(args.root), args.version, "test")
        counts = frame_counts(args.root, ids) if args.root else None
        if counts is None:
            print("mvlm submit: warning: no --root, frame counts are not checked against the dataset",
                  file=sys.stderr)
        summary = build_submission(args.results, args.out, ids, args.tracker_name, counts)
    except SubmitError as exc:
        print(f"mvlm submit: error: {exc}", file=sys.stderr)
        return 2
    if summary["ignored"]:
        print(f"mvlm submit: {len(summary['ignored'])} result file(s) not in the {args.version} test split "
              f"left out: {', '.join(summary['ignored'])}", file=sys.stderr)
    print(json.dumps(summary))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="pack test-split results for an evaluation server (MGIT)")
    p.add_argument("benchmark", choices=["mgit"])
    p.add_argument("--results", required=True, help="results folder (<seq>.txt + <seq>_meta.json)")
    p.add_argument("--out", required=True, help="zip file to write")
    p.add_argument("--tracker-name", default="MVLM", help="name in the file names (default MVLM)")
    p.add_argument("--root", default=None, help="MGIT root: split ids from its mgit.json, frame counts from data/test/")
    p.add_argument("--split-json", default=None, help="mgit.json to read the ids from (default: the one under --root)")
    p.add_argument("--version", choices=["tiny", "full"], default="tiny",
                   help="id table: tiny = MGIT's 30 test sequences (default), full = VideoCube's 100")
    p.set_defaults(func=_run)
