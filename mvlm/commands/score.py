"""`mvlm score`: score result folders against ground truth under a protocol profile."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

_RUN_SUFFIX = re.compile(r"^(?P<tracker>.+)_(?P<run>\d{3})$")


def find_trackers(paths: list[str]) -> dict[str, list[Path]]:
    """{tracker name: [run dirs]} from result folders or folders of tracker folders.

    A folder holding ``*.txt`` is one tracker; otherwise each sub-folder is one; sub-folders named
    ``<tracker>_000``, ``_001``, ... are run ids of one tracker (merged per sequence).
    """
    trackers: dict[str, list[Path]] = {}
    for p in paths:
        root = Path(p)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: results folder not found")
        if any(root.glob("*.txt")):
            trackers.setdefault(root.name, []).append(root)
            continue
        subs = sorted(d for d in root.iterdir() if d.is_dir() and any(d.glob("*.txt")))
        if not subs:
            raise FileNotFoundError(f"{root}: no result files (<seq>.txt) in it or in its sub-folders")
        for d in subs:
            m = _RUN_SUFFIX.match(d.name)
            trackers.setdefault(m["tracker"] if m else d.name, []).append(d)
    return trackers


def _sequence_names(spec: str | None) -> list[str] | None:
    if not spec:
        return None
    text = spec
    if "," not in spec and Path(spec).is_file():
        text = Path(spec).read_text()
    return [n.strip() for n in re.split(r"[,\n]", text) if n.strip()]


def _run(args: argparse.Namespace) -> int:
    from mvlm.data.sequence import DataError
    from mvlm.atomic import write_text
    from mvlm.evaluate.groundtruth import read_groundtruth
    from mvlm.evaluate.profiles import get_profile
    from mvlm.evaluate.scoring import score_dataset
    from mvlm.evaluate.tables import comparison_table, _markdown

    try:
        profile = get_profile(args.profile)
        gt = read_groundtruth(args.dataset, args.root, args.gt_layout, _sequence_names(args.sequences))
        trackers = find_trackers(args.results)
    except (DataError, ValueError, FileNotFoundError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sequences = gt.sequences
    # a sequence without usable GT is never silently left out of the mean: it is listed, and fails the run
    for seq, msg in gt.failures.items():
        print(f"FAILED {seq}: ground truth: {msg}", file=sys.stderr)
    outputs, status = {}, 1 if gt.failures else 0
    for name, runs in trackers.items():
        try:
            result = score_dataset(sequences, runs if len(runs) > 1 else runs[0], profile,
                                   skip_missing=args.skip_missing, dataset=args.dataset)
        except (DataError, ValueError) as exc:
            print(f"error: {name}: {exc}", file=sys.stderr)
            status = 1
            continue
        for seq, msg in result.failures.items():
            print(f"FAILED {name}/{seq}: {msg}", file=sys.stderr)
        for seq in result.skipped:
            print(f"skipped {name}/{seq}: result file missing", file=sys.stderr)
        if not result.ok:
            status = 1
        outputs[name] = result.to_dict() | {
            "tracker": name, "setting": args.setting, "gt_layout": gt.layout, "sequences_named": gt.named,
            "averaged": result.n_averaged if result.scores() else 0, "gt_failures": dict(gt.failures)}
    table = comparison_table({n: o["mean"] for n, o in outputs.items()}, profile.name)
    print(f"{args.dataset} ({gt.named} sequences, {len(gt.failures)} without usable GT, {gt.layout} layout), "
          f"profile {profile.name}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    for name, o in outputs.items():
        print(f"{name}: mean over {o['averaged']} of {gt.named} sequences")
    if args.table_out:
        prefix = Path(args.table_out)
        write_text(prefix.with_suffix(".csv"), table.to_csv(index=False))
        write_text(prefix.with_suffix(".md"), _markdown(table))
    if args.json:
        payload = next(iter(outputs.values())) if len(outputs) == 1 else {
            "dataset": args.dataset, "profile": profile.name, "gt_layout": gt.layout, "sequences_named": gt.named,
            "gt_failures": dict(gt.failures), "trackers": outputs}
        write_text(Path(args.json), json.dumps(_clean(payload), indent=1, allow_nan=False) + "\n")
    return status


def _clean(value):
    """JSON-safe copy: NaN/inf -> null (strict JSON for other tools)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        return None
    return value


def register(sub: argparse._SubParsersAction) -> None:
    from mvlm.evaluate.profiles import DEFAULT_PROFILE, PROFILES

    p = sub.add_parser(
        "score", help="score result files (AUC / PRE / NPR) under a protocol profile",
        description="Profiles: " + "; ".join(f"{n} = {pr.title}" for n, pr in PROFILES.items()),
    )
    p.add_argument("--dataset", required=True, help="tnl2k, lasot, otb, otb99_lang, ... (GT reader and dataset rules)")
    p.add_argument("--root", required=True, help="GT root: toolkit annotation pack or dataset folder")
    p.add_argument("--results", required=True, action="append",
                   help="result folder (<seq>.txt) or folder of tracker folders; repeat to compare")
    p.add_argument("--profile", default=DEFAULT_PROFILE, help=f"scoring profile (default {DEFAULT_PROFILE})")
    p.add_argument("--gt-layout", choices=["auto", "toolkit", "dataset"], default="auto",
                   help="toolkit annotation pack, dataset folders, or auto (default): the first that names a sequence")
    p.add_argument("--sequences", help="comma-separated names or a file with one name per line (default: all)")
    p.add_argument("--skip-missing", action="store_true", help="drop sequences without a result file")
    p.add_argument("--json", help="write the scores as JSON to this file")
    p.add_argument("--table-out", help="write the comparison table to PREFIX.csv and PREFIX.md")
    p.add_argument("--setting", choices=["tf", "bbox"], default="tf", help="label for the report tables")
    p.set_defaults(func=_run)
