"""Success and precision plots (seaborn/matplotlib), one curve per tracker, AUC/PRE in the legend."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np


def save_figure(fig, path: str | Path, dpi: int) -> Path:
    """`fig.savefig`, with the SVG's date and random element ids fixed: the same data give the
    same bytes, so rerunning the pipeline leaves the versioned figures unchanged."""
    import matplotlib

    path = Path(path)
    with matplotlib.rc_context({"svg.hashsalt": "mvlm"}):
        fig.savefig(path, dpi=dpi, metadata={"Date": None} if path.suffix == ".svg" else None)
    return path


def _curves_of(item) -> tuple[dict, dict, dict]:
    """(curves, thresholds, scores) from a ScoreResult or a score-JSON dict with "curves"."""
    if hasattr(item, "curves"):
        return item.curves(), item.thresholds, item.scores() or {}
    return item["curves"], item["thresholds"], item.get("mean") or {}


def plot_success_precision(results: Mapping[str, object], out_prefix: str | Path, title: str = "") -> list[Path]:
    """Write ``<out_prefix>_success.{png,svg}`` and ``<out_prefix>_precision.{png,svg}``.

    results: {tracker name: ScoreResult or score JSON with "curves"/"thresholds"}; curves in percent.
    Legend entries read "name [AUC 61.2]" and "name [PRE 51.1]", sorted best first.
    """
    import pandas as pd
    import seaborn as sns
    from matplotlib.figure import Figure  # outside pyplot: no global backend switch

    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, x_key, score_key, xlabel in (("success", "overlap", "auc", "overlap threshold"),
                                           ("precision", "center", "pre", "location error threshold (px)")):
        rows = []
        labels = {}
        for name, item in results.items():
            curves, th, scores = _curves_of(item)
            value = scores.get(score_key)
            labels[name] = f"{name} [{score_key.upper()} {value:.1f}]" if value is not None else name
            for x, y in zip(np.asarray(th[x_key], dtype=float), np.asarray(curves[kind], dtype=float)):
                rows.append({"threshold": x, "value": y, "tracker": labels[name]})
        order = sorted(labels.values(), key=lambda s: -float(s.rsplit(" ", 1)[-1].rstrip("]")) if "[" in s else 0)
        fig = Figure(figsize=(5, 4))
        ax = fig.subplots()
        sns.lineplot(data=pd.DataFrame(rows), x="threshold", y="value", hue="tracker", hue_order=order, ax=ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{kind} rate (%)")
        ax.set_ylim(0, 100)
        ax.set_title(title or f"{kind} plot")
        ax.legend(loc="lower left" if kind == "success" else "lower right", fontsize=8)
        fig.tight_layout()
        for suffix in (".png", ".svg"):
            written.append(save_figure(fig, out_prefix.with_name(f"{out_prefix.name}_{kind}{suffix}"), 150))
    return written
