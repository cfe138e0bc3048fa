"""`mvlm weights check FILE` / `mvlm weights convert FILE --out OUT.safetensors`: what a weights
file is (layout, sha256, what it fits) and one safetensors file from it (docs/weights.md)."""

from __future__ import annotations

import argparse
import json
import sys


def _check(args: argparse.Namespace) -> int:
    from mvlm.model.loader import inspect_weights

    try:
        report = inspect_weights(args.file)
    except (ValueError, OSError) as exc:
        print(f"mvlm weights: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"path": report.path, "sha256": report.sha256, "layout": report.layout,
                          "num_tensors": report.num_tensors, "fits": report.fits, **report.details}, indent=2))
    else:
        print(f"file     {report.path}")
        print(f"layout   {report.layout}")
        print(f"sha256   {report.sha256}")
        print(f"tensors  {report.num_tensors}")
        for line in report.fits or ["nothing this suite loads (not a CLIP text tower, Fast-iTPN backbone or MVLM checkpoint)"]:
            print(f"fits     {line}")
    return 0 if report.fits else 1


def _convert(args: argparse.Namespace) -> int:
    from mvlm.model.loader import convert_weights

    try:
        out, what = convert_weights(args.file, args.out)
    except (ValueError, OSError) as exc:
        print(f"mvlm weights: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({what})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="check or convert weights files (released checkpoints, CLIP text)")
    verbs = p.add_subparsers(dest="weights_command", metavar="VERB")
    c = verbs.add_parser("check", help="layout, sha256 and what the file fits")
    c.add_argument("file")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_check)
    v = verbs.add_parser("convert", help="write one safetensors file (CLIP text tower in open_clip names)")
    v.add_argument("file")
    v.add_argument("--out", required=True, help="output .safetensors file")
    v.set_defaults(func=_convert)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
