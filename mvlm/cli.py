"""The `mvlm` command line: one sub-command per module in `mvlm.commands`.

Each command module exposes `register(subparsers)` that adds its parser and sets
`func` (a callable taking the parsed namespace and returning an exit status).
Modules are imported lazily by name so a broken optional dependency of one command
never prevents the others from running.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# sub-command module names under mvlm.commands, in help order
COMMAND_MODULES = [
    "synth",
    "datasets",
    "score",
    "report",
    "checkpoint",
    "weights",
    "train",
    "track",
    "evaluate",
    "bench",
    "demo",
    "serve",
    "submit",
]


def _offline_environment() -> None:
    # Never let a hub client try the network (it would retry for ~46 s before failing).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or (`only`) just one command's, so `mvlm score` never imports torch."""
    parser = argparse.ArgumentParser(prog="mvlm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [only] if only else COMMAND_MODULES:
        try:
            module = importlib.import_module(f"mvlm.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"mvlm.commands.{name}":
                continue  # command not implemented in this checkout
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    _offline_environment()
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMAND_MODULES else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
