"""`mvlm bench TARGET`: speed/memory benchmarks written to reports/benchmarks/<target>.json."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

from mvlm.bench import TARGETS


def _environment() -> dict:
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "cuda": torch.cuda.is_available(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _write(out_dir: Path, target: str, result: dict) -> Path:
    from mvlm.atomic import write_json

    return write_json(out_dir / f"{target}.json", {**result, "environment": _environment()})


def _run(args: argparse.Namespace) -> int:
    targets = [t for t in TARGETS if _available(t)] if args.target == "all" else [args.target]
    status = 0
    for target in targets:
        module = importlib.import_module(f"mvlm.bench.{target}")
        result = module.run(args)
        path = _write(Path(args.out_dir), target, result)
        print(json.dumps(result, indent=2))
        print(f"wrote {path}", file=sys.stderr)
        if result.get("targets_met") is False:
            status = 1 if args.strict else status
    return status


def _available(target: str) -> bool:
    try:
        importlib.import_module(f"mvlm.bench.{target}")
        return True
    except ModuleNotFoundError:
        return False


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed/memory benchmarks -> reports/benchmarks/*.json")
    p.add_argument("target", choices=[*TARGETS, "all"])
    p.add_argument("--out-dir", default="reports/benchmarks")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target ratio is missed")
    # options shared by several targets; a target's own options are prefixed with its name
    p.add_argument("--preset", default="tiny", help="model preset (model, tracker, train)")
    p.add_argument("--compat", default="corrected", choices=["reference", "corrected"])
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=0, help="timed repetitions (0 = target default)")
    # each target adds its own options; unknown targets in this checkout are skipped
    for target in TARGETS:
        if _available(target):
            importlib.import_module(f"mvlm.bench.{target}").add_arguments(p)
    p.set_defaults(func=_run)
