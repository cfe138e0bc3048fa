"""The paper pipeline (paper/dvc.yaml, docs/reproduce.md): the released MVLM checkpoints on the
real benchmarks, with the released tracker settings, the confidence-term ablations and the
paper's tables beside ours. Nothing of the embedded pipeline (synthetic data, tiny training) runs.

Every stage reads the `paper` section of paper/params.yaml (a plain dict, as papermill injects
it) and writes under `paper.out` (default `paper/`):

    inputs_stage(paper)                         -> <out>/inputs/{checkpoint_tf,checkpoint_bbox,text_weights}.json
    dataset_stage(name, paper)                  -> <out>/inputs/dataset_<name>.json (annotation digest)
    evaluate_stage(dataset, mode, compat, paper) -> <out>/results/<dataset>-<mode>-<compat>/, <out>/reports/metrics/
    evaluate_trained_stage(section, dataset, compat, paper, recipe_file)
                                                -> <out>/results/<dataset>-<section>-<compat>/, <out>/reports/metrics/
    ablate_stage(variant, paper)                -> <out>/results/ablations/<variant>/, <out>/reports/ablations/
    report_stage(paper)                         -> <out>/reports/{tables,figures}/, report.md, summary.json

The `inputs` / `dataset` stages run on every `dvc repro` (cheap: sha256 of the weight files, md5 of
the annotation files, never the frames) and rewrite their digest files only with new content, so
the stages that depend on a digest rerun exactly when a checkpoint, the text weights or a
dataset's annotations change. Every configured path is checked first: a missing or wrong file is
one `PaperError` naming it, before any network is built.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from mvlm.atomic import write_json
from mvlm.config import TRACKER_PRESETS, ConfigError, PaperConfig, PaperDataset, build

MODES = ("tf", "bbox")
COMPATS = ("reference", "corrected")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
FRAME_DIRS = {"img", "imgs"}  # frame folders of LaSOT / OTB and TNL2K: never listed
TEXT_SHAPE = {"width": 768, "layers": 12, "vocab_size": 49408}  # CLIP ViT-L/14 text tower
SWEPT = ("alpha", "omega", "lam", "tau", "psi_out")


class PaperError(ConfigError):
    """A configured file or folder of the paper pipeline is missing or is not what it should be."""


# --------------------------------------------------------------------------------------------
# configuration and input checks


def load_config(paper: dict) -> PaperConfig:
    """The `paper` section, typed and checked (modes, compats, loaders, presets)."""
    from mvlm.data.benchmarks import LOADERS

    cfg: PaperConfig = build(PaperConfig, paper or {}, "paper")
    for mode in cfg.checkpoints:
        if mode not in MODES:
            raise ConfigError(f"paper.checkpoints.{mode}: unknown mode (expected {' / '.join(MODES)})")
    for name, spec in cfg.datasets.items():
        if not spec.root:
            raise ConfigError(f"paper.datasets.{name}.root: not set (leave the dataset out to skip it)")
        if (spec.loader or name) not in LOADERS:
            raise ConfigError(f"paper.datasets.{name}.loader: unknown loader {spec.loader or name!r} "
                              f"(known: {', '.join(LOADERS)})")
        for mode, preset in spec.presets.items():
            if mode not in MODES or preset not in TRACKER_PRESETS:
                raise ConfigError(f"paper.datasets.{name}.presets.{mode}: {preset!r} (modes {MODES}, "
                                  f"presets {', '.join(TRACKER_PRESETS)})")
    if cfg.run.gpus < 0 or cfg.run.workers < 1:
        raise ConfigError("paper.run: gpus must be >= 0 and workers >= 1")
    return cfg


def expand(path: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(path)))


def loader_of(name: str, spec: PaperDataset) -> str:
    return spec.loader or name


def preset_of(spec: PaperDataset, mode: str) -> str:
    return spec.presets.get(mode, mode)


def check_checkpoint(mode: str, path: str) -> None:
    """The file exists and holds the base network's keys (read lazily: shapes only)."""
    from mvlm.model.checkpoint import inspect_checkpoint
    from mvlm.model.metadata import CheckpointError

    file = expand(path)
    if not file.is_file():
        raise PaperError(f"paper.checkpoints.{mode}: {file}: checkpoint file not found")
    try:
        report = inspect_checkpoint(file, preset="base")
    except (CheckpointError, ValueError, OSError) as exc:
        raise PaperError(f"paper.checkpoints.{mode}: {file}: not a readable checkpoint ({exc})") from exc
    if not report.get("loads_strictly"):
        missing, unexpected, bad = report["missing"], report["unexpected"], report["mismatched"]
        raise PaperError(f"paper.checkpoints.{mode}: {file}: does not fit the paper's network (preset base): "
                         f"{len(missing)} missing, {len(unexpected)} unexpected, {len(bad)} mis-shaped keys "
                         f"(e.g. {(missing + unexpected + [str(b) for b in bad])[:3]})")


def check_text_weights(path: Optional[str]) -> None:
    """The file exists and holds a CLIP ViT-L/14 text tower (width 768, 12 layers, 77 positions)."""
    from mvlm.model.text import TextError, clip_text_shape, read_clip_text_state

    if not path:
        raise PaperError("paper.text_weights: not set; the released networks need the CLIP ViT-L/14 text "
                         "weights (docs/reproduce.md)")
    file = expand(path)
    if not file.is_file():
        raise PaperError(f"paper.text_weights: {file}: CLIP text weights file not found")
    try:
        _, state = read_clip_text_state(file)
        shape = clip_text_shape(state, str(file))
    except (TextError, ValueError, OSError) as exc:
        raise PaperError(f"paper.text_weights: {file}: {exc}") from exc
    wrong = {k: shape[k] for k, v in TEXT_SHAPE.items() if shape[k] != v}
    if wrong or shape["context_length"] < 77:
        raise PaperError(f"paper.text_weights: {file}: not the CLIP ViT-L/14 text tower ({shape})")


def check_dataset(name: str, spec: PaperDataset) -> list:
    """The root exists and the loader reads the split: the sequences (problems stay per sequence)."""
    from mvlm.data.benchmarks import load_dataset

    root = expand(spec.root)
    if not root.is_dir():
        raise PaperError(f"paper.datasets.{name}.root: {root}: dataset folder not found")
    try:
        sequences = load_dataset(loader_of(name, spec), root, split=spec.split)
    except (ValueError, OSError) as exc:
        raise PaperError(f"paper.datasets.{name}: {root}: {exc}") from exc
    if not sequences:
        raise PaperError(f"paper.datasets.{name}: {root}: no sequences in split {spec.split!r}")
    return sequences


def check_paths(cfg: PaperConfig, modes=None, datasets=None) -> None:
    """Existence of every configured path (cheap), all problems in one error."""
    problems = []
    for mode in (modes if modes is not None else cfg.checkpoints):
        if mode in cfg.checkpoints and not expand(cfg.checkpoints[mode]).is_file():
            problems.append(f"paper.checkpoints.{mode}: {expand(cfg.checkpoints[mode])}: checkpoint file not found")
    if cfg.checkpoints and cfg.text_weights and not expand(cfg.text_weights).is_file():
        problems.append(f"paper.text_weights: {expand(cfg.text_weights)}: CLIP text weights file not found")
    if cfg.checkpoints and not cfg.text_weights:
        problems.append("paper.text_weights: not set; the released networks need the CLIP ViT-L/14 text weights")
    for name in (datasets if datasets is not None else cfg.datasets):
        root = expand(cfg.datasets[name].root)
        if not root.is_dir():
            problems.append(f"paper.datasets.{name}.root: {root}: dataset folder not found")
    if problems:
        raise PaperError("; ".join(problems))


# --------------------------------------------------------------------------------------------
# inputs: digests of the weight files and of each dataset's annotations


def file_digest(path: Path) -> dict:
    with open(path, "rb") as handle:
        sha = hashlib.file_digest(handle, "sha256").hexdigest()
    return {"path": str(path), "name": path.name, "bytes": path.stat().st_size, "sha256": sha}


def _write_if_changed(path: Path, data: dict) -> None:
    """Rewrite only new content, so DVC sees an unchanged dependency as unchanged."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if not (path.is_file() and path.read_text() == text):
        write_json(path, data, indent=2)


def inputs_stage(paper: dict) -> dict:
    """Check the checkpoints and the text weights, then write their sha256 digests."""
    cfg = load_config(paper)
    check_paths(cfg, datasets=[])
    for mode, path in cfg.checkpoints.items():
        check_checkpoint(mode, path)
    if cfg.checkpoints:
        check_text_weights(cfg.text_weights)
    out = Path(cfg.out) / "inputs"
    written = {}
    for mode in MODES:
        path = cfg.checkpoints.get(mode)
        written[f"checkpoint_{mode}"] = file_digest(expand(path)) if path else {"configured": False}
    written["text_weights"] = (file_digest(expand(cfg.text_weights)) if cfg.text_weights and cfg.checkpoints
                               else {"configured": False})
    for name, data in written.items():
        _write_if_changed(out / f"{name}.json", data)
    return written


def annotation_digest(root: Path) -> dict:
    """md5 over (relative path, md5) of every file under `root` that is not a frame (frame folders
    `img/`, `imgs/`, `frame_*` are not even listed)."""
    digest = hashlib.md5()
    count = 0
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in FRAME_DIRS and not d.startswith("frame_"))
        for name in sorted(files):
            path = Path(folder) / name
            if path.suffix.lower() in IMAGE_SUFFIXES:
                continue
            digest.update(f"{path.relative_to(root).as_posix()}\0{hashlib.md5(path.read_bytes()).hexdigest()}\n".encode())
            count += 1
    return {"files": count, "md5": digest.hexdigest()}


def dataset_stage(name: str, paper: dict) -> dict:
    """Check one dataset (root, loader, split) and write the digest of its annotation files."""
    cfg = load_config(paper)
    if name not in cfg.datasets:
        raise ConfigError(f"paper.datasets: no dataset named {name!r}")
    spec = cfg.datasets[name]
    sequences = check_dataset(name, spec)
    data = {"dataset": name, "loader": loader_of(name, spec), "root": str(expand(spec.root)), "split": spec.split,
            "sequences": len(sequences), "frames": int(sum(len(s.frames) for s in sequences)),
            "annotations": annotation_digest(expand(spec.root))}
    _write_if_changed(Path(cfg.out) / "inputs" / f"dataset_{name}.json", data)
    return data


# --------------------------------------------------------------------------------------------
# evaluate / ablate


def model_label(cfg: PaperConfig, mode: str) -> dict:
    """{"file", "sha256"}: the released file a row comes from (digest of the inputs stage)."""
    digest = Path(cfg.out) / "inputs" / f"checkpoint_{mode}.json"
    data = json.loads(digest.read_text()) if digest.is_file() else file_digest(expand(cfg.checkpoints[mode]))
    return {"file": data["name"], "sha256": data["sha256"]}


def _use_gpus(run) -> None:
    """With device cuda and `gpus` n > 0: workers use the first n visible GPUs."""
    if not run.device.startswith("cuda") or run.gpus == 0:
        return
    import torch

    have = torch.cuda.device_count()
    if have < run.gpus:
        raise PaperError(f"paper.run.gpus: {run.gpus} GPUs asked for, {have} visible")
    if have > run.gpus:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = visible.split(",") if visible else [str(i) for i in range(have)]
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids[: run.gpus])


def _sequences(name: str, spec: PaperDataset, cfg: PaperConfig) -> list:
    from mvlm.data.sequence import fill_missing_language

    sequences = fill_missing_language(check_dataset(name, spec), spec.default_text)
    if cfg.run.max_sequences:
        sequences = sequences[: cfg.run.max_sequences]
    if cfg.run.max_frames:  # a smoke run: tracked and scored on the first frames alike
        sequences = [_first_frames(s, cfg.run.max_frames) for s in sequences]
    return sequences


def _first_frames(seq, n: int):
    import dataclasses

    return dataclasses.replace(seq, frames=seq.frames[:n], boxes=seq.boxes[:n],
                               visible=None if seq.visible is None else seq.visible[:n])


@dataclass(frozen=True)
class Network:
    """The checkpoint a run tracks with: its file, how to load it, and its label in the tables."""

    path: Path
    model: dict  # TrackerSpec.checkpoint_model
    label: dict  # {"file", "sha256"}

    @classmethod
    def released(cls, cfg: PaperConfig, mode: str) -> "Network":
        return cls(expand(cfg.checkpoints[mode]),
                   {"preset": "base", "mode": mode, "text": {"weights": str(expand(cfg.text_weights))}},
                   model_label(cfg, mode))


def run_network(cfg: PaperConfig, dataset: str, mode: str, compat: str, overrides: dict, out_dir: Path,
                 reuse_from: Optional[Path] = None, network: Optional[Network] = None) -> dict:
    """Track one dataset with a released network (or `network`) and score it (unless its GT is hidden)."""
    from mvlm.evaluate.runner import RunOptions, reuse_identical_results, run_dataset
    from mvlm.evaluate.scoring import score_dataset
    from mvlm.track.tracker import TrackerSpec

    network = network or Network.released(cfg, mode)
    spec = cfg.datasets[dataset]
    sequences = _sequences(dataset, spec, cfg)
    preset = preset_of(spec, mode)
    tracker_spec = TrackerSpec(
        checkpoint=str(network.path), tracker_preset=preset, compat=compat,
        overrides=tuple(f"{k}={json.dumps(v)}" for k, v in overrides.items()), device=cfg.run.device,
        checkpoint_model=network.model)
    options = RunOptions(init="box" if mode == "bbox" else "language", max_frames=cfg.run.max_frames,
                         require_gt=spec.score)  # score: false = hidden GT, results only
    _use_gpus(cfg.run)
    reused = reuse_identical_results(reuse_from, out_dir, sequences, tracker_spec, options) if reuse_from else []
    t0 = time.perf_counter()
    run = run_dataset(sequences, out_dir, tracker_spec, workers=cfg.run.workers, resume=True, options=options)
    seconds = time.perf_counter() - t0
    entry: dict[str, Any] = {
        "run": out_dir.name, "dataset": dataset, "mode": mode, "compat": compat, "preset": preset,
        "overrides": overrides, "model": network.label, "max_frames": cfg.run.max_frames, "sequences": len(sequences),
        "tracked": sorted(set(run["done"]) | set(run["skipped"])), "failed": run["failed"],
        "reused": len(reused), "profile": spec.profile or cfg.profile, "scored": spec.score,
    }
    timing = {"tracking_fps": run["tracking_fps"], "seconds": round(seconds, 1)}
    if spec.score:
        done = set(entry["tracked"])
        result = score_dataset([s for s in sequences if s.name in done], out_dir, profile=entry["profile"],
                               dataset=loader_of(dataset, spec))
        entry.update(scores=result.scores(), scoring_failures=result.failures,
                     per_sequence=result.sequence_scores())
        if result.ok and result.names:
            entry["curves"] = {k: [float(x) for x in v] for k, v in result.curves().items()}
            entry["thresholds"] = {k: [float(x) for x in v] for k, v in result.thresholds.items()}
    return {"entry": entry, "timing": timing}


def _write(cfg: PaperConfig, kind: str, name: str, made: dict) -> dict:
    """<out>/reports/<kind>/<name>.json (what the inputs determine); the clock's figures apart."""
    reports = Path(cfg.out) / "reports"
    write_json(reports / kind / f"{name}.json", made["entry"], indent=1)
    write_json(reports / "timings" / f"{kind}_{name}.json", made.get("timing") or {}, indent=1)
    return made["entry"]


def run_name(dataset: str, mode: str, compat: str) -> str:
    return f"{dataset}-{mode}-{compat}"


def evaluate_stage(dataset: str, mode: str, compat: str, paper: dict) -> dict:
    """One dataset x mode x compat with the dataset's released tracker preset and nothing else.
    A mode without a configured checkpoint is recorded as not run."""
    cfg = load_config(paper)
    if dataset not in cfg.datasets:
        raise ConfigError(f"paper.datasets: no dataset named {dataset!r}")
    if mode not in MODES or compat not in COMPATS:
        raise ConfigError(f"mode {mode!r} / compat {compat!r}: expected {MODES} / {COMPATS}")
    name = run_name(dataset, mode, compat)
    out_dir = Path(cfg.out) / "results" / name
    if mode not in cfg.checkpoints:
        out_dir.mkdir(parents=True, exist_ok=True)  # the stage's output, empty
        return _write(cfg, "metrics", name, {"entry": {
            "run": name, "dataset": dataset, "mode": mode, "compat": compat,
            "not_run": f"paper.checkpoints.{mode} is not configured"}})
    check_paths(cfg, modes=[mode], datasets=[dataset])
    out_dir.mkdir(parents=True, exist_ok=True)
    return _write(cfg, "metrics", name, run_network(cfg, dataset, mode, compat, {}, out_dir))


def trained_network(cfg: PaperConfig, section: str, recipe_file: str | Path) -> Optional[tuple[Network, str]]:
    """The network the `train` stage of `section` wrote (<out_dir>/final.safetensors) and its
    mode; None while training is switched off."""
    from mvlm.config import TrainConfig, load_params
    from mvlm.config import section as read_section
    from mvlm.model.metadata import config_from_metadata, safetensors_metadata

    params = load_params(recipe_file)
    if section in MODES:  # its results and metrics would take the released network's names
        raise ConfigError(f"{recipe_file}: a train section may not be named {section!r}")
    if section not in (params.get("training") or {}).get("sections", []):
        raise ConfigError(f"{recipe_file}: {section!r} is not one of training.sections")
    recipe: TrainConfig = read_section(params, section, TrainConfig)
    if not (params.get("training") or {}).get("enabled"):
        return None
    path = Path(recipe.out_dir) / "final.safetensors"
    if not path.is_file():
        raise PaperError(f"{path}: no trained network of {section} (its train stage has not finished)")
    metadata = safetensors_metadata(path)
    if metadata is None or metadata.get("mode") != recipe.mode:
        raise PaperError(f"{path}: not a suite checkpoint of mode {recipe.mode} (the recipe's mode)")
    model = {}
    if config_from_metadata(metadata, str(path)).text.frozen:  # the CLIP tower is not in the file
        if not (cfg.text_weights and expand(cfg.text_weights).is_file()):
            raise PaperError(f"paper.text_weights: {cfg.text_weights}: the trained {section} network needs "
                             "the CLIP ViT-L/14 text weights file")
        model = {"text": {"weights": str(expand(cfg.text_weights))}}
    return Network(path, model, {"file": f"{section}/{path.name}", "sha256": file_digest(path)["sha256"]}), recipe.mode


def evaluate_trained_stage(section: str, dataset: str, compat: str, paper: dict,
                           recipe_file: str | Path = "paper/params.yaml") -> dict:
    """The network trained by the `train` stage of `section`, on one dataset with the dataset's
    released tracker preset: a row beside the released checkpoint's in the tables. Recorded as not
    run while training is switched off."""
    cfg = load_config(paper)
    if dataset not in cfg.datasets:
        raise ConfigError(f"paper.datasets: no dataset named {dataset!r}")
    if compat not in COMPATS:
        raise ConfigError(f"compat {compat!r}: expected {COMPATS}")
    name = run_name(dataset, section, compat)
    out_dir = Path(cfg.out) / "results" / name
    trained = trained_network(cfg, section, recipe_file)
    if trained is None:
        out_dir.mkdir(parents=True, exist_ok=True)  # the stage's output, empty
        return _write(cfg, "metrics", name, {"entry": {
            "run": name, "dataset": dataset, "section": section, "compat": compat,
            "not_run": f"training.enabled is false in {recipe_file} (docs/training.md)"}})
    network, mode = trained
    check_paths(cfg, modes=[], datasets=[dataset])
    out_dir.mkdir(parents=True, exist_ok=True)
    made = run_network(cfg, dataset, mode, compat, {}, out_dir, network=network)
    made["entry"]["section"] = section
    return _write(cfg, "metrics", name, made)


def ablate_stage(variant: str, paper: dict) -> dict:
    """One confidence variant (tracker overrides on the released settings) on `paper.ablate.dataset`."""
    cfg = load_config(paper)
    ab = cfg.ablate
    if variant not in ab.variants:
        raise ConfigError(f"paper.ablate.variants: no variant named {variant!r}")
    if ab.dataset not in cfg.datasets:
        raise PaperError(f"paper.ablate.dataset: {ab.dataset!r} is not one of paper.datasets "
                         f"({', '.join(cfg.datasets) or 'none configured'})")
    settings = dict(ab.variants[variant])
    compat = settings.pop("compat", "reference")
    out_dir = Path(cfg.out) / "results" / "ablations" / variant
    if ab.mode not in cfg.checkpoints:
        out_dir.mkdir(parents=True, exist_ok=True)  # the stage's output, empty
        return _write(cfg, "ablations", variant, {"entry": {
            "variant": variant, "not_run": f"paper.checkpoints.{ab.mode} is not configured"}})
    check_paths(cfg, modes=[ab.mode], datasets=[ab.dataset])
    out_dir.mkdir(parents=True, exist_ok=True)
    # a variant equal to the evaluated tracker copies that run's results instead of tracking again
    made = run_network(cfg, ab.dataset, ab.mode, compat, settings, out_dir,
                        reuse_from=Path(cfg.out) / "results" / run_name(ab.dataset, ab.mode, "reference"))
    made["entry"].update(variant=variant, settings=ab.variants[variant])
    return _write(cfg, "ablations", variant, made)


# --------------------------------------------------------------------------------------------
# report


def _read_all(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def row_label(entry: dict) -> str:
    """'MVLM_TF.pth.tar sha256:1a2b3c4d, reference' (+ a frame cap when there was one)."""
    model = entry["model"]
    cap = f", first {entry['max_frames']} frames" if entry.get("max_frames") else ""
    return f"{model['file']} sha256:{model['sha256'][:8]}, {entry['compat']}{cap}"


def paper_value_marks(entry: dict) -> str:
    """Which swept terms of a variant sit at the released preset's value ('α = 0.7 (paper)')."""
    from mvlm.config import tracker_config

    preset = tracker_config(preset=entry["preset"])
    names = {"alpha": "α", "omega": "ω", "lam": "λ", "tau": "τ", "psi_out": "ψ_out"}
    marks = []
    for key in SWEPT:
        if key in (entry.get("overrides") or {}):
            value = entry["overrides"][key]
            tag = " (paper)" if abs(float(value) - getattr(preset, key)) < 1e-9 else ""
            marks.append(f"{names[key]} = {value}{tag}")
    return "; ".join(marks)


def report_stage(paper: dict) -> dict:
    """Tables (ours beside the published rows), ablations, success/precision plots per dataset."""
    import pandas as pd

    from mvlm.evaluate.plots import plot_success_precision
    from mvlm.evaluate.tables import build_tables, entries_from_scores, write_tables

    cfg = load_config(paper)
    reports = Path(cfg.out) / "reports"
    metrics = _read_all(reports / "metrics")
    ablations = _read_all(reports / "ablations")
    entries, curves, results_only, not_run = [], {}, [], []
    for name, e in metrics.items():
        if "not_run" in e:
            not_run.append((name, e["not_run"]))
            continue
        if not e.get("scored"):
            results_only.append(e)
            continue
        entries.append(entries_from_scores(row_label(e), e["mode"], e["dataset"], e["profile"], e.get("scores")))
        if e.get("curves"):
            curves.setdefault(e["dataset"], {})[f"{e['mode']} {row_label(e)}"] = {
                "curves": e["curves"], "thresholds": e["thresholds"], "mean": e.get("scores") or {}}
    tables = build_tables(entries)
    rows = []
    for variant, e in ablations.items():
        if "not_run" in e:
            not_run.append((f"ablation {variant}", e["not_run"]))
            continue
        s = e.get("scores") or {}
        rows.append({"variant": variant, "settings": json.dumps(e.get("settings") or {}), "swept": paper_value_marks(e),
                     "compat": e["compat"], "dataset": e["dataset"], "preset": e["preset"], "AUC": s.get("auc"),
                     "PRE": s.get("pre"), "NPR": s.get("npr"), "profile": e["profile"], "model": row_label(e)})
    tables["ablations"] = pd.DataFrame(rows, columns=["variant", "settings", "swept", "compat", "dataset", "preset",
                                                      "AUC", "PRE", "NPR", "profile", "model"])
    written = [str(p) for p in write_tables(tables, reports / "tables")]
    for dataset, runs in curves.items():
        written += [str(p) for p in plot_success_precision(runs, reports / "figures" / dataset,
                                                           title=f"{dataset} ({len(runs)} runs)")]
    summary = {"profile": cfg.profile, "datasets": {n: e.get("scores") for n, e in metrics.items() if e.get("scored")},
               "ablations": {n: e.get("scores") for n, e in ablations.items() if "not_run" not in e},
               "results_only": [e["run"] for e in results_only],
               "not_run": [f"{name}: {why}" for name, why in not_run]}
    write_json(reports / "summary.json", summary, indent=1)
    (reports / "report.md").parent.mkdir(parents=True, exist_ok=True)
    from mvlm.atomic import write_text

    write_text(reports / "report.md", _markdown_report(cfg, tables, results_only, not_run))
    return {"written": written, "summary": summary}


def _markdown_report(cfg: PaperConfig, tables: dict, results_only: list, not_run: list) -> str:
    from mvlm.evaluate.tables import _markdown

    lines = ["# MVLM: released checkpoints on the real benchmarks", "",
             "Rows marked `published` are the authors' numbers (mvlm/evaluate/published.yaml); ours are "
             "labelled by checkpoint file, sha256 prefix and tracker compat (reference = the released "
             "tracker, corrected = the fixes of docs/tracker.md). Each dataset's `profile` column names the "
             "scoring protocol (docs/metrics.md).", ""]
    for title, key in (("Tracking by language (template-free)", "tracking_by_language"),
                       ("Box + language", "bbox_language"), ("Confidence-term ablations", "ablations")):
        lines += [f"## {title}", "", _markdown(tables[key]), ""]
    if results_only:
        lines += ["## Results without scores", ""]
        for e in results_only:
            folder = Path(cfg.out) / "results" / e["run"]
            lines.append(f"- {e['run']}: {len(e['tracked'])} sequences "
                         f"tracked into `{folder}`; the ground truth is hidden: pack them with "
                         f"`mvlm submit mgit --results {folder} --out mgit-submission.zip --root "
                         f"{cfg.datasets[e['dataset']].root}` and submit (docs/mgit.md).")
        lines.append("")
    if not_run:  # one line per reason: training switched off leaves a run per section x dataset x compat
        reasons: dict[str, list[str]] = {}
        for name, why in not_run:
            reasons.setdefault(why, []).append(name)
        lines += ["## Not run", ""] + [f"- {', '.join(names)}: {why}" for why, names in reasons.items()] + [""]
    return "\n".join(lines)
