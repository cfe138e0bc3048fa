"""Score result files against ground truth under a protocol profile.

`score_dataset(sequences, results_dir, profile)` reads every ``<results_dir>/<seq>.txt``, applies
the profile's frame rules (`mvlm.evaluate.profiles`) and returns a `ScoreResult` with the
per-sequence curves, the dataset curves and scores (percent), and the sequences that failed.

The steps, in the reference evaluators' order (docs/metrics.md states each rule per profile):

1. ground truth: boxes, visibility and absent flags the profile uses (`_truth`);
2. predictions, per sequence: checked, cut or padded to the GT length, zero-size (or invalid)
   rows forward-filled, frame 1 overwritten with the GT (`_prepare_predictions`);
3. per-frame IoU, centre error and normalized centre error of all sequences at once, then the
   profile's sentinel values for invalid, invisible and absent frames (`_frame_errors`);
4. per-sequence hit counts per threshold (`metrics.curve_counts`), divided by the denominators
   and averaged over runs (`_assemble`); dataset curves are the mean over sequences.
"""

from __future__ import annotations

import os
import warnings
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

    @property
    def n_averaged(self) -> int:
        """How many sequences the dataset curves average (the profile may drop some)."""
        return len(self._kept(self.success)) if self.names else 0

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
# step 1: the ground truth of each sequence, with the flags the profile uses


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
# step 2: one sequence's predictions made ready for scoring


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
    if not bad.any():
        return bad
    return bad & ~np.isnan(gt).any(axis=1)


def _forward_fill(pred: np.ndarray, replace: np.ndarray) -> np.ndarray:
    """Each flagged row takes the nearest earlier unflagged row: the reference's sequential
    ``pred[i] = pred[i - 1]`` for every flagged i, as one gather (running max of kept indices)."""
    if not replace.any():
        return pred
    idx = np.where(replace, 0, np.arange(len(pred)))
    np.maximum.accumulate(idx, out=idx)
    return pred[idx]


def _prepare_predictions(raw: np.ndarray, truth: _Truth, path: Path, profile: Profile) -> np.ndarray:
    """The raw rows of ``<seq>.txt`` -> the (N_gt, 4) boxes that are scored, in the reference's order:

    1. check: a NaN or a negative w/h is an error (Python profiles; ScoringError naming the file);
    2. length: cut or zero-padded to the GT length, or an error (per profile and dataset);
    3. repair: rows of frames >= 2 that the profile rejects (w == 0 or h == 0; MATLAB also NaN
       and w, h <= 0) take the previous, already repaired row; padded rows stay 0,0,0,0;
    4. frame 1 := GT (every profile but MGIT).
    """
    _check_predictions(raw, path, profile)
    pred, n_pad = _align(raw, len(truth.boxes), path, profile, truth.lasot_dataset)
    replace = _repair_mask(pred, truth.boxes, profile)
    replace[:1] = False
    replace[len(pred) - n_pad:] = False
    pred = _forward_fill(pred, replace)
    if profile.first_frame_gt and len(pred):
        pred = np.concatenate([truth.boxes[:1], pred[1:]])
    return pred


# ---------------------------------------------------------------------------------------------
# step 3: per-frame errors with the profile's sentinels (all sequences' frames at once)


@dataclass
class _Frames:
    iou: np.ndarray
    cle: np.ndarray
    ncle: Optional[np.ndarray]
    inside: Optional[np.ndarray]
    keep: Optional[np.ndarray]  # frames counted at all (MGIT drop), None = all


def _clip_to_image(pred: np.ndarray, image_wh: np.ndarray) -> np.ndarray:
    """MGIT: boxes cut to the image [0, W] x [0, H].  (F, 4), (F, 2) -> (F, 4)"""
    x1 = np.clip(pred[:, 0], 0, image_wh[:, 0])
    y1 = np.clip(pred[:, 1], 0, image_wh[:, 1])
    x2 = np.clip(pred[:, 0] + pred[:, 2], 0, image_wh[:, 0])
    y2 = np.clip(pred[:, 1] + pred[:, 3], 0, image_wh[:, 1])
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)


def _frame_errors(pred, gt, visible, absent, lasot, image_wh, profile: Profile) -> _Frames:
    """pred, gt (F, 4); visible/absent/lasot (F,) bool or None; image_wh (F, 2) or None."""
    if profile.clip_to_image and image_wh is not None:
        pred = _clip_to_image(pred, image_wh)
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
# step 4: one run (one results directory) -> hit counts per sequence


@dataclass
class _RunTable:
    """Per-sequence results of one run (one results directory), rows in `names` order."""

    names: list[str]
    success: np.ndarray  # (S, T_iou) int64 hits
    precision: np.ndarray  # (S, T_px) int64
    norm_precision: Optional[np.ndarray]  # (S, T_norm) int64 or None
    inside: Optional[np.ndarray]  # (S,) float64 centre-inside hits or None
    n: np.ndarray  # (S,) int64 denominators
    frame1_iou: np.ndarray  # (S,) float64, NaN where undefined

    def rows(self, names: list[str]) -> "_RunTable":
        """The same table restricted/reordered to `names` (all must be present)."""
        if names == self.names:
            return self
        where = {name: i for i, name in enumerate(self.names)}
        idx = np.array([where[name] for name in names], dtype=np.intp)
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        return _RunTable(list(names), self.success[idx], self.precision[idx], pick(self.norm_precision),
                         pick(self.inside), self.n[idx], self.frame1_iou[idx])

def _empty_table(profile: Profile) -> _RunTable:
    th = profile.thresholds
    z = lambda k: np.zeros((0, len(th[k])), dtype=np.int64)  # noqa: E731
    return _RunTable([], z("overlap"), z("center"), z("center_norm") if "center_norm" in th else None,
                     None, np.zeros(0, dtype=np.int64), np.zeros(0))


def _read_predictions(truths: list[_Truth], run_dir: Path, skip_missing: bool, failures: dict,
                      skipped: set) -> tuple[list[_Truth], list[np.ndarray]]:
    """-> (the sequences whose result file could be read, their raw rows).

    A missing file is a failure, or skipped with `skip_missing`; an unreadable or malformed file
    is a failure naming the file (and line). All files are read in one call; only if one of them
    is broken are they read one by one, so that every broken file is named.
    """
    listing = set(os.listdir(run_dir))
    present = []
    for t in truths:
        if f"{t.name}.txt" in listing:
            present.append(t)
        elif skip_missing:
            skipped.add(t.name)
        else:
            failures.setdefault(t.name, f"{result_path(run_dir, t.name)}: result not found (use --skip-missing to drop it)")
    try:
        return present, read_box_files([result_path(run_dir, t.name) for t in present])
    except ResultsError:
        pass
    kept, raws = [], []
    for t in present:
        try:
            raws.append(read_box_files([result_path(run_dir, t.name)])[0])
        except ResultsError as exc:
            failures.setdefault(t.name, str(exc))
            continue
        kept.append(t)
    return kept, raws


def _frame1_ious(profile: Profile, run_dir: Path, truths: list[_Truth], raws: list[np.ndarray]) -> np.ndarray:
    """Frame-1 grounding IoU per sequence: the tracker's own frame-1 box (``frame1_box`` in
    ``<seq>_meta.json``, else raw row 1) against GT row 1, before any overwrite with the GT.
    NaN where there is no such box or the GT box has no area.  -> (S,)
    """
    pred = np.full((len(truths), 4), np.nan)
    gt = np.full((len(truths), 4), np.nan)
    listing = set(os.listdir(run_dir))
    for s, (t, raw) in enumerate(zip(truths, raws)):
        meta = read_meta(run_dir, t.name) if f"{t.name}_meta.json" in listing else {}
        if meta.get("frame1_box") is not None:
            pred[s] = np.asarray(meta["frame1_box"], dtype=np.float64).reshape(4)
        elif len(raw):
            pred[s] = raw[0]
        if len(t.boxes):
            gt[s] = t.boxes[0]
    iou = M.iou(pred, gt, profile.iou)
    iou[~((gt[:, 2] > 0) & (gt[:, 3] > 0))] = np.nan
    return iou


def _concat_optional(parts, lengths, fill: bool) -> Optional[np.ndarray]:
    """Per-sequence flag arrays concatenated (a None part becomes `fill`), or None if all are None."""
    if all(p is None for p in parts):
        return None
    return np.concatenate([np.full(n, fill) if p is None else p for p, n in zip(parts, lengths)])


def _image_sizes(truths: list[_Truth], lengths) -> np.ndarray:
    """(F, 2) image width, height of every frame (MGIT clipping); an error if a sequence lacks it."""
    if any(t.image_size is None for t in truths):
        missing = [t.name for t in truths if t.image_size is None]
        raise ScoringError(f"profile clips to the image but no image_size in the meta of {missing[:3]}")
    return np.repeat(np.array([t.image_size for t in truths], dtype=np.float64), lengths, axis=0)


def _score_run(truths: list[_Truth], run_dir: Path, profile: Profile, skip_missing: bool, failures: dict,
               skipped: set) -> _RunTable:
    """One results directory: steps 2 to 4 for every sequence with a readable result file."""
    present, raws = _read_predictions(truths, run_dir, skip_missing, failures, skipped)
    kept, kept_raws, preds = [], [], []
    for t, raw in zip(present, raws):
        try:
            preds.append(_prepare_predictions(raw, t, result_path(run_dir, t.name), profile))
        except ScoringError as exc:
            failures.setdefault(t.name, str(exc))
            continue
        kept.append(t)
        kept_raws.append(raw)
    if not kept:
        return _empty_table(profile)

    # step 3: all frames of all sequences concatenated
    lengths = np.array([len(t.boxes) for t in kept], dtype=np.int64)
    gt = np.concatenate([t.boxes for t in kept])
    visible = _concat_optional([t.visible for t in kept], lengths, fill=True)
    absent = _concat_optional([t.absent for t in kept], lengths, fill=False)
    lasot = np.repeat([t.lasot_rules for t in kept], lengths) if any(t.lasot_rules for t in kept) else None
    image_wh = _image_sizes(kept, lengths) if profile.clip_to_image else None
    fr = _frame_errors(np.concatenate(preds), gt, visible, absent, lasot, image_wh, profile)

    # step 4: hits per sequence and threshold; the denominator is every counted frame
    n_seq, th = len(kept), profile.thresholds
    sequence = np.repeat(np.arange(n_seq), lengths)
    keep = fr.keep if fr.keep is not None else slice(None)
    sequence = sequence[keep]
    counts = lambda values, key, compare: M.curve_counts(values[keep], sequence, n_seq, th[key], compare)  # noqa: E731
    success = counts(fr.iou, "overlap", ">")
    precision = counts(fr.cle, "center", profile.center_compare)
    norm = counts(fr.ncle, "center_norm", "<=") if fr.ncle is not None else None
    inside = np.bincount(sequence, weights=fr.inside[keep], minlength=n_seq) if fr.inside is not None else None
    n = np.bincount(sequence, minlength=n_seq).astype(np.int64)
    f1 = _frame1_ious(profile, run_dir, kept, kept_raws)
    return _RunTable([t.name for t in kept], success, precision, norm, inside, n, f1)


# ---------------------------------------------------------------------------------------------
# public API


def _as_runs(results_dir) -> list[Path]:
    if isinstance(results_dir, (str, Path)):
        return [Path(results_dir)]
    runs = [Path(r) for r in results_dir]
    if not runs:
        raise ValueError("no results directory given")
    return runs


def _assemble(dataset, prof: Profile, names, per_run: list[_RunTable], failures, skipped) -> ScoreResult:
    """Runs merged per sequence (mean of the per-run fractions), as pytracking's merge_results."""
    succ = np.stack([r.success for r in per_run])  # (R, S, T) int64
    prec = np.stack([r.precision for r in per_run])
    norm = np.stack([r.norm_precision for r in per_run]) if per_run[0].norm_precision is not None else None
    n = np.stack([r.n for r in per_run]).astype(np.float64)  # (R, S)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = lambda c: (c / n[:, :, None]).mean(axis=0)  # noqa: E731
        inside = None
        if prof.npr == "inside":
            inside = (np.stack([r.inside for r in per_run]) / n).mean(axis=0)
    counts = [{"success": succ[i], "precision": prec[i], **({"norm_precision": norm[i]} if norm is not None else {})}
              for i in range(len(per_run))]
    f1 = np.stack([r.frame1_iou for r in per_run])
    if len(per_run) > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN sequences stay NaN
            f1 = np.nanmean(f1, axis=0, keepdims=True)
    return ScoreResult(
        dataset=dataset,
        profile=prof.name,
        names=list(names),
        n_frames=n[0],
        success=frac(succ),
        precision=frac(prec),
        norm_precision=frac(norm) if norm is not None else None,
        inside=inside,
        counts=counts,
        thresholds=prof.thresholds,
        failures=failures,
        skipped=skipped,
        frame1_iou=dict(zip(names, f1[0].tolist())),
        runs=len(per_run),
    )


def score_dataset(
    sequences: Iterable[Sequence],
    results_dir: str | Path | Seq[str | Path],
    profile: str | Profile = "vl_python",
    skip_missing: bool = False,
    dataset: Optional[str] = None,
) -> ScoreResult:
    """Score ``<results_dir>/<seq>.txt`` for every sequence under `profile`.

    results_dir: one directory, or several (run ids of one tracker: curves averaged per sequence,
    as pytracking's merge_results does). Sequences that cannot be scored are listed in
    `ScoreResult.failures` with a message naming the file; the dataset scores are then None
    (the reference would abort), unless the failure is a missing file and `skip_missing` is set.
    """
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
    per_run = [_score_run(truths, run, prof, skip_missing, failures, skipped) for run in runs]
    scored = [set(r.names) for r in per_run]
    names = [t.name for t in truths if t.name not in skipped and all(t.name in r for r in scored)]
    dataset = dataset or (sequences[0].dataset if sequences else "")
    return _assemble(dataset, prof, names, [r.rows(names) for r in per_run], failures, sorted(skipped))


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
