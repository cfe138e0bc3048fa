"""Score result files against ground truth under a protocol profile.

`score_dataset(sequences, results_dir, profile)` reads every ``<results_dir>/<seq>.txt``, applies
the profile's frame rules (`mvlm.evaluate.profiles`) and returns a `ScoreResult` with the
per-sequence curves, the dataset curves and scores (percent), and the sequences that failed.

The work is vectorized across sequences: all frames of all sequences are concatenated once, the
per-frame errors are computed in one pass and the per-sequence hit counts come from one
``bincount`` (`metrics.curve_counts`). `score_dataset_loop` is the plain per-sequence loop of the
same maths; tests and `mvlm bench metrics` assert that both give identical numbers.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence as Seq

import numpy as np

from mvlm.data.sequence import Sequence
from mvlm.evaluate import metrics as M
from mvlm.evaluate.profiles import LASOT_RULE_DATASETS, Profile, get_profile
from mvlm.evaluate.results import ResultsError, read_box_files, read_meta, result_path


class ScoringError(ValueError):
    """A sequence cannot be scored under the profile (the reference would raise). Names the file."""


# ---------------------------------------------------------------------------------------------
# result container


@dataclass
class ScoreResult:
    """Per-sequence curves (fractions, runs merged by averaging) and dataset scores (percent)."""

    dataset: str
    profile: str
    names: list[str]
    n_frames: np.ndarray  # (S,) denominators
    success: np.ndarray  # (S, T_iou)
    precision: np.ndarray  # (S, T_px)
    norm_precision: Optional[np.ndarray]  # (S, T_norm) or None (got10k)
    inside: Optional[np.ndarray]  # (S,) MGIT centre-inside-box rate, else None
    counts: list[dict[str, np.ndarray]]  # per run: {"success": (S,T) int, "precision", "norm_precision"}
    thresholds: dict[str, np.ndarray]
    failures: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    frame1_iou: dict[str, float] = field(default_factory=dict)
    runs: int = 1

    @property
    def ok(self) -> bool:
        return not self.failures

    def _kept(self, curves: np.ndarray) -> np.ndarray:
        prof = get_profile(self.profile)
        finite = np.isfinite(curves).all(axis=1)
        if prof.drop_zero_sequences:
            finite &= curves.sum(axis=1) > np.finfo(np.float64).eps
        return curves[finite]

    def curves(self) -> dict[str, np.ndarray]:
        """Dataset curves in percent: the unweighted mean of the per-sequence curves."""
        out = {"success": self._kept(self.success).mean(axis=0) * 100.0,
               "precision": self._kept(self.precision).mean(axis=0) * 100.0}
        if self.norm_precision is not None:
            out["norm_precision"] = self._kept(self.norm_precision).mean(axis=0) * 100.0
        return out

    def scores(self) -> Optional[dict[str, float]]:
        """auc, pre, npr (+ op50/op75 or sr, npr_area, pre_area) in percent; None if a sequence failed."""
        if not self.ok or not self.names:
            return None
        prof = get_profile(self.profile)
        c = self.curves()
        out = {"auc": M.auc(c["success"]), "pre": M.precision_at(c["precision"], 20)}
        if prof.npr == "at20":
            out["npr"] = M.precision_at(c["norm_precision"], 20)
            out["npr_area"] = float(np.mean(c["norm_precision"]))
        elif prof.npr == "inside":
            nonzero = self.inside[np.isfinite(self.inside) & (self.inside != 0)]
            out["npr"] = float(nonzero.mean() * 100.0) if nonzero.size else 0.0
        else:
            out["npr"] = None
        out["pre_area"] = float(np.mean(c["precision"]))
        if prof.success_rate_index == 10:
            out["op50"] = float(c["success"][10])
            out["op75"] = float(c["success"][15])
        else:
            out["sr"] = float(c["success"][prof.success_rate_index])
        f1 = [v for v in self.frame1_iou.values() if np.isfinite(v)]
        out["frame1_iou"] = float(np.mean(f1) * 100.0) if f1 else None
        return out

    def sequence_scores(self) -> dict[str, dict[str, Optional[float]]]:
        """Per sequence auc / pre / npr in percent."""
        prof = get_profile(self.profile)
        out = {}
        for i, name in enumerate(self.names):
            row = {"auc": float(self.success[i].mean() * 100.0), "pre": float(self.precision[i, 20] * 100.0)}
            if prof.npr == "at20":
                row["npr"] = float(self.norm_precision[i, 20] * 100.0)
            elif prof.npr == "inside":
                row["npr"] = float(self.inside[i] * 100.0)
            else:
                row["npr"] = None
            out[name] = row
        return out

    def to_dict(self) -> dict:
        """The `mvlm score` JSON: dataset, profile, per-sequence and mean auc/pre/npr (percent)."""
        scores = self.scores()
        return {
            "dataset": self.dataset,
            "profile": self.profile,
            "sequences": self.sequence_scores(),
            "mean": scores,
            "failures": dict(self.failures),
            "skipped": list(self.skipped),
            "runs": self.runs,
            "curves": {k: v.tolist() for k, v in self.curves().items()} if scores else None,
            "thresholds": {k: v.tolist() for k, v in self.thresholds.items()},
            "frame1_iou": {k: (None if not np.isfinite(v) else v * 100.0) for k, v in self.frame1_iou.items()},
        }


# ---------------------------------------------------------------------------------------------
# ground-truth side


@dataclass
class _Truth:
    name: str
    boxes: np.ndarray  # (N, 4)
    visible: Optional[np.ndarray]  # (N,) bool, only where the profile uses flags
    absent: Optional[np.ndarray]  # (N,) bool, only where the profile uses absent flags
    lasot_rules: bool  # invisible frames get CLE = NCLE = +inf
    lasot_dataset: bool  # pytracking's LaSOT length rule (short predictions raise)
    image_size: Optional[tuple[float, float]]


def _absent_flags(seq: Sequence, n: int, profile: Profile) -> Optional[np.ndarray]:
    if profile.absent == "ignore":
        return None
    flags = seq.meta.get("absent")
    if flags is None and seq.visible is not None:
        flags = ~seq.visible
    if flags is None:
        flags = np.zeros(n, dtype=bool)
    flags = np.asarray(flags, dtype=bool).reshape(-1)
    if profile.absent == "drop" and seq.meta.get("shotcut") is not None:
        cut = np.asarray(seq.meta["shotcut"], dtype=bool).reshape(-1)
        if len(cut) != n:
            raise ScoringError(f"{seq.name}: {len(cut)} shot-cut flags for {n} GT rows")
        flags = flags | cut
    if len(flags) > n and not flags[n:].any():
        flags = flags[:n]  # TNL2K advSamp_monitor_bikeyellow: one extra all-false flag (Octave accepts it)
    if len(flags) != n:
        raise ScoringError(f"{seq.name}: {len(flags)} absent flags for {n} GT rows")
    return flags


def _truth(seq: Sequence, profile: Profile) -> _Truth:
    dataset = (seq.dataset or "").lower()
    visible = seq.visible if (seq.visible is not None and profile.uses_visibility(dataset)) else None
    if visible is not None and len(visible) != len(seq.boxes):
        raise ScoringError(f"{seq.name}: {len(visible)} visibility flags for {len(seq.boxes)} GT rows")
    if profile.nan_gt == "raise" and np.isnan(seq.boxes).any():
        row = int(np.flatnonzero(np.isnan(seq.boxes).any(axis=1))[0]) + 1
        raise ScoringError(f"{seq.name}: NaN in the ground truth (row {row})")
    size = seq.meta.get("image_size")
    return _Truth(
        name=seq.name,
        boxes=seq.boxes,
        visible=visible,
        absent=_absent_flags(seq, len(seq.boxes), profile),
        lasot_rules=dataset in LASOT_RULE_DATASETS and profile.lasot_invisible_inf and visible is not None,
        lasot_dataset=dataset in LASOT_RULE_DATASETS,
        image_size=tuple(size) if size is not None else None,
    )


# ---------------------------------------------------------------------------------------------
# prediction checks and alignment (per sequence, cheap)


def _check_predictions(pred: np.ndarray, path: Path, profile: Profile) -> None:
    if profile.invalid_predictions != "raise":
        return
    bad = np.isnan(pred).any(axis=1) | (pred[:, 2:] < 0).any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ScoringError(f"{path}: invalid results: row {row + 1} is {pred[row].tolist()} (NaN or negative w/h)")


def _align(pred: np.ndarray, n_gt: int, path: Path, profile: Profile, lasot: bool) -> tuple[np.ndarray, int]:
    """Predictions cut or padded to the GT length -> (aligned (n_gt, 4), number of padded rows)."""
    n = len(pred)
    if n == n_gt:
        return pred, 0
    short = n < n_gt
    if profile.length == "equal" or (short and (profile.length == "short_raises" or lasot)):
        # pytracking: "Mis-match in tracker prediction and GT lengths"; MATLAB: index out of bound
        raise ScoringError(f"{path}: {n} predicted rows for {n_gt} GT rows (length mismatch)")
    if not short:
        return pred[:n_gt], 0
    return np.vstack([pred, np.zeros((n_gt - n, 4))]), n_gt - n


def _repair_mask(pred: np.ndarray, gt: np.ndarray, profile: Profile) -> np.ndarray:
    """Rows (frames >= 2) that take the previous row. (F, 4) -> (F,) bool; caller clears first rows."""
    if profile.repair == "zero_wh":
        bad = (pred[:, 2] == 0) | (pred[:, 3] == 0)
    elif profile.repair == "nonpositive_or_nan":
        bad = np.isnan(pred).any(axis=1) | ~(pred[:, 2] > 0) | ~(pred[:, 3] > 0)
    else:
        return np.zeros(len(pred), dtype=bool)
    return bad & ~np.isnan(gt).any(axis=1)


def _forward_fill(pred: np.ndarray, replace: np.ndarray) -> np.ndarray:
    """Each flagged row takes the nearest earlier unflagged row (sequential repair, vectorized)."""
    if not replace.any():
        return pred
    idx = np.where(replace, 0, np.arange(len(pred)))
    np.maximum.accumulate(idx, out=idx)
    return pred[idx]


# ---------------------------------------------------------------------------------------------
# per-frame errors with the profile's sentinels (works on one or many sequences)


@dataclass
class _Frames:
    iou: np.ndarray
    cle: np.ndarray
    ncle: Optional[np.ndarray]
    inside: Optional[np.ndarray]
    keep: Optional[np.ndarray]  # frames counted at all (MGIT drop), None = all


def _frame_errors(pred, gt, visible, absent, lasot, image_wh, profile: Profile) -> _Frames:
    """pred, gt (F, 4); visible/absent/lasot (F,) bool or None; image_wh (F, 2) or None."""
    if profile.clip_to_image and image_wh is not None:
        x1 = np.clip(pred[:, 0], 0, image_wh[:, 0])
        y1 = np.clip(pred[:, 1], 0, image_wh[:, 1])
        x2 = np.clip(pred[:, 0] + pred[:, 2], 0, image_wh[:, 0])
        y2 = np.clip(pred[:, 1] + pred[:, 3], 0, image_wh[:, 1])
        pred = np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)
    iou = M.iou_inclusive(pred, gt) if profile.iou == "inclusive" else M.iou_continuous(pred, gt)
    cle = M.center_error(pred, gt)
    ncle = M.normalized_center_error(pred, gt) if profile.norm_thresholds is not None else None
    inside = M.center_inside(pred, gt).astype(np.float64) if profile.npr == "inside" else None

    if profile.validity != "none":
        if profile.validity == "wh":
            valid = (gt[:, 2] > 0) & (gt[:, 3] > 0)
        else:
            valid = (gt > 0).all(axis=1)
        if visible is not None:
            valid &= visible
        iou[~valid] = -1.0
        cle[~valid] = profile.invalid_cle
        if ncle is not None:
            ncle[~valid] = profile.invalid_ncle
    if lasot is not None and visible is not None:
        hide = lasot & ~visible
        cle[hide] = np.inf
        if ncle is not None:
            ncle[hide] = np.inf
    keep = None
    if absent is not None and profile.absent == "numerator":
        iou[absent] = -1.0
        cle[absent] = np.inf
        if ncle is not None:
            ncle[absent] = np.inf
    elif absent is not None and profile.absent == "drop":
        keep = ~absent
    if profile.nan_gt == "drop":
        finite = np.isfinite(gt).all(axis=1)
        keep = finite if keep is None else keep & finite
    return _Frames(iou, cle, ncle, inside, keep)


# ---------------------------------------------------------------------------------------------
# one run (one results directory)


@dataclass
class _RunCounts:
    success: np.ndarray  # (S, T) int64
    precision: np.ndarray
    norm_precision: Optional[np.ndarray]
    inside: Optional[np.ndarray]  # (S,) hits
    n: np.ndarray  # (S,) denominators
    frame1_iou: np.ndarray  # (S,)


def _read_run(truths: list[_Truth], run_dir: Path, skip_missing: bool, failures: dict, skipped: set):
    present, paths = [], []
    listing = set(os.listdir(run_dir))  # one directory read instead of a stat per sequence
    for t in truths:
        path = result_path(run_dir, t.name)
        if f"{t.name}.txt" in listing:
            present.append(t)
            paths.append(path)
        elif skip_missing:
            skipped.add(t.name)
        else:
            failures.setdefault(t.name, f"{path}: result not found (use --skip-missing to drop it)")
    try:
        arrays = read_box_files(paths)
    except ResultsError:
        arrays = []
        for path in paths:  # find every broken file, not only the first
            try:
                arrays.append(read_box_files([path])[0])
            except ResultsError as exc:
                arrays.append(exc)
    out = []
    for t, path, arr in zip(present, paths, arrays):
        if isinstance(arr, Exception):
            failures.setdefault(t.name, str(arr))
        else:
            out.append((t, path, arr))
    return out


def _frame1_prediction(run_dir: Path, name: str, raw: np.ndarray) -> Optional[np.ndarray]:
    meta = read_meta(run_dir, name)
    if "frame1_box" in meta and meta["frame1_box"] is not None:
        return np.asarray(meta["frame1_box"], dtype=np.float64).reshape(1, 4)
    return raw[:1] if len(raw) else None


def _frame1_iou(profile: Profile, pred1: Optional[np.ndarray], gt: np.ndarray) -> float:
    if pred1 is None or len(gt) == 0 or not (gt[0, 2] > 0 and gt[0, 3] > 0):
        return math.nan
    fn = M.iou_inclusive if profile.iou == "inclusive" else M.iou_continuous
    return float(fn(pred1, gt[:1])[0])


def _score_run_vectorized(truths, run_dir, profile, skip_missing, failures, skipped) -> dict[str, tuple]:
    loaded = _read_run(truths, run_dir, skip_missing, failures, skipped)
    aligned, gts, pads, ok = [], [], [], []
    for t, path, raw in loaded:
        try:
            _check_predictions(raw, path, profile)
            pred, n_pad = _align(raw, len(t.boxes), path, profile, t.lasot_dataset)
        except ScoringError as exc:
            failures.setdefault(t.name, str(exc))
            continue
        ok.append((t, path, raw))
        aligned.append(pred)
        gts.append(t.boxes)
        pads.append(n_pad)
    if not ok:
        return {}
    lengths = np.array([len(g) for g in gts])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    seg = np.repeat(np.arange(len(ok)), lengths)
    pred = np.concatenate(aligned)
    gt = np.concatenate(gts)

    replace = _repair_mask(pred, gt, profile)
    replace[starts[lengths > 0]] = False
    if any(pads):
        for s, (start, n, n_pad) in enumerate(zip(starts, lengths, pads)):
            replace[start + n - n_pad:start + n] = False  # padded rows stay 0,0,0,0
    pred = _forward_fill(pred, replace)
    if profile.first_frame_gt:
        first = starts[lengths > 0]
        pred[first] = gt[first]

    visible = _concat_optional([t.visible for t, _, _ in ok], lengths, fill=True)
    absent = _concat_optional([t.absent for t, _, _ in ok], lengths, fill=False)
    lasot = np.repeat([t.lasot_rules for t, _, _ in ok], lengths) if any(t.lasot_rules for t, _, _ in ok) else None
    image_wh = _image_sizes([t for t, _, _ in ok], lengths) if profile.clip_to_image else None
    fr = _frame_errors(pred, gt, visible, absent, lasot, image_wh, profile)

    if fr.keep is not None:
        keep = fr.keep
        seg_k = seg[keep]
        n = np.bincount(seg_k, minlength=len(ok))
    else:
        keep, seg_k, n = slice(None), seg, lengths
    s_total = len(ok)
    th = profile.thresholds
    success = M.curve_counts(fr.iou[keep], seg_k, s_total, th["overlap"], ">")
    precision = M.curve_counts(fr.cle[keep], seg_k, s_total, th["center"], profile.center_compare)
    norm = M.curve_counts(fr.ncle[keep], seg_k, s_total, th["center_norm"], "<=") if fr.ncle is not None else None
    inside = np.bincount(seg_k, weights=fr.inside[keep], minlength=s_total) if fr.inside is not None else None

    f1 = _frame1_ious(profile, run_dir, ok)
    out = {}
    for s, (t, path, raw) in enumerate(ok):
        out[t.name] = (success[s], precision[s], None if norm is None else norm[s],
                       None if inside is None else inside[s], int(n[s]), f1[s])
    return out


def _frame1_ious(profile: Profile, run_dir: Path, ok) -> np.ndarray:
    """Frame-1 grounding IoU of every sequence in one call (raw row 1, or meta `frame1_box`)."""
    listing = set(os.listdir(run_dir))
    pred = np.full((len(ok), 4), np.nan)
    gt = np.full((len(ok), 4), np.nan)
    for s, (t, _, raw) in enumerate(ok):
        first = None
        if f"{t.name}_meta.json" in listing:
            first = _frame1_prediction(run_dir, t.name, raw)
        elif len(raw):
            first = raw[:1]
        if first is not None and len(t.boxes):
            pred[s], gt[s] = first[0], t.boxes[0]
    fn = M.iou_inclusive if profile.iou == "inclusive" else M.iou_continuous
    iou = fn(pred, gt)
    iou[~((gt[:, 2] > 0) & (gt[:, 3] > 0))] = np.nan
    return iou


def _concat_optional(parts, lengths, fill: bool) -> Optional[np.ndarray]:
    if all(p is None for p in parts):
        return None
    return np.concatenate([np.full(n, fill) if p is None else p for p, n in zip(parts, lengths)])


def _image_sizes(truths: list[_Truth], lengths) -> Optional[np.ndarray]:
    if any(t.image_size is None for t in truths):
        missing = [t.name for t in truths if t.image_size is None]
        raise ScoringError(f"profile clips to the image but no image_size in the meta of {missing[:3]}")
    return np.repeat(np.array([t.image_size for t in truths], dtype=np.float64), lengths, axis=0)


def _score_run_loop(truths, run_dir, profile, skip_missing, failures, skipped) -> dict[str, tuple]:
    """The same maths one sequence at a time (baseline and cross-check of the vectorized path)."""
    from mvlm.evaluate.results import read_results

    out = {}
    th = profile.thresholds
    for t in truths:
        path = result_path(run_dir, t.name)
        if not path.is_file():
            if skip_missing:
                skipped.add(t.name)
            else:
                failures.setdefault(t.name, f"{path}: result not found (use --skip-missing to drop it)")
            continue
        try:
            raw = read_results(path)
            _check_predictions(raw, path, profile)
            pred, n_pad = _align(raw, len(t.boxes), path, profile, t.lasot_dataset)
        except (ScoringError, ResultsError) as exc:
            failures.setdefault(t.name, str(exc))
            continue
        pred = pred.copy()
        gt = t.boxes
        bad = _repair_mask(pred, gt, profile)
        for i in range(1, len(pred) - n_pad):
            if bad[i]:
                pred[i] = pred[i - 1]
        if profile.first_frame_gt and len(pred):
            pred[0] = gt[0]
        lasot = np.full(len(gt), True) if t.lasot_rules else None
        image_wh = _image_sizes([t], [len(gt)]) if profile.clip_to_image else None
        fr = _frame_errors(pred, gt, t.visible, t.absent, lasot, image_wh, profile)
        keep = fr.keep if fr.keep is not None else np.ones(len(gt), dtype=bool)
        success = M.sequence_curve(fr.iou[keep], th["overlap"], ">")
        precision = M.sequence_curve(fr.cle[keep], th["center"], profile.center_compare)
        norm = M.sequence_curve(fr.ncle[keep], th["center_norm"], "<=") if fr.ncle is not None else None
        inside = float(fr.inside[keep].sum()) if fr.inside is not None else None
        f1 = _frame1_iou(profile, _frame1_prediction(run_dir, t.name, raw), gt)
        out[t.name] = (success, precision, norm, inside, int(keep.sum()), f1)
    return out


# ---------------------------------------------------------------------------------------------
# public API


def _as_runs(results_dir) -> list[Path]:
    if isinstance(results_dir, (str, Path)):
        return [Path(results_dir)]
    runs = [Path(r) for r in results_dir]
    if not runs:
        raise ValueError("no results directory given")
    return runs


def _score(sequences, results_dir, profile, skip_missing, dataset, run_fn) -> ScoreResult:
    prof = get_profile(profile)
    sequences = list(sequences)
    runs = _as_runs(results_dir)
    for run in runs:
        if not run.is_dir():
            raise ResultsError(f"{run}: results directory not found")
    failures: dict[str, str] = {}
    skipped: set[str] = set()
    truths = []
    for seq in sequences:
        try:
            truths.append(_truth(seq, prof))
        except ScoringError as exc:
            failures[seq.name] = str(exc)
    per_run = [run_fn(truths, run, prof, skip_missing, failures, skipped) for run in runs]
    names = [t.name for t in truths if t.name not in skipped and all(t.name in r for r in per_run)]
    dataset = dataset or (sequences[0].dataset if sequences else "")
    return _assemble(dataset, prof, names, per_run, failures, sorted(skipped))


def _assemble(dataset, prof: Profile, names, per_run, failures, skipped) -> ScoreResult:
    th = prof.thresholds
    s = len(names)

    def stack(k, width):
        if s == 0:
            return np.zeros((len(per_run), 0, width), dtype=np.int64)
        return np.array([[r[name][k] for name in names] for r in per_run], dtype=np.int64)

    succ = stack(0, len(th["overlap"]))
    prec = stack(1, len(th["center"]))
    norm = stack(2, len(th["center_norm"])) if "center_norm" in th else None
    n = np.array([[r[name][4] for name in names] for r in per_run], dtype=np.float64).reshape(len(per_run), s)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = lambda c: (c / n[:, :, None]).mean(axis=0)  # runs merged per sequence  # noqa: E731
        inside = None
        if prof.npr == "inside":
            hits = np.array([[r[name][3] for name in names] for r in per_run], dtype=np.float64).reshape(len(per_run), s)
            inside = (hits / n).mean(axis=0)
    counts = [{"success": succ[i], "precision": prec[i], **({"norm_precision": norm[i]} if norm is not None else {})}
              for i in range(len(per_run))]
    frame1 = {name: float(np.nanmean([r[name][5] for r in per_run])) if not all(math.isnan(r[name][5]) for r in per_run)
              else math.nan for name in names}
    return ScoreResult(
        dataset=dataset,
        profile=prof.name,
        names=list(names),
        n_frames=n[0] if len(per_run) else np.zeros(0),
        success=frac(succ),
        precision=frac(prec),
        norm_precision=frac(norm) if norm is not None else None,
        inside=inside,
        counts=counts,
        thresholds=th,
        failures=failures,
        skipped=skipped,
        frame1_iou=frame1,
        runs=len(per_run),
    )


def score_dataset(
    sequences: Iterable[Sequence],
    results_dir: str | Path | Seq[str | Path],
    profile: str | Profile = "vl_python",
    skip_missing: bool = False,
    dataset: Optional[str] = None,
) -> ScoreResult:
    """Score ``<results_dir>/<seq>.txt`` for every sequence under `profile` (vectorized).

    results_dir: one directory, or several (run ids of one tracker: curves averaged per sequence,
    as pytracking's merge_results does). Sequences that cannot be scored are listed in
    `ScoreResult.failures` with a message naming the file; the dataset scores are then None
    (the reference would abort), unless the failure is a missing file and `skip_missing` is set.
    """
    return _score(sequences, results_dir, profile, skip_missing, dataset, _score_run_vectorized)


def score_dataset_loop(sequences, results_dir, profile="vl_python", skip_missing=False, dataset=None) -> ScoreResult:
    """`score_dataset` computed one sequence at a time with plain numpy (the baseline)."""
    return _score(sequences, results_dir, profile, skip_missing, dataset, _score_run_loop)


def attribute_breakdown(result: ScoreResult, sequences: Iterable[Sequence]) -> dict[str, dict[str, float]]:
    """Mean per-sequence AUC / PRE / NPR (percent) over the sequences flagged with each attribute.

    {attribute: {"n": count, "auc", "pre", "npr"}} from `Sequence.attributes` (flag True = has it).
    """
    per_seq = result.sequence_scores()
    groups: dict[str, list[str]] = {}
    for seq in sequences:
        for attr, flag in (seq.attributes or {}).items():
            if flag and seq.name in per_seq:
                groups.setdefault(attr, []).append(seq.name)
    out = {}
    for attr in sorted(groups):
        rows = [per_seq[name] for name in groups[attr]]
        entry = {"n": len(rows)}
        for key in ("auc", "pre", "npr"):
            vals = [r[key] for r in rows if r[key] is not None]
            entry[key] = float(np.mean(vals)) if vals else None
        out[attr] = entry
    return out
