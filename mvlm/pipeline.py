"""The DVC stages as functions; the notebooks in `notebooks/` are thin wrappers around them.

Each stage takes the `params.yaml` sections it reads (as plain dicts, the way papermill injects
them), validates them through `mvlm.config`, does its work through the package API, and writes
its outputs under `data/`, `models/`, `results/` and `reports/`:

    prepare_stage(synth)                         -> data/synth/{train,val,test}, reports/data/
    train_stage(mode, train_<mode>)              -> models/tiny_<mode>/, reports/training/
    evaluate_stage(dataset, evaluate, tracker)   -> results/<dataset>/<mode>/, reports/metrics/<dataset>.json
    ablate_stage(variant, ablate, evaluate, tracker) -> results/ablations/<variant>/, reports/ablations/<variant>.json
    report_stage(report, evaluate)               -> reports/tables/, reports/figures/, reports/plots/, reports/summary.json
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Optional

from mvlm.atomic import write_json
from mvlm.config import (
    AblateConfig,
    ConfigError,
    DatasetSpec,
    EvaluateConfig,
    ReportConfig,
    SamplingConfig,
    SynthConfig,
    TrainConfig,
    build,
)

MODES = ("tf", "bbox")


# --------------------------------------------------------------------------------------------
# prepare


def prepare_stage(synth: dict, reports: str | Path = "reports") -> dict:
    """Generate the embedded benchmark's splits and check each with the LaSOT loader."""
    from mvlm.data.benchmarks import load_dataset
    from mvlm.data.benchmarks.common import usability_reasons
    from mvlm.data.synthetic import dataset_stats, generate_dataset

    cfg: SynthConfig = build(SynthConfig, synth, "synth")
    out = Path(cfg.out)
    summary: dict[str, Any] = {}
    timing: dict[str, Any] = {}
    for split, seed, count in (
        ("train", cfg.seed_train, cfg.sequences_train),
        ("val", cfg.seed_val, cfg.sequences_val),
        ("test", cfg.seed_test, cfg.sequences_test),
    ):
        t0 = time.perf_counter()
        generate_dataset(out / split, sequences=count, seed=seed, size=(cfg.width, cfg.height),
                         frames=cfg.frames, split="train" if split == "train" else "test",
                         workers=2, overwrite=True)
        seconds = time.perf_counter() - t0
        stats = dataset_stats(out / split)
        sequences = load_dataset("lasot", out / split)
        unusable = {s.name: usability_reasons(s) for s in sequences if usability_reasons(s)}
        frames = int(sum(len(s) for s in sequences))
        summary[split] = {"sequences": len(sequences), "frames": frames, "unusable": unusable, "stats": stats}
        timing[split] = {"seconds": round(seconds, 2), "frames_per_second": round(frames / seconds, 1)}
        write_json(out / f"{split}.manifest.json", split_manifest(out / split))
    write_json(Path(reports) / "data" / "synth_stats.json", summary)
    write_json(Path(reports) / "timings" / "prepare.json", timing)  # the clock's figures apart
    return summary


def split_manifest(folder: Path) -> dict[str, Any]:
    """Digest of every file of a generated split: md5 over the sorted (relative path, md5 of the
    content) pairs. The later stages depend on this one small file instead of the ~20k frames
    themselves, so that DVC hashes each split once per `dvc repro` and not once per stage; the
    split changes exactly when its digest does."""
    import hashlib

    digest = hashlib.md5()
    count = size = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        digest.update(f"{path.relative_to(folder).as_posix()}\0{hashlib.md5(data).hexdigest()}\n".encode())
        count, size = count + 1, size + len(data)
    return {"split": folder.name, "files": count, "bytes": size, "md5": digest.hexdigest()}


# --------------------------------------------------------------------------------------------
# train


TIMING_KEYS = ("train_wall_s", "samples_per_s", "timings")


def train_stage(mode: str, train_params: dict, reports: str | Path = "reports") -> dict:
    """Train one mode's network; copy its step log to reports/training/<mode>_log.csv."""
    import shutil

    from mvlm.train import train

    if mode not in MODES:
        raise ConfigError(f"mode: expected one of {list(MODES)}, got {mode!r}")
    cfg: TrainConfig = build(TrainConfig, train_params, f"train_{mode}")
    if cfg.mode != mode:
        raise ConfigError(f"train_{mode}.mode: expected {mode!r}, got {cfg.mode!r}")
    if cfg.processes > 1:
        summary = _train_in_local_processes(mode, train_params, cfg.processes)
    else:
        summary = train(cfg, resume=True, progress=False)
    out = Path(reports) / "training"
    out.mkdir(parents=True, exist_ok=True)
    log = Path(cfg.out_dir) / "train_log.csv"
    if log.is_file():
        shutil.copyfile(log, out / f"{mode}_log.csv")
    # the clock's figures go to a file of their own: the summary is the same on every rerun
    timing = {k: summary.pop(k) for k in TIMING_KEYS if k in summary}
    write_json(out / f"{mode}_summary.json", summary)
    if cfg.timings:
        write_json(Path(cfg.timings).with_suffix(".json"), timing)
    if cfg.validation:
        write_json(out / f"{mode}_grounding.json", grounding_report(Path(cfg.out_dir) / "final.safetensors",
                                                                  cfg.validation, cfg.sampling))
    return summary


def grounding_report(checkpoint: str | Path, datasets: dict[str, str], sampling: SamplingConfig,
                     per_sequence: int = 12) -> dict:
    """Per-frame grounding of a trained network on held-out sequences, with the right and with a
    shuffled sentence (`mvlm.train.grounding_accuracy`): {"<dataset>": {"sentence": ..., "shuffled": ...}}."""
    from mvlm.data.sampling import load_training_sequences
    from mvlm.model.checkpoint import load_model
    from mvlm.train import grounding_accuracy

    net, _ = load_model(checkpoint)
    report: dict[str, Any] = {}
    for name, sequences in load_training_sequences(datasets).items():
        report[name] = {
            label: grounding_accuracy(net, sequences, per_sequence=per_sequence,
                                      search_factor=sampling.search_factor,
                                      template_factor=sampling.template_factor, shuffle_sentences=shuffled)
            for label, shuffled in (("sentence", False), ("shuffled", True))
        }
    return report


def _train_in_local_processes(mode: str, train_params: dict, processes: int) -> dict:
    """`mvlm train --resume` as `processes` DDP ranks on this machine; rank 0's summary."""
    import functools
    import subprocess
    import sys
    import tempfile

    import yaml

    from mvlm.procs import die_with_parent

    with tempfile.TemporaryDirectory(prefix="mvlm-train-") as tmp:
        params = Path(tmp) / "params.yaml"
        params.write_text(yaml.safe_dump({f"train_{mode}": train_params}))
        run = subprocess.run([sys.executable, "-m", "mvlm", "train", "--params", str(params),
                              "--section", f"train_{mode}", "--resume", "--no-progress"],
                             stdout=subprocess.PIPE, text=True,
                             preexec_fn=functools.partial(die_with_parent, os.getpid()))
    if run.returncode != 0:
        raise RuntimeError(f"train_{mode}: {processes} training processes failed (exit {run.returncode})")
    text = run.stdout
    return json.loads(text[text.index("{"):])


# --------------------------------------------------------------------------------------------
# evaluate / ablate


def _tracker_overrides(tracker: dict, mode: str, extra: Optional[dict] = None) -> tuple[str, tuple[str, ...]]:
    """(compat, overrides) from the `tracker` section: common keys, then `tracker.<mode>`, then extra."""
    values = {k: v for k, v in (tracker or {}).items() if k not in MODES}
    values.update((tracker or {}).get(mode) or {})
    values.update(extra or {})
    compat = values.pop("compat", "corrected")
    return compat, tuple(f"{k}={_yaml_scalar(v)}" for k, v in values.items())


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def checkpoint_for(mode: str, cfg: EvaluateConfig) -> str:
    """The checkpoint of a mode: `evaluate.checkpoints.<mode>`, else the train stage's final file.
    A missing file is an error (never a random-init network that makes real-looking numbers)."""
    from mvlm.model.metadata import CheckpointError

    configured = cfg.checkpoints.get(mode)
    path = configured or f"models/tiny_{mode}/final.safetensors"
    if not Path(path).is_file():
        where = (f"evaluate.checkpoints.{mode}" if configured else
                 f"the train stage's output (run it first, or set evaluate.checkpoints.{mode})")
        raise CheckpointError(f"{path}: checkpoint file not found ({where}; expected a suite .safetensors "
                              "or a released .pth.tar, see docs/weights.md)")
    return path


def run_and_score(
    spec: DatasetSpec,
    mode: str,
    out_dir: Path,
    cfg: EvaluateConfig,
    compat: str,
    overrides: tuple[str, ...],
    resume: bool = True,
    reuse_from: Optional[Path] = None,
) -> dict:
    """Track one dataset in one mode and score it; returns the metrics entry for that mode.
    Results in `reuse_from` made with the very same tracker and checkpoint are copied, not rerun."""
    from mvlm.data.benchmarks import load_dataset
    from mvlm.data.sequence import fill_missing_language
    from mvlm.evaluate.runner import RunOptions, reuse_identical_results, run_dataset
    from mvlm.evaluate.scoring import attribute_breakdown, score_dataset
    from mvlm.track.tracker import TrackerSpec

    sequences = fill_missing_language(load_dataset(spec.loader, spec.root, split=spec.split), spec.default_text)
    checkpoint = checkpoint_for(mode, cfg)
    tracker_spec = TrackerSpec(
        checkpoint=checkpoint, model_preset="tiny", tracker_preset=mode if checkpoint is None else None,
        compat=compat, overrides=overrides, device=cfg.device,
        checkpoint_model={**cfg.checkpoint_model, "mode": mode} if cfg.checkpoint_model else None,
    )
    options = RunOptions(init="box" if mode == "bbox" else "language")
    reused = reuse_identical_results(reuse_from, out_dir, sequences, tracker_spec, options) if reuse_from else []
    run = run_dataset(sequences, out_dir, tracker_spec, workers=cfg.workers, resume=resume or bool(reused),
                      options=options)
    done = set(run["done"]) | set(run["skipped"])
    scored = [s for s in sequences if s.name in done]
    result = score_dataset(scored, out_dir, profile=spec.profile or cfg.profile, dataset=spec.loader)
    return {
        "mode": mode,
        "checkpoint": checkpoint,
        "random_init": checkpoint is None,
        "compat": compat,
        "overrides": list(overrides),
        "sequences": len(sequences),
        "scored": len(scored),
        "failed": run["failed"],
        "reused": {"from": str(reuse_from), "sequences": len(reused)} if reused else None,
        "scoring_failures": result.failures,
        "tracking_fps": run["tracking_fps"] if run["done"] else _source_fps(reuse_from if reused else None),
        "profile": result.profile,
        "scores": result.scores(),
        "per_sequence": result.sequence_scores(),
        "attributes": attribute_breakdown(result, scored) if result.ok else {},
    }


def _source_fps(results_dir: Optional[Path]) -> Optional[float]:
    """Tracking speed of the run whose results were reused (its summary.json), else None."""
    from mvlm.evaluate.figures import load_json

    summary = load_json(results_dir / "summary.json") if results_dir else None
    return (summary or {}).get("tracking_fps")


def _dataset_spec(cfg: EvaluateConfig, name: str) -> DatasetSpec:
    if name not in cfg.datasets:
        raise ConfigError(f"evaluate.datasets: no dataset named {name!r} (have: {', '.join(cfg.datasets)})")
    return cfg.datasets[name]


def evaluate_stage(dataset: str, evaluate: dict, tracker: dict, reports: str | Path = "reports") -> dict:
    """Evaluate one dataset of `evaluate.datasets` in each of its modes."""
    cfg: EvaluateConfig = build(EvaluateConfig, evaluate, "evaluate")
    spec = _dataset_spec(cfg, dataset)
    summary: dict[str, Any] = {"dataset": dataset, "loader": spec.loader, "root": spec.root,
                               "profile": spec.profile or cfg.profile, "modes": {}}
    out_root = Path(cfg.results_dir) / dataset
    out_root.mkdir(parents=True, exist_ok=True)
    if not Path(spec.root).exists():
        if not spec.optional:
            raise ConfigError(f"evaluate.datasets.{dataset}.root: {spec.root} does not exist")
        summary["skipped"] = f"{spec.root} not found (optional dataset)"
        return _write_metrics(Path(reports), "metrics", dataset, summary)
    for mode in spec.modes:
        compat, overrides = _tracker_overrides(tracker, mode)
        t0 = time.perf_counter()
        entry = run_and_score(spec, mode, out_root / mode, cfg, compat, overrides)
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        summary["modes"][mode] = entry
    return _write_metrics(Path(reports), "metrics", dataset, summary)


def ablate_stage(variant: str, ablate: dict, evaluate: dict, tracker: dict, reports: str | Path = "reports") -> dict:
    """Run one confidence variant (tracker overrides) over the ablation dataset."""
    acfg: AblateConfig = build(AblateConfig, ablate, "ablate")
    cfg: EvaluateConfig = build(EvaluateConfig, evaluate, "evaluate")
    if variant not in acfg.variants:
        raise ConfigError(f"ablate.variants: no variant named {variant!r} (have: {', '.join(acfg.variants)})")
    spec = _dataset_spec(cfg, acfg.dataset)
    summary: dict[str, Any] = {"variant": variant, "dataset": acfg.dataset, "settings": acfg.variants[variant],
                               "profile": spec.profile or cfg.profile, "modes": {}}
    for mode in acfg.modes:
        compat, overrides = _tracker_overrides(tracker, mode, acfg.variants[variant])
        t0 = time.perf_counter()
        # a variant that resolves to the evaluated tracker (full; α 1 where the preset's α is 1)
        # copies the evaluation's results instead of tracking the same frames again
        entry = run_and_score(spec, mode, Path(cfg.results_dir) / "ablations" / variant / mode, cfg, compat,
                              overrides, reuse_from=Path(cfg.results_dir) / acfg.dataset / mode)
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        summary["modes"][mode] = entry
    return _write_metrics(Path(reports), "ablations", variant, summary)


RUN_TIMING_KEYS = ("tracking_fps", "seconds")


def _write_metrics(reports: Path, kind: str, name: str, summary: dict) -> dict:
    """reports/<kind>/<name>.json holds what the inputs determine; the clock's figures of each
    mode go to reports/timings/<kind>_<name>.json, so a rerun leaves the metrics file unchanged."""
    timing = {mode: {k: entry.pop(k) for k in RUN_TIMING_KEYS if k in entry}
              for mode, entry in (summary.get("modes") or {}).items()}
    write_json(reports / kind / f"{name}.json", summary)
    write_json(reports / "timings" / f"{kind}_{name}.json", timing)
    return summary


def as_table(summary: dict):
    """One row per mode: AUC / PRE / NPR / frame-1 IoU / fps (for display in the notebooks)."""
    import pandas as pd

    rows = []
    for mode, entry in (summary.get("modes") or {}).items():
        scores = entry.get("scores") or {}
        rows.append({
            "mode": mode, "AUC": scores.get("auc"), "PRE": scores.get("pre"), "NPR": scores.get("npr"),
            "frame-1 IoU": scores.get("frame1_iou"), "sequences": entry.get("scored"),
            "failed": len(entry.get("failed") or []), "random init": entry.get("random_init"),
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# report


def _read_all(folder: Path) -> dict[str, dict]:
    from mvlm.evaluate.figures import load_json

    return {p.stem: d for p in sorted(folder.glob("*.json")) if (d := load_json(p)) is not None}


def _scores_frame(ablations: dict[str, dict]):
    import pandas as pd

    rows = []
    for variant, summary in ablations.items():
        for mode, entry in (summary.get("modes") or {}).items():
            s = entry.get("scores") or {}
            rows.append({"variant": variant, "mode": mode, "settings": json.dumps(summary.get("settings") or {}),
                         "AUC": s.get("auc"), "PRE": s.get("pre"), "NPR": s.get("npr"),
                         "frame-1 IoU": s.get("frame1_iou"), "profile": entry.get("profile"),
                         "random init": entry.get("random_init")})
    return pd.DataFrame(rows, columns=["variant", "mode", "settings", "AUC", "PRE", "NPR", "frame-1 IoU",
                                       "profile", "random init"])


def _benchmark_table(bench_dir: Path):
    import pandas as pd

    rows = []
    for name, data in _read_all(bench_dir).items():
        for key, value in _flatten(data).items():
            if key.startswith("environment.") or isinstance(value, (list, dict)):
                continue
            rows.append({"benchmark": name, "figure": key, "value": value})
    return pd.DataFrame(rows, columns=["benchmark", "figure", "value"])


def _grounding_table(training_dir: Path):
    """One row per (mode, dataset, view, sentence): centre-in-box accuracy overall and per
    target-size bin, from reports/training/<mode>_grounding.json."""
    import pandas as pd

    from mvlm.train import GROUNDING_VIEWS, size_bin_labels

    bins = size_bin_labels()
    rows = []
    for mode in MODES:
        path = training_dir / f"{mode}_grounding.json"
        if not path.is_file():
            continue
        for dataset, runs in json.loads(path.read_text()).items():
            for sentence, res in runs.items():
                for view in (v for v in GROUNDING_VIEWS if v in res):  # tiles only when measured
                    row = {"mode": mode, "dataset": dataset, "view": view, "sentence": sentence,
                           "accuracy": res.get(view), "frames": res.get("frames")}
                    row.update({f"target {b} px": (res.get("by_size") or {}).get(view, {}).get(b) for b in bins})
                    rows.append(row)
    return pd.DataFrame(rows, columns=["mode", "dataset", "view", "sentence", "accuracy", "frames",
                                       *[f"target {b} px" for b in bins]])


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def report_stage(report: dict, evaluate: dict, reports: str | Path = "reports") -> dict:
    """Tables (CSV/Markdown/xlsx), figures (PNG/SVG), DVC plot CSVs and summary.json."""
    import pandas as pd

    from mvlm.data.benchmarks import load_dataset
    from mvlm.evaluate import figures
    from mvlm.evaluate.plots import plot_success_precision
    from mvlm.evaluate.scoring import score_dataset
    from mvlm.evaluate.tables import build_tables, entries_from_scores, write_tables

    rcfg: ReportConfig = build(ReportConfig, report, "report")
    ecfg: EvaluateConfig = build(EvaluateConfig, evaluate, "evaluate")
    root = Path(reports)
    tables_dir, figures_dir, plots_dir = root / "tables", root / "figures", root / "plots"
    for d in (tables_dir, figures_dir, plots_dir):
        d.mkdir(parents=True, exist_ok=True)
    metrics = _read_all(root / "metrics")
    ablations = _read_all(root / "ablations")
    written: dict[str, list[str]] = {"tables": [], "markdown": [], "figures": [], "plots": []}

    # 1. results tables: our rows beside the published ones, one cell per (dataset, metric)
    entries = []
    for dataset, summary in metrics.items():
        for mode, entry in (summary.get("modes") or {}).items():
            label = "this suite (tiny, random init)" if entry.get("random_init") else "this suite (tiny)"
            entries.append(entries_from_scores(label, mode, dataset, entry.get("profile") or ecfg.profile,
                                               entry.get("scores")))
    tables = build_tables(entries)
    tables["ablations"] = _scores_frame(ablations)
    tables["benchmarks"] = _benchmark_table(root / "benchmarks")
    tables["grounding"] = _grounding_table(root / "training")
    for path in write_tables(tables, tables_dir):
        written["tables"].append(str(path))
        if path.suffix == ".md":
            written["markdown"].append(str(path))

    # 2. success / precision curves on the embedded test split (main runs + ablation variants)
    synth = ecfg.datasets.get("synth")
    curves: dict[str, Any] = {}
    frames_by_mode = {}
    sequences = []
    if synth is not None and Path(synth.root).exists():
        sequences = load_dataset(synth.loader, synth.root, split=synth.split)
        for mode in synth.modes:
            run_dir = Path(ecfg.results_dir) / "synth" / mode
            if run_dir.is_dir():
                curves[f"MVLM {mode}"] = score_dataset(sequences, run_dir, profile=rcfg.profile, skip_missing=True)
                frames_by_mode[mode] = figures.per_frame_table(sequences, run_dir)
        for variant in ablations:
            for mode in (ablations[variant].get("modes") or {}):
                run_dir = Path(ecfg.results_dir) / "ablations" / variant / mode
                if run_dir.is_dir() and variant != "full":
                    curves[f"{variant} ({mode})"] = score_dataset(sequences, run_dir, profile=rcfg.profile,
                                                                  skip_missing=True)
    if curves:
        for p in plot_success_precision(curves, figures_dir / "curves", title="embedded test split"):
            written["figures"].append(str(p))
        for kind, key in (("success", "overlap"), ("precision", "center")):
            rows = [{"tracker": name, "threshold": float(x), kind: float(y)}
                    for name, r in curves.items() if r.names
                    for x, y in zip(r.thresholds[key], r.curves()[kind])]
            path = plots_dir / f"{kind}.csv"
            pd.DataFrame(rows, columns=["tracker", "threshold", kind]).to_csv(path, index=False)
            written["plots"].append(str(path))
        for kind in ("success", "precision"):
            src = figures_dir / f"curves_{kind}.png"
            if src.is_file():
                (figures_dir / f"{kind}.png").write_bytes(src.read_bytes())

    # 3. calibration, gate timelines, attributes, ablation bars, training curves
    calibration_stats = {}
    if frames_by_mode:
        paths, calibration_stats = figures.calibration(frames_by_mode, figures_dir / "calibration")
        written["figures"] += [str(p) for p in paths]
        tf = frames_by_mode.get("tf")
        if tf is not None and not tf.empty:
            switching = tf.groupby("sequence")["mode"].apply(lambda m: (m == "global").sum())
            names = list(switching.sort_values(ascending=False).index[: rcfg.timelines])
            written["figures"] += [str(p) for p in figures.gate_timelines(
                tf, names, figures_dir / "gate_timelines", "template-free: κ, IoU and global passes")]
    breakdowns = {}
    for dataset, summary in metrics.items():
        for mode, entry in (summary.get("modes") or {}).items():
            if entry.get("attributes"):
                breakdowns[f"{dataset} {mode}"] = entry["attributes"]
    if breakdowns:
        written["figures"] += [str(p) for p in figures.attribute_bars(breakdowns, figures_dir / "attributes")]
    if not tables["ablations"].empty:
        written["figures"] += [str(p) for p in figures.ablation_bars(tables["ablations"], figures_dir / "ablation")]
        path = plots_dir / "ablation.csv"
        tables["ablations"][["variant", "mode", "AUC", "PRE"]].rename(columns={"AUC": "auc", "PRE": "pre"}).to_csv(
            path, index=False)
        written["plots"].append(str(path))
    logs = {m: root / "training" / f"{m}_log.csv" for m in MODES}
    if any(p.is_file() for p in logs.values()):
        written["figures"] += [str(p) for p in figures.training_curves(logs, figures_dir / "training")]

    # 4. summary.json: the headline numbers DVC tracks as metrics
    summary_out: dict[str, Any] = {"profile": rcfg.profile, "datasets": {}, "ablations": {},
                                   "calibration": calibration_stats}
    for dataset, summary in metrics.items():
        for mode, entry in (summary.get("modes") or {}).items():
            s = entry.get("scores") or {}
            summary_out["datasets"][f"{dataset}_{mode}"] = {
                k: s.get(k) for k in ("auc", "pre", "npr", "frame1_iou")}
    for variant, summary in ablations.items():
        for mode, entry in (summary.get("modes") or {}).items():
            s = entry.get("scores") or {}
            summary_out["ablations"][f"{variant}_{mode}"] = {k: s.get(k) for k in ("auc", "pre")}
    write_json(root / "summary.json", summary_out)
    written["summary"] = [str(root / "summary.json")]
    return written
