"""`mvlm datasets check NAME ROOT`: what each benchmark sequence holds and whether it is usable."""

from __future__ import annotations

import argparse
import json
import sys

from mvlm.data.sequence import DataError, Sequence

USABLE_RULE = """\
A sequence is USABLE when
  * its GT file is present and parses (at least one box, no NaN rows, no negative sizes),
  * its sentence is non-empty, and
  * unless --annotations-only: its frames are present, numbered without gaps, and there are
    at least as many frames as GT rows (extra frames are cut to the GT length, a warning),
and no other error-level problem was found. Warnings (frames cut, ...) and info (zero-size
boxes of absent frames, skipped frames before an OTB start frame) do not make it unusable.

Exit status: 0 every sequence is usable; 1 at least one is not (or none was found);
2 wrong ROOT, unknown dataset name or split.
"""

_LANGUAGE_WIDTH = 48


def summarize(seq: Sequence, require_frames: bool) -> dict:
    """One sequence as a JSON-ready dict (keys documented in the command help)."""
    from mvlm.data.benchmarks.common import usability_reasons

    reasons = usability_reasons(seq, require_frames=require_frames)
    return {
        "name": seq.name,
        "dataset": seq.dataset,
        "frames": len(seq.frames),
        "gt_boxes": len(seq.boxes),
        # frames with a positive-size box that are flagged visible where flags exist
        "visible": int(seq.valid_mask().sum()),
        "has_visibility_flags": seq.visible is not None,
        "language": seq.language,
        "usable": not reasons,
        "problems": list(seq.problems),
    }


def _short(text: str, width: int = _LANGUAGE_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def format_table(rows: list[dict]) -> str:
    """Human table: one line per sequence, its problems indented below it."""
    name_width = max([len("sequence")] + [len(r["name"]) for r in rows])
    header = f"{'sequence':<{name_width}}  {'frames':>6}  {'gt':>6}  {'visible':>7}  {'status':<8}  language"
    lines = [header, "-" * len(header)]
    for r in rows:
        status = "ok" if r["usable"] else "UNUSABLE"
        lines.append(f"{r['name']:<{name_width}}  {r['frames']:>6}  {r['gt_boxes']:>6}  {r['visible']:>7}  "
                     f"{status:<8}  {_short(r['language']) or '-'}")
        lines.extend(f"    {p}" for p in r["problems"])
    usable = sum(r["usable"] for r in rows)
    lines.append(f"{len(rows)} sequences: {usable} usable, {len(rows) - usable} not usable")
    return "\n".join(lines)


def _options(args: argparse.Namespace, dataset: str) -> dict:
    options = {}
    if args.attributes is not None:
        if dataset != "lasot":
            raise DataError("--attributes applies to lasot only")
        options["attributes_dir"] = args.attributes
    if args.version is not None:
        if dataset != "mgit":
            raise DataError("--version applies to mgit only")
        options["version"] = args.version
    return options


def _check(args: argparse.Namespace) -> int:
    from mvlm.data.benchmarks import canonical_name, load_dataset

    require_frames = not args.annotations_only
    names = [n.strip() for n in args.sequences.split(",") if n.strip()] if args.sequences else None
    try:
        dataset = canonical_name(args.name)
        sequences = load_dataset(dataset, args.root, split=args.split, sequences=names,
                                 require_frames=require_frames, **_options(args, dataset))
    except DataError as exc:
        print(f"mvlm datasets check: {exc}", file=sys.stderr)
        return 2
    rows = [summarize(s, require_frames) for s in sequences]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        print(format_table(rows))
    if not rows:
        print(f"mvlm datasets check: no {dataset} sequences found under {args.root}", file=sys.stderr)
        return 1
    return 0 if all(r["usable"] for r in rows) else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="inspect benchmark folders (datasets check ...)")
    p.set_defaults(func=lambda _args: (p.print_help(), 2)[1])
    verbs = p.add_subparsers(dest="datasets_command", metavar="VERB")
    c = verbs.add_parser(
        "check",
        help="per-sequence frames / GT / visible / language / problems; exit 1 if any is unusable",
        description="Load every sequence of a benchmark folder and report what it holds.\n\n" + USABLE_RULE
        + "\nJSON keys: name, dataset, frames, gt_boxes, visible (frames with a positive-size box,"
          " flagged visible where the benchmark has flags), has_visibility_flags, language, usable,"
          " problems (strings '<level>: <file>: <message>').",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("name", help="lasot, tnl2k, otb99_lang (otb), mgit, vasttrack, vot")
    c.add_argument("root", help="benchmark root folder, or a single sequence folder")
    c.add_argument("--split", default=None, help="benchmark split (train/test; MGIT train/val/test; "
                                                 "LaSOT also a name-list file)")
    c.add_argument("--sequences", default=None, help="comma-separated sequence names to check")
    c.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    c.add_argument("--annotations-only", action="store_true",
                   help="frames are not required (GT and sentences only)")
    c.add_argument("--attributes", default=None, help="LaSOT toolkit annos/att folder")
    c.add_argument("--version", default=None, choices=["full", "tiny"], help="MGIT split table")
    c.set_defaults(func=_check)
