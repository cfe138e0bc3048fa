"""`mvlm bench metrics`: scoring speed on all 700 TNL2K test sequences.

A trajectory is generated from the GT (seeded centre/scale jitter), written like the field's
``save_bb`` (int, tab), then scored twice in one run: the vectorized `score_dataset` (GT files and
result files read inside the timed region) and the plain per-sequence loop of the same maths
(`score_dataset_loop`, the baseline). The numbers of both are asserted identical. The reference
anchor is the pytracking evaluator's 0.43 s for the same workload (fixture README, 1 torch thread).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

REFERENCE_SECONDS = 0.43  # pytracking/OSTrack evaluator, 700 TNL2K seqs (metrics-golden README)
TARGET_RATIO = 5.0


def _default_annos() -> str:
    shared = os.environ.get("MVLM_SHARED") or str(Path(__file__).resolve().parents[2].parent / "shared")
    return str(Path(shared) / "data" / "real" / "tnl2k" / "test_annos.tar.gz")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-annos", default=None, help="TNL2K test_annos.tar.gz (default: ../shared)")
    parser.add_argument("--metrics-profile", default="vl_python")
    parser.add_argument("--metrics-seed", type=int, default=0)
    parser.add_argument("--metrics-repeats", type=int, default=5)


def _jitter(boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """GT with N(0, 5 % of size) centre jitter and N(0, 0.05) log-scale jitter; boxes >= 1 px."""
    wh = np.maximum(boxes[:, 2:], 1.0)
    c = boxes[:, :2] + wh / 2 + rng.normal(0, 0.05, size=wh.shape) * wh
    new_wh = np.maximum(wh * np.exp(rng.normal(0, 0.05, size=wh.shape)), 1.0)
    return np.hstack([c - new_wh / 2, new_wh])


def _timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def run(args: argparse.Namespace) -> dict:
    from mvlm.evaluate.groundtruth import load_tnl2k_toolkit
    from mvlm.evaluate.profiles import get_profile
    from mvlm.evaluate.results import write_results
    from mvlm.evaluate.scoring import score_dataset, score_dataset_loop

    annos = Path(getattr(args, "metrics_annos", None) or _default_annos())
    if not annos.is_file():
        return {"error": f"{annos}: TNL2K test annotations not found", "targets_met": None}
    repeats = getattr(args, "repeats", 0) or getattr(args, "metrics_repeats", 5)
    profile = getattr(args, "metrics_profile", "vl_python")
    with tempfile.TemporaryDirectory(prefix="mvlm-bench-metrics-") as tmp:
        tmp = Path(tmp)
        with tarfile.open(annos) as tar:
            tar.extractall(tmp / "gt", filter="data")
        truth = load_tnl2k_toolkit(tmp / "gt")
        rng = np.random.default_rng(getattr(args, "metrics_seed", 0))
        for seq in truth:
            write_results(tmp / "results", seq.name, _jitter(seq.boxes, rng), truncate=True)
        frames = int(sum(len(s) for s in truth))

        # read only the GT files the profile uses (the reference reads gt_rect only)
        needs_absent = get_profile(profile).absent != "ignore"

        def vectorized():
            gt = load_tnl2k_toolkit(tmp / "gt", with_absent=needs_absent, with_attributes=False)
            return score_dataset(gt, tmp / "results", profile)

        def baseline():
            gt = load_tnl2k_toolkit(tmp / "gt", with_absent=needs_absent, with_attributes=False)
            return score_dataset_loop(gt, tmp / "results", profile)

        seconds, fast = _timed(vectorized, repeats)
        base_seconds, slow = _timed(baseline, max(1, min(repeats, 3)))
    identical = (fast.names == slow.names and all(
        np.array_equal(a[k], b[k]) for a, b in zip(fast.counts, slow.counts) for k in a)
        and fast.scores() == slow.scores())
    if not identical:
        raise AssertionError("vectorized and per-sequence scoring disagree")
    ratio = REFERENCE_SECONDS / seconds
    return {
        "workload": f"{len(truth)} TNL2K test sequences, {frames} frames, GT + result files read, profile {profile}",
        "seconds": round(seconds, 4),
        "sequences_per_s": round(len(truth) / seconds, 1),
        "baseline_loop_seconds": round(base_seconds, 4),
        "speedup_vs_loop": round(base_seconds / seconds, 2),
        "reference_seconds": REFERENCE_SECONDS,
        "ratio_vs_reference": round(ratio, 2),
        "target_ratio": TARGET_RATIO,
        "identical_numbers": identical,
        "scores": fast.scores(),
        "repeats": repeats,
        "targets_met": bool(ratio >= TARGET_RATIO),
    }
