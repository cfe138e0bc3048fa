"""`mvlm bench metrics`: scoring speed on all 700 TNL2K test sequences.

A trajectory is generated from the GT (seeded centre/scale jitter), written like the field's
``save_bb`` (int, tab), then scored twice in one run: the vectorized `score_dataset` (GT files and
result files read inside the timed region) and the plain per-sequence loop of the same maths
(`score_dataset_loop`, the baseline). The numbers of both are asserted identical. The reference
anchor is the pytracking evaluator's 0.43 s for the same workload (fixture README, 1 torch thread).
The machine is shared, so `seconds` is the minimum of the repetitions (median and the load average
are reported beside it), and a per-stage breakdown says where the time goes.
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
    parser.add_argument("--metrics-repeats", type=int, default=9)


def _jitter(boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """GT with N(0, 5 % of size) centre jitter and N(0, 0.05) log-scale jitter; boxes >= 1 px."""
    wh = np.maximum(boxes[:, 2:], 1.0)
    c = boxes[:, :2] + wh / 2 + rng.normal(0, 0.05, size=wh.shape) * wh
    new_wh = np.maximum(wh * np.exp(rng.normal(0, 0.05, size=wh.shape)), 1.0)
    return np.hstack([c - new_wh / 2, new_wh])


def _timed(fn, repeats: int) -> tuple[list[float], object]:
    """All wall times of `repeats` calls (the machine is shared: report the min and the median)."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def _breakdown(gt_root: Path, results_dir: Path, profile: str, repeats: int) -> dict:
    """Min seconds of each stage of the vectorized path: GT read/parse, results read/parse,
    per-frame maths (errors, bins, counts) and the dataset aggregation."""
    from mvlm.evaluate import results as R
    from mvlm.evaluate import scoring as S
    from mvlm.evaluate.groundtruth import load_tnl2k_toolkit
    from mvlm.evaluate.profiles import get_profile

    prof = get_profile(profile)
    gt = load_tnl2k_toolkit(gt_root, with_absent=prof.absent != "ignore", with_attributes=False)
    gt_paths = [seq.meta["gt_file"] for seq in gt]
    res_paths = [os.path.join(results_dir, f"{seq.name}.txt") for seq in gt]
    best = lambda fn: min(_timed(fn, repeats)[0])  # noqa: E731
    gt_raw = [R._read_bytes(p) for p in gt_paths]
    res_raw = [R._read_bytes(p) for p in res_paths]
    truths = [S._truth(seq, prof) for seq in gt]
    gt_all = S._consecutive_rows([t.boxes for t in truths])
    table = S._score_run_vectorized(truths, results_dir, prof, False, {}, set(), gt_all)
    out = {
        "gt_read": best(lambda: [R._read_bytes(p) for p in gt_paths]),
        "gt_parse": best(lambda: R._parse_joined(gt_raw, 4)),
        "gt_load_total": best(lambda: load_tnl2k_toolkit(gt_root, with_absent=prof.absent != "ignore", with_attributes=False)),
        "results_read": best(lambda: [R._read_bytes(p) for p in res_paths]),
        "results_parse": best(lambda: R._parse_joined(res_raw, 4)),
        "score_run_total": best(lambda: S._score_run_vectorized(truths, results_dir, prof, False, {}, set(), gt_all)),
        "aggregation": best(lambda: S._assemble("tnl2k", prof, table.names, [table], {}, []).scores()),
    }
    out["maths"] = out["score_run_total"] - out["results_read"] - out["results_parse"]
    return {k: round(v, 4) for k, v in out.items()}


def run(args: argparse.Namespace) -> dict:
    from mvlm.evaluate.groundtruth import load_tnl2k_toolkit
    from mvlm.evaluate.profiles import get_profile
    from mvlm.evaluate.results import write_results
    from mvlm.evaluate.scoring import score_dataset, score_dataset_loop

    annos = Path(getattr(args, "metrics_annos", None) or _default_annos())
    if not annos.is_file():
        return {"error": f"{annos}: TNL2K test annotations not found", "targets_met": None}
    repeats = getattr(args, "repeats", 0) or getattr(args, "metrics_repeats", 9)
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

        times, fast = _timed(vectorized, repeats)
        base_times, slow = _timed(baseline, max(1, min(repeats, 3)))
        breakdown = _breakdown(tmp / "gt", tmp / "results", profile, repeats)
    seconds, base_seconds = min(times), min(base_times)
    identical = (fast.names == slow.names and all(
        np.array_equal(a[k], b[k]) for a, b in zip(fast.counts, slow.counts) for k in a)
        and fast.scores() == slow.scores())
    if not identical:
        raise AssertionError("vectorized and per-sequence scoring disagree")
    ratio = REFERENCE_SECONDS / seconds
    return {
        "workload": f"{len(truth)} TNL2K test sequences, {frames} frames, GT + result files read, profile {profile}",
        "seconds": round(seconds, 4),
        "median_seconds": round(statistics.median(times), 4),
        "sequences_per_s": round(len(truth) / seconds, 1),
        "baseline_loop_seconds": round(base_seconds, 4),
        "speedup_vs_loop": round(base_seconds / seconds, 2),
        "reference_seconds": REFERENCE_SECONDS,
        "ratio_vs_reference": round(ratio, 2),
        "target_ratio": TARGET_RATIO,
        "identical_numbers": identical,
        "breakdown_seconds": breakdown,
        "scores": fast.scores(),
        "repeats": repeats,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "targets_met": bool(ratio >= TARGET_RATIO),
    }
