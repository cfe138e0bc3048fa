"""Report figures beyond success/precision: calibration, gate timelines, attributes, ablation,
training curves. Inputs are the files earlier stages wrote (results meta JSON, metrics JSON,
training logs); every function returns the paths it wrote (PNG + SVG) and never reads a model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping, Optional

import numpy as np

from mvlm.data.sequence import Sequence


def _figure(figsize: tuple[float, float]):
    """A figure outside pyplot: no global backend is switched (a notebook calling these keeps
    its inline backend) and nothing needs closing."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _save(fig, out: Path) -> list[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    from mvlm.evaluate.plots import save_figure

    return [save_figure(fig, out.with_suffix(suffix), 130) for suffix in (".png", ".svg")]


def frame_ious(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame IoU of x,y,w,h boxes (continuous form); 0 where either box has no area."""
    p, g = np.asarray(pred, float), np.asarray(gt, float)
    n = min(len(p), len(g))
    p, g = p[:n], g[:n]
    iw = np.clip(np.minimum(p[:, 0] + p[:, 2], g[:, 0] + g[:, 2]) - np.maximum(p[:, 0], g[:, 0]), 0, None)
    ih = np.clip(np.minimum(p[:, 1] + p[:, 3], g[:, 1] + g[:, 3]) - np.maximum(p[:, 1], g[:, 1]), 0, None)
    inter = iw * ih
    union = p[:, 2] * p[:, 3] + g[:, 2] * g[:, 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def per_frame_table(sequences: Iterable[Sequence], results_dir: str | Path):
    """DataFrame of every tracked frame: sequence, frame, kappa, mode, iou, visible."""
    import pandas as pd

    from mvlm.evaluate.results import read_meta, read_results, result_path

    rows = []
    for seq in sequences:
        path = result_path(results_dir, seq.name)
        if not path.is_file():
            continue
        pred = read_results(path)
        meta = read_meta(results_dir, seq.name)
        iou = frame_ious(pred, seq.boxes)
        visible = seq.valid_mask()
        for i in range(len(iou)):
            kappa = meta.get("kappa", [None] * len(iou))[i] if i < len(meta.get("kappa", [])) else None
            rows.append({"sequence": seq.name, "frame": i + 1, "kappa": np.nan if kappa is None else kappa,
                         "mode": (meta.get("mode") or ["?"] * len(iou))[i], "iou": iou[i],
                         "visible": bool(visible[i]) if i < len(visible) else True})
    return pd.DataFrame(rows)


def calibration(frames_by_mode: Mapping[str, "object"], out: Path, bins: int = 10) -> tuple[list[Path], dict]:
    """κ of the chosen box vs its IoU: mean IoU per κ bin (visible frames, frame 1 excluded).

    Returns the figure paths and, per mode, the Spearman rank correlation of κ and IoU.
    """
    import pandas as pd

    fig = _figure((5, 4))
    ax = fig.subplots()
    stats = {}
    for mode, df in frames_by_mode.items():
        d = df[(df.frame > 1) & df.visible & np.isfinite(df.kappa)]
        if d.empty:
            continue
        edges = np.linspace(d.kappa.min(), d.kappa.max() + 1e-9, bins + 1)
        which = np.clip(np.digitize(d.kappa, edges) - 1, 0, bins - 1)
        grouped = pd.DataFrame({"bin": which, "kappa": d.kappa, "iou": d.iou}).groupby("bin").agg(
            kappa=("kappa", "mean"), iou=("iou", "mean"), n=("iou", "size"))
        ax.plot(grouped.kappa, grouped.iou, marker="o", label=f"{mode} (n={len(d)})")
        stats[mode] = {"spearman": float(d.kappa.rank().corr(d.iou.rank())), "frames": int(len(d))}
    ax.set_xlabel("κ of the chosen box")
    ax.set_ylabel("mean IoU with ground truth")
    ax.set_ylim(0, 1)
    ax.set_title("Calibration: confidence vs overlap")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out), stats


def gate_timelines(frames, names: list[str], out: Path, title: str = "") -> list[Path]:
    """Per sequence: κ and IoU over time, global passes shaded, invisible frames marked."""
    n = max(1, len(names))
    fig = _figure((8, 1.9 * n))
    axes = fig.subplots(n, 1, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        d = frames[frames.sequence == name]
        t = d.frame.to_numpy()
        ax.plot(t, d.kappa, color="tab:blue", label="κ")
        ax.plot(t, d.iou, color="tab:green", alpha=0.8, label="IoU")
        ax.fill_between(t, 0, 1, where=(d["mode"] == "global").to_numpy(), color="tab:orange", alpha=0.25,
                        step="mid", transform=ax.get_xaxis_transform(), label="global pass")
        ax.fill_between(t, 0, 0.08, where=~d.visible.to_numpy(), color="black", alpha=0.6, step="mid",
                        transform=ax.get_xaxis_transform(), label="target not visible")
        ax.set_ylabel(name, fontsize=8)
        ax.set_xlim(1, max(2, t.max() if len(t) else 2))
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=4)
    if title:
        axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("frame")
    fig.tight_layout()
    return _save(fig, out)


def attribute_bars(breakdowns: Mapping[str, Mapping[str, Mapping[str, float]]], out: Path) -> list[Path]:
    """AUC per attribute flag, one bar colour per mode/run."""
    import pandas as pd
    import seaborn as sns

    rows = [{"attribute": a, "run": run, "AUC": v["auc"], "n": v.get("n")}
            for run, table in breakdowns.items() for a, v in table.items() if v.get("auc") is not None]
    fig = _figure((8, 4))
    ax = fig.subplots()
    if rows:
        sns.barplot(data=pd.DataFrame(rows), x="attribute", y="AUC", hue="run", ax=ax)
        ax.tick_params(axis="x", rotation=60, labelsize=8)
    ax.set_ylim(0, 100)
    ax.set_title("Success AUC by sequence attribute")
    fig.tight_layout()
    return _save(fig, out)


def ablation_bars(table, out: Path, metric: str = "AUC") -> list[Path]:
    """Horizontal bars: one per ablation variant."""
    import seaborn as sns

    d = table.dropna(subset=[metric]).sort_values(metric)
    fig = _figure((6, 0.35 * max(4, len(d)) + 1))
    ax = fig.subplots()
    sns.barplot(data=d, y="variant", x=metric, hue="mode" if "mode" in d else None, ax=ax, orient="h")
    ax.set_xlim(0, 100)
    ax.set_title(f"Confidence ablations ({metric})")
    fig.tight_layout()
    return _save(fig, out)


def training_curves(logs: Mapping[str, Path], out: Path) -> list[Path]:
    """Total loss (and each term present in the log) against step, one panel per run."""
    import pandas as pd

    frames = {name: pd.read_csv(path) for name, path in logs.items() if Path(path).is_file()}
    fig = _figure((5 * max(1, len(frames)), 3.6))
    axes = fig.subplots(1, max(1, len(frames)), squeeze=False)
    for ax, (name, df) in zip(axes[0], frames.items()):
        terms = [c for c in ("loss", "focal", "giou", "l1", "cm", "cm_inference") if c in df and df[c].notna().any()]
        for term in terms:
            ax.plot(df["step"], df[term].rolling(10, min_periods=1).mean(), label=term)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"training: {name}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out)


def load_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
