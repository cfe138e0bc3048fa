"""`mvlm bench metrics`: scoring speed on all 700 TNL2K test sequences, against a reference-style loop.

A trajectory is generated from the GT (seeded centre/scale jitter) and written like the field's
``save_bb`` (int, tab). Two scorers then read every GT and result file and score them, in the
same process, alternately:

* ours: `load_tnl2k_toolkit` + `score_dataset` (vectorized over all frames);
* the reference-style loop: what the pytracking/OSTrack evaluator does (`_reference_loop`), one
  sequence at a time: ``np.loadtxt`` of the GT, ``np.loadtxt`` of the results (tab, then
  comma), the checks/repair/overwrite of ``calc_seq_err_robust``, the per-frame errors and the
  per-sequence curves, then the mean over sequences.

Both must give the same AUC / PRE / NPR (1e-9); the target is ours <= the loop. The machine is
shared, so `seconds` is the minimum of the repetitions (the median and the load average are
reported beside it). For scale: the pytracking evaluator itself took 0.43 s for this workload on
the fixture machine (tests/fixtures/metrics-golden/README.md, 1 torch thread).
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
REFERENCE_PROFILES = ("vl_python", "pytracking")  # what the reference-style loop implements


def _default_annos() -> str:
    shared = os.environ.get("MVLM_SHARED") or str(Path(__file__).resolve().parents[2].parent / "shared")
    return str(Path(shared) / "data" / "real" / "tnl2k" / "test_annos.tar.gz")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-annos", default=None, help="TNL2K test_annos.tar.gz (default: ../shared)")
    parser.add_argument("--metrics-profile", default="vl_python", choices=REFERENCE_PROFILES)
    parser.add_argument("--metrics-seed", type=int, default=0)
    parser.add_argument("--metrics-repeats", type=int, default=5)


def _jitter(boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """GT with N(0, 5 % of size) centre jitter and N(0, 0.05) log-scale jitter; boxes >= 1 px."""
    wh = np.maximum(boxes[:, 2:], 1.0)
    c = boxes[:, :2] + wh / 2 + rng.normal(0, 0.05, size=wh.shape) * wh
    new_wh = np.maximum(wh * np.exp(rng.normal(0, 0.05, size=wh.shape)), 1.0)
    return np.hstack([c - new_wh / 2, new_wh])


def _load_text(path: Path, delimiters: tuple[str, ...]) -> np.ndarray:
    """pytracking ``load_text`` (numpy backend): ``np.loadtxt`` with each delimiter in turn."""
    for delimiter in delimiters:
        try:
            return np.loadtxt(path, delimiter=delimiter, dtype=np.float64, ndmin=2)
        except ValueError:
            continue
    raise ValueError(f"Could not read file {path}")


def _reference_sequence(pred: np.ndarray, gt: np.ndarray, profile: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pytracking ``calc_seq_err_robust`` for a sequence without visibility flags (TNL2K)
    -> per-frame IoU, CLE and NCLE with the sentinels of invalid frames."""
    if np.isnan(pred).any() or (pred[:, 2:] < 0.0).any():
        raise ValueError("Error: Invalid results")
    if (pred[:, 2:] == 0.0).any():
        for i in range(1, len(pred)):
            if (pred[i, 2:] == 0.0).any() and not np.isnan(gt[i]).any():
                pred[i] = pred[i - 1]
    if len(pred) != len(gt):  # not LaSOT: longer ones cut, shorter ones zero-padded
        pred = pred[:len(gt)] if len(pred) > len(gt) else np.vstack([pred, np.zeros((len(gt) - len(pred), 4))])
    pred[0] = gt[0]
    valid = (gt[:, 2:] > 0.0).all(axis=1)
    if profile == "pytracking":
        valid &= (gt[:, :2] > 0.0).all(axis=1)
    # calc_iou_overlap: inclusive pixels
    tl = np.maximum(pred[:, :2], gt[:, :2])
    br = np.minimum(pred[:, :2] + pred[:, 2:] - 1.0, gt[:, :2] + gt[:, 2:] - 1.0)
    size = np.clip(br - tl + 1.0, 0.0, None)
    inter = size[:, 0] * size[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter)
        c_pred = pred[:, :2] + 0.5 * (pred[:, 2:] - 1.0)
        c_gt = gt[:, :2] + 0.5 * (gt[:, 2:] - 1.0)
        cle = np.sqrt(((c_pred - c_gt) ** 2).sum(axis=1))
        ncle = np.sqrt(((c_pred / gt[:, 2:] - c_gt / gt[:, 2:]) ** 2).sum(axis=1))
    iou[~valid], cle[~valid], ncle[~valid] = -1.0, np.inf, -1.0
    return iou, cle, ncle


def _reference_loop(gt_root: Path, results_dir: Path, profile: str) -> dict[str, float]:
    """The reference evaluator's shape: a Python loop over sequences, then the dataset mean."""
    from mvlm.evaluate import metrics as M

    t_iou, t_px, t_norm = M.overlap_thresholds_torch(), M.center_thresholds(50), M.norm_center_thresholds()
    success, precision, norm = [], [], []
    for gt_file in sorted((gt_root / "annos" / "gt_rect").glob("*.txt")):
        gt = _load_text(gt_file, (",",))
        pred = _load_text(results_dir / gt_file.name, ("\t", ","))
        iou, cle, ncle = _reference_sequence(pred, gt, profile)
        success.append((iou[:, None] > t_iou[None, :]).sum(axis=0) / len(gt))
        precision.append((cle[:, None] <= t_px[None, :]).sum(axis=0) / len(gt))
        norm.append((ncle[:, None] <= t_norm[None, :]).sum(axis=0) / len(gt))
    s, p, n = (np.mean(c, axis=0) * 100.0 for c in (success, precision, norm))
    return {"auc": float(s.mean()), "pre": float(p[20]), "npr": float(n[20])}


def _timed(fn, repeats: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def run(args: argparse.Namespace) -> dict:
    from mvlm.evaluate.groundtruth import load_tnl2k_toolkit
    from mvlm.evaluate.results import write_results
    from mvlm.evaluate.scoring import score_dataset

    annos = Path(getattr(args, "metrics_annos", None) or _default_annos())
    if not annos.is_file():
        return {"error": f"{annos}: TNL2K test annotations not found", "targets_met": None}
    repeats = getattr(args, "repeats", 0) or getattr(args, "metrics_repeats", 5)
    profile = getattr(args, "metrics_profile", "vl_python")
    if profile not in REFERENCE_PROFILES:
        raise ValueError(f"the reference-style loop implements {', '.join(REFERENCE_PROFILES)}, not {profile!r}")
    with tempfile.TemporaryDirectory(prefix="mvlm-bench-metrics-") as tmp:
        tmp = Path(tmp)
        with tarfile.open(annos) as tar:
            tar.extractall(tmp / "gt", filter="data")
        truth = load_tnl2k_toolkit(tmp / "gt", with_absent=False, with_attributes=False)
        rng = np.random.default_rng(getattr(args, "metrics_seed", 0))
        for seq in truth:
            write_results(tmp / "results", seq.name, _jitter(seq.boxes, rng), truncate=True)
        frames = int(sum(len(s) for s in truth))

        def ours():
            # the Python profiles read gt_rect only (no absent flags, no attributes), as the reference
            gt = load_tnl2k_toolkit(tmp / "gt", with_absent=False, with_attributes=False)
            return score_dataset(gt, tmp / "results", profile)

        def reference():
            return _reference_loop(tmp / "gt", tmp / "results", profile)

        ours(), reference()  # untimed: imports and the page cache
        times, ref_times = [], []
        for _ in range(repeats):  # alternate, so that both see the same machine load
            t, result = _timed(ours, 1)
            times += t
            t, ref_scores = _timed(reference, 1)
            ref_times += t
        gt_times, _ = _timed(lambda: load_tnl2k_toolkit(tmp / "gt", with_absent=False, with_attributes=False), repeats)
    scores = result.scores()
    same = all(abs(scores[k] - ref_scores[k]) <= 1e-9 for k in ref_scores)
    if not same:
        raise AssertionError(f"score_dataset {scores} and the reference-style loop {ref_scores} disagree")
    seconds, ref_seconds = min(times), min(ref_times)
    return {
        "workload": f"{len(truth)} TNL2K test sequences, {frames} frames, GT + result files read, profile {profile}",
        "seconds": round(seconds, 4),
        "median_seconds": round(statistics.median(times), 4),
        "gt_load_seconds": round(min(gt_times), 4),
        "reference_loop_seconds": round(ref_seconds, 4),
        "reference_loop_median_seconds": round(statistics.median(ref_times), 4),
        "speedup_vs_reference_loop": round(ref_seconds / seconds, 2),
        "reference_seconds_fixture_machine": REFERENCE_SECONDS,
        "identical_numbers": same,
        "scores": scores,
        "repeats": repeats,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "targets_met": bool(seconds <= ref_seconds),
    }
