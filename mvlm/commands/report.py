"""`mvlm report`: results tables (CSV, Markdown, one .xlsx) and success/precision plots from
score JSON files written by `mvlm score --json`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _score_files(paths: list[str]) -> list[dict]:
    docs = []
    for p in paths:
        path = Path(p)
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        for f in files:
            try:
                doc = json.loads(f.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(f"{f}: not a readable score JSON ({exc})") from exc
            trackers = doc.get("trackers") or {doc.get("tracker", f.stem): doc}
            for name, entry in trackers.items():
                docs.append(entry | {"tracker": entry.get("tracker", name), "dataset": doc.get("dataset", entry.get("dataset")),
                                     "profile": doc.get("profile", entry.get("profile"))})
    return docs


def _run(args: argparse.Namespace) -> int:
    from mvlm.evaluate.plots import plot_success_precision
    from mvlm.evaluate.tables import build_tables, entries_from_scores, write_tables

    try:
        docs = _score_files(args.scores)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    entries = [entries_from_scores(d["tracker"], d.get("setting", "tf"), d["dataset"], d["profile"], d.get("mean"))
               for d in docs]
    out = Path(args.out)
    written = write_tables(build_tables(entries, include_published=not args.no_published), out)
    by_dataset: dict[str, dict] = {}
    for d in docs:
        if d.get("curves"):
            by_dataset.setdefault(d["dataset"], {})[f"{d['tracker']} ({d.get('setting', 'tf')})"] = d
    for dataset, items in by_dataset.items():
        written += plot_success_precision(items, out / "figures" / dataset, title=dataset)
    for path in written:
        print(path)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="results tables (csv/md/xlsx) and plots from score JSON files")
    p.add_argument("scores", nargs="+", help="score JSON files (or folders of them) from `mvlm score --json`")
    p.add_argument("--out", default="reports/tables", help="output folder")
    p.add_argument("--no-published", action="store_true", help="leave out the published rows")
    p.set_defaults(func=_run)
