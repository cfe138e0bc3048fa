"""`mvlm train --params params.yaml [--section train_tf] [--set key=value ...] [--resume]`.

Runs the same way alone or under torchrun (``torchrun --nproc_per_node N -m mvlm train ...``):
the process group comes from torchrun's environment. With `processes: N > 1` in the section
and no torchrun around it, the command starts the N local ranks itself. `--set` keys are relative to the section
(``--set epochs=1 --set sampling.samples_per_epoch=512``).

For a pipeline stage that is off unless enabled: ``--enabled false`` trains nothing and writes
only the ``--summary`` file (``{"enabled": false, ...}``) and an out_dir holding DISABLED.txt,
so a DVC stage's outputs exist either way (`mvlm.recipes.paper_train_stage`, docs/training.md).
"""

from __future__ import annotations

import argparse
import json
import sys


def _run(args: argparse.Namespace) -> int:
    from mvlm.config import ConfigError, TrainConfig, load_params, section
    from mvlm.data.sequence import DataError

    try:
        overrides = [f"{args.section}.{text}" for text in args.set or []]
        params = load_params(args.params, overrides)
        if args.section not in params:
            known = ", ".join(k for k in params if k.startswith("train")) or "none"
            raise ConfigError(f"{args.params}: no section {args.section!r} (train sections: {known})")
        cfg: TrainConfig = section(params, args.section, TrainConfig)
        if args.out_dir:
            cfg.out_dir = args.out_dir
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from mvlm.model.checkpoint import CheckpointError
    from mvlm.train import launch_local_processes, train, under_launcher

    if not args.enabled:
        from mvlm.recipes import write_disabled

        summary = write_disabled(cfg, args.section, args.summary)
        print(json.dumps(summary, indent=2, default=str))
        return 0
    if cfg.processes > 1 and not under_launcher():
        return launch_local_processes(_cli_args(args), cfg.processes)

    try:
        summary = train(cfg, resume=args.resume, progress=not args.no_progress)
    except (DataError, CheckpointError, ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if summary.get("world_size", 1) == 1 or "final" in summary:
        if args.summary:
            from mvlm.atomic import write_json

            write_json(args.summary, {"enabled": True, "section": args.section, **summary})
        print(json.dumps(summary, indent=2, default=str))
    return 0


def _cli_args(args: argparse.Namespace) -> list[str]:
    """This command line again (for the ranks `processes > 1` starts)."""
    out = ["train", "--params", args.params, "--section", args.section]
    for text in args.set or []:
        out += ["--set", text]
    if args.resume:
        out.append("--resume")
    if args.out_dir:
        out += ["--out-dir", args.out_dir]
    if args.no_progress:
        out.append("--no-progress")
    if args.summary:
        out += ["--summary", args.summary]
    return out


def _flag(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the network (one process or torchrun/DDP), resumable")
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--section", default="train_tf", help="section of the params file (train_tf, train_bbox)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a key of the section (YAML value), repeatable")
    p.add_argument("--resume", action="store_true", help="continue from the newest epoch checkpoint")
    p.add_argument("--out-dir", default=None, help="checkpoint folder (default: the section's out_dir)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.add_argument("--summary", default=None, metavar="PATH", help="also write the run summary (JSON) here")
    p.add_argument("--enabled", type=_flag, default=True, metavar="BOOL",
                   help="false = train nothing, write only the --summary and a DISABLED.txt out_dir (default true)")
    p.set_defaults(func=_run)
