"""`mvlm checkpoint inspect PATH [--preset P] [--json]`: what a checkpoint holds and whether it
loads strictly into a model preset (exit 0 only then)."""

from __future__ import annotations

import argparse
import json
import sys


def _inspect(args: argparse.Namespace) -> int:
    from mvlm.config import ConfigError
    from mvlm.model.checkpoint import CheckpointError, inspect_checkpoint

    try:
        info = inspect_checkpoint(args.path, preset=args.preset)
    except (CheckpointError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_text(info, args.max_keys)
    if "loads_strictly" not in info:
        print("no model to check against: pass --preset (or use a suite checkpoint with metadata)",
              file=sys.stderr)
        return 1
    return 0 if info["loads_strictly"] else 1


def _print_text(info: dict, max_keys: int) -> None:
    print(f"file        {info['path']}")
    print(f"format      {info['format']}")
    if info["metadata"]:
        for k, v in info["metadata"].items():
            print(f"meta.{k:<8}{v if len(v) < 100 else v[:97] + '...'}")
    if info["top_level"]:
        print(f"top level   {', '.join(info['top_level'])}")
    if info["opaque_classes"]:
        print(f"not loaded  {', '.join(info['opaque_classes'])} (kept as inert records)")
    print(f"tensors     {info['num_tensors']} ({info['num_elements']:,} elements)")
    for i, (key, (shape, dtype)) in enumerate(info["keys"].items()):
        if i == max_keys:
            print(f"  ... {info['num_tensors'] - max_keys} more (use --json for all)")
            break
        print(f"  {key:<60} {str(tuple(shape)):<20} {dtype}")
    if "loads_strictly" in info:
        print(f"against     preset {info['against']}: "
              f"{'loads strictly' if info['loads_strictly'] else 'DOES NOT load strictly'}")
        for name in ("missing", "unexpected", "mismatched"):
            for key in info[name]:
                print(f"  {name:<11}{key}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("checkpoint", help="inspect model checkpoints")
    verbs = p.add_subparsers(dest="checkpoint_command", metavar="VERB")
    q = verbs.add_parser("inspect", help="format, keys, shapes; strict-load check against a preset")
    q.add_argument("path")
    q.add_argument("--preset", default=None, help="model preset to check against (default: the file's own)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.add_argument("--max-keys", type=int, default=40, help="keys listed in text output")
    q.set_defaults(func=_inspect)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
