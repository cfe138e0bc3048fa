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
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence as Seq

import numpy as np

from mvlm.data.sequence import Sequence
from mvlm.evaluate import metrics as M
from mvlm.evaluate.profiles import LASOT_RULE_DATASETS, Profile, get_profile
from mvlm.evaluate.results import BoxBlock, ResultsError, read_box_block, read_box_files, read_meta, result_path


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


def _truth(seq: Sequence, profile: Profile, check_nan: bool = True) -> _Truth:
    dataset = (seq.dataset or "").lower()
    visible = seq.visible if (seq.visible is not None and profile.uses_visibility(dataset)) else None
    if visible is not None and len(visible) != len(seq.boxes):
        raise ScoringError(f"{seq.name}: {len(visible)} visibility flags for {len(seq.boxes)} GT rows")
    if check_nan and profile.nan_gt == "raise" and np.isnan(seq.boxes).any():
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
    if not bad.any():
        return bad
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
# one run (one results directory)


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


def _read_run(truths: list[_Truth], run_dir: Path, skip_missing: bool, failures: dict, skipped: set):
    """-> (truths with a readable file, their paths, BoxBlock of their raw rows)."""
    present, paths = [], []
    listing = set(os.listdir(run_dir))  # one directory read instead of a stat per sequence
    prefix = os.path.join(run_dir, "")  # plain string concatenation: 700 os.path.join cost ~1 ms
    for t in truths:
        if f"{t.name}.txt" in listing:
            present.append(t)
            paths.append(f"{prefix}{t.name}.txt")
        elif skip_missing:
            skipped.add(t.name)
        else:
            failures.setdefault(t.name, f"{result_path(run_dir, t.name)}: result not found (use --skip-missing to drop it)")
    try:
        return present, paths, read_box_block(paths)
    except ResultsError:
        pass
    kept, kept_paths, arrays = [], [], []
    for t, path in zip(present, paths):  # find every broken file, not only the first
        try:
            arrays.append(read_box_files([path])[0])
        except ResultsError as exc:
            failures.setdefault(t.name, str(exc))
            continue
        kept.append(t)
        kept_paths.append(path)
    return kept, kept_paths, BoxBlock.stack(arrays, 4)


def _invalid_prediction_rows(raw: np.ndarray) -> np.ndarray:
    """Rows with a NaN or a negative w/h, found with two reductions in the common clean case."""
    if raw.size == 0 or (not np.isnan(raw.min()) and min(raw[:, 2].min(), raw[:, 3].min()) >= 0):
        return np.zeros(0, dtype=np.intp)
    return np.flatnonzero(np.isnan(raw).any(axis=1) | (raw[:, 2:] < 0).any(axis=1))


def _aligned_rows(src_start, n_src, n_dst) -> tuple[np.ndarray, np.ndarray]:
    """Gather index that cuts/pads each sequence's rows to its GT length.

    src_start, n_src, n_dst: (S,) -> (row index into the source (F_dst,), padded (F_dst,) bool)
    """
    dst_start = np.zeros(len(n_dst), dtype=np.int64)
    np.cumsum(n_dst[:-1], out=dst_start[1:])
    seg = np.repeat(np.arange(len(n_dst)), n_dst)
    local = np.arange(int(n_dst.sum())) - dst_start[seg]
    padded = local >= n_src[seg]
    return src_start[seg] + local, padded


def _score_run_vectorized(truths, run_dir, profile, skip_missing, failures, skipped, gt_all=None) -> _RunTable:
    """All sequences of one run at once: one read, one pass of per-frame maths, one bincount.

    gt_all: the (F, 4) GT rows of all `truths` stacked, when the caller already has them.
    """
    present, paths, block = _read_run(truths, run_dir, skip_missing, failures, skipped)
    raw_all, raw_start = block.values, block.offsets[:-1]
    n_raw = block.lengths
    n_gt = np.array([len(t.boxes) for t in present], dtype=np.int64)

    ok = np.ones(len(present), dtype=bool)
    if profile.invalid_predictions == "raise":
        bad_rows = _invalid_prediction_rows(raw_all)
        for s in np.unique(np.searchsorted(block.offsets, bad_rows, side="right") - 1):
            ok[s] = False
            try:
                _check_predictions(raw_all[block.offsets[s]:block.offsets[s + 1]], Path(paths[s]), profile)
            except ScoringError as exc:
                failures.setdefault(present[s].name, str(exc))
    for s in np.flatnonzero(ok & (n_raw != n_gt)):
        try:  # the length rules raise here for the sequences the profile rejects
            _align(raw_all[block.offsets[s]:block.offsets[s + 1]], int(n_gt[s]), Path(paths[s]), profile,
                   present[s].lasot_dataset)
        except ScoringError as exc:
            failures.setdefault(present[s].name, str(exc))
            ok[s] = False
    if not ok.any():
        return _empty_table(profile)
    ok_idx = np.flatnonzero(ok)
    kept = [present[s] for s in ok_idx] if not ok.all() else present
    lengths = n_gt[ok_idx]
    starts = np.zeros(len(kept), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    gt = gt_all if gt_all is not None and len(kept) == len(truths) else _stack_rows([t.boxes for t in kept])
    first = starts[lengths > 0]
    # frame-1 grounding IoU uses the raw first row, so take it before any repair/overwrite
    raw_first = np.full((len(kept), 4), np.nan)
    has_raw = n_raw[ok_idx] > 0
    raw_first[has_raw] = raw_all[raw_start[ok_idx][has_raw]]

    if ok.all() and np.array_equal(n_raw, n_gt):
        pred, padded = raw_all, None  # the block was read for this call only: repaired in place below
    else:
        rows, padded = _aligned_rows(raw_start[ok_idx], n_raw[ok_idx], lengths)
        source = np.concatenate([raw_all, np.zeros((1, 4))])  # row -1: the 0,0,0,0 padding
        rows[padded] = len(raw_all)
        pred = np.asfortranarray(source[rows])
        if not padded.any():
            padded = None

    replace = _repair_mask(pred, gt, profile)
    if replace.any():
        replace[first] = False
        if padded is not None:
            replace &= ~padded  # padded rows stay 0,0,0,0
        pred = _forward_fill(pred, replace)
    if profile.first_frame_gt:
        pred[first] = gt[first]

    visible = _concat_optional([t.visible for t in kept], lengths, fill=True)
    absent = _concat_optional([t.absent for t in kept], lengths, fill=False)
    lasot = np.repeat([t.lasot_rules for t in kept], lengths) if any(t.lasot_rules for t in kept) else None
    image_wh = _image_sizes(kept, lengths) if profile.clip_to_image else None
    success, precision, norm, inside, n = _frame_counts(pred, gt, visible, absent, lasot, image_wh, profile, lengths)
    f1 = _frame1_ious(profile, run_dir, kept, raw_first, (lengths > 0, gt[first]))
    return _RunTable([t.name for t in kept], success, precision, norm, inside, n, f1)


def _frame_counts(pred, gt, visible, absent, lasot, image_wh, profile: Profile, lengths: np.ndarray):
    """Per-sequence hit counts of consecutive sequences: (success, precision, norm or None,
    inside or None, n) with (S, T) int64 counts, (S,) float64 inside hits, (S,) int64 denominators.

    pred, gt (F, 4); visible/absent/lasot (F,) bool or None; image_wh (F, 2) or None;
    lengths (S,) frames per sequence. Compiled when numba is on, else numpy; the same numbers.
    """
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    kernel = M.compiled(_frame_hits_kernel)
    if kernel is None:
        return _frame_counts_numpy(pred, gt, visible, absent, lasot, image_wh, profile, offsets)
    return _frame_counts_compiled(kernel, pred, gt, visible, absent, lasot, image_wh, profile, offsets)


def _frame_counts_numpy(pred, gt, visible, absent, lasot, image_wh, profile: Profile, offsets: np.ndarray):
    s_total, th = len(offsets) - 1, profile.thresholds
    seg = np.repeat(np.arange(s_total, dtype=np.int64), np.diff(offsets))
    fb = _frame_bins(pred, gt, visible, absent, lasot, image_wh, profile)
    if fb.keep is not None:
        seg = seg[fb.keep]
        fb = _Bins(*(None if v is None else v[fb.keep] for v in (fb.iou, fb.cle, fb.ncle, fb.inside)), keep=None)
        n = np.bincount(seg, minlength=s_total)
    else:
        n = np.diff(offsets)
    success = M.counts_from_bins(fb.iou, seg, s_total, len(th["overlap"]), ">")
    precision = M.counts_from_bins(fb.cle, seg, s_total, len(th["center"]), profile.center_compare)
    norm = M.counts_from_bins(fb.ncle, seg, s_total, len(th["center_norm"]), "<=") if fb.ncle is not None else None
    inside = np.bincount(seg, weights=fb.inside, minlength=s_total) if fb.inside is not None else None
    return success, precision, norm, inside, np.asarray(n, dtype=np.int64)


_EPS = float(np.finfo(np.float64).eps)  # got10k's union + eps (a compile-time constant in the kernel)
_VALIDITY_CODES = {"none": 0, "wh": 1, "xywh": 2}
_ABSENT_CODES = {"ignore": 0, "numerator": 1, "drop": 2}
_COMPARE_CODES = {">": 0, "<=": 1, "<": 2}


def _frame_counts_compiled(kernel, pred, gt, visible, absent, lasot, image_wh, profile: Profile, offsets: np.ndarray):
    th = profile.thresholds
    with_ncle, with_inside = profile.norm_thresholds is not None, profile.npr == "inside"
    measures = [(th["overlap"], ">"), (th["center"], profile.center_compare)]
    if with_ncle:
        measures.append((th["center_norm"], "<="))
    t_max = max(len(t) for t, _ in measures)
    thresholds = np.full((len(measures), max(t_max, 1)), np.inf)
    for m, (t, _) in enumerate(measures):
        thresholds[m, :len(t)] = t
    steps = [M.grid_step(t) for t, _ in measures]
    no_flags = np.zeros(0, dtype=np.bool_)
    flags = lambda a: no_flags if a is None else np.ascontiguousarray(a, dtype=np.bool_)  # noqa: E731
    if profile.clip_to_image and image_wh is not None:
        pred = _clip_to_image(pred, image_wh)
    # x, y, w, h of pred then gt as (F,) columns: views of F-ordered blocks, copies otherwise
    columns = [np.ascontiguousarray(a[:, j], dtype=np.float64) for a in (pred, gt) for j in range(4)]
    hist, inside, n = kernel(
        *columns, flags(visible), flags(absent), flags(lasot), offsets, profile.iou == "continuous",
        _VALIDITY_CODES[profile.validity], float(profile.invalid_cle), float(profile.invalid_ncle),
        _ABSENT_CODES[profile.absent], profile.nan_gt == "drop", with_inside, thresholds,
        np.array([len(t) for t, _ in measures], dtype=np.int64),
        np.array([_COMPARE_CODES[c] for _, c in measures], dtype=np.int64), np.array([1.0 / h if h else 0.0 for h in steps]))
    counts = [M.hits_from_histogram(hist[m, :, :len(t) + 1], c) for m, (t, c) in enumerate(measures)]
    return counts[0], counts[1], counts[2] if with_ncle else None, inside if with_inside else None, n


# Frames per block of the compiled kernel: its per-stage loops re-read a block (8 columns of
# 2048 doubles, 128 KiB) from the L2 cache instead of streaming 16 MB from memory per stage.
_KERNEL_BLOCK = 2048


def _frame_hits_kernel(px, py, pw, ph, gx, gy, gw, gh, visible, absent, lasot, offsets, continuous, validity,
                       invalid_cle, invalid_ncle, absent_mode, nan_drop, with_inside, thresholds, n_thresholds, compares,
                       inv_steps):
    """Numba kernel of `_frame_errors` + `threshold_bins` + the per-sequence histograms.

    Per block of frames: IoU, CLE (and NCLE when `thresholds` has 3 rows) with the same float64
    operations in the same order as `_frame_errors` (np.minimum/np.maximum keep numpy's NaN
    propagation), so the same doubles; then the profile's sentinels; then each value's bin
    b = #{j : t_j < v} (#{j : t_j <= v} for "<"), guessed as ceil((v − t_0)·inv_step) and
    moved until both neighbouring thresholds compare right (exact for any sorted thresholds).
    Boxes come as contiguous columns (F,), so the compiler vectorizes the error loops.

    px..gh (F,) each; visible/absent/lasot (F,) bool or (0,) for None; offsets (S + 1,) frames
    of each sequence; validity 0 none, 1 wh, 2 xywh; absent_mode 0 ignore, 1 numerator, 2 drop;
    thresholds (M, T_max) with n_thresholds (M,) used; compares (M,) 0 ">", 1 "<=", 2 "<".
    -> hist (M, S, T_max + 1) int64, inside hits (S,) float64, n (S,) int64 frames counted
    """
    n_frames, n_seq, n_measures = len(gx), len(offsets) - 1, len(n_thresholds)
    hist = np.zeros((n_measures, n_seq, thresholds.shape[1] + 1), dtype=np.int64)
    inside_hits = np.zeros(n_seq)
    counted = np.zeros(n_seq, dtype=np.int64)
    values = np.empty((n_measures, _KERNEL_BLOCK))  # iou, cle, ncle of the block
    inside = np.zeros(_KERNEL_BLOCK)
    keep = np.ones(_KERNEL_BLOCK, dtype=np.bool_)
    with_ncle = n_measures > 2
    with_visible, with_absent = len(visible) > 0, len(absent) > 0 and absent_mode != 0
    with_lasot = len(lasot) > 0 and with_visible
    with_keep = (with_absent and absent_mode == 2) or nan_drop
    # 1-D row views: contiguous, so the error loops below vectorize
    iou_block, cle_block, ncle_block = values[0], values[1], values[n_measures - 1]
    first_seq = 0  # the sequence of the block's first frame
    for lo in range(0, n_frames, _KERNEL_BLOCK):
        hi = min(lo + _KERNEL_BLOCK, n_frames)
        if continuous:  # got10k rect_iou: inter / (union + eps), clipped to [0, 1]
            for f in range(lo, hi):
                side_x = np.maximum(np.minimum(px[f] + pw[f], gx[f] + gw[f]) - np.maximum(px[f], gx[f]), 0.0)
                side_y = np.maximum(np.minimum(py[f] + ph[f], gy[f] + gh[f]) - np.maximum(py[f], gy[f]), 0.0)
                inter = side_x * side_y
                union = pw[f] * ph[f] + gw[f] * gh[f] - inter
                iou_block[f - lo] = np.minimum(np.maximum(inter / (union + _EPS), 0.0), 1.0)
        else:  # inclusive pixels: right = x + w - 1
            for f in range(lo, hi):
                right = np.minimum(px[f] + pw[f] - 1.0, gx[f] + gw[f] - 1.0)
                bottom = np.minimum(py[f] + ph[f] - 1.0, gy[f] + gh[f] - 1.0)
                side_x = np.maximum(right - np.maximum(px[f], gx[f]) + 1.0, 0.0)
                side_y = np.maximum(bottom - np.maximum(py[f], gy[f]) + 1.0, 0.0)
                inter = side_x * side_y
                union = pw[f] * ph[f] + gw[f] * gh[f] - inter
                iou_block[f - lo] = inter / union
        # centres x + (w - 1)/2; NCLE divides each centre by the GT size before subtracting
        for f in range(lo, hi):
            dx = ((pw[f] - 1.0) * 0.5 + px[f]) - ((gw[f] - 1.0) * 0.5 + gx[f])
            dy = ((ph[f] - 1.0) * 0.5 + py[f]) - ((gh[f] - 1.0) * 0.5 + gy[f])
            cle_block[f - lo] = np.sqrt(dx * dx + dy * dy)
        if with_ncle:
            for f in range(lo, hi):
                nx = ((pw[f] - 1.0) * 0.5 + px[f]) / gw[f] - ((gw[f] - 1.0) * 0.5 + gx[f]) / gw[f]
                ny = ((ph[f] - 1.0) * 0.5 + py[f]) / gh[f] - ((gh[f] - 1.0) * 0.5 + gy[f]) / gh[f]
                ncle_block[f - lo] = np.sqrt(nx * nx + ny * ny)
        if with_inside:  # MGIT: the predicted centre lies in the GT box
            for f in range(lo, hi):
                cx, cy = (pw[f] - 1.0) * 0.5 + px[f], (ph[f] - 1.0) * 0.5 + py[f]
                hit = (cx >= gx[f]) & (cx <= gx[f] + gw[f]) & (cy >= gy[f]) & (cy <= gy[f] + gh[f])
                inside[f - lo] = 1.0 if hit else 0.0
        # the profile's sentinels, in `_frame_errors` order: invalid GT, LaSOT invisible, absent
        if validity != 0:
            for f in range(lo, hi):
                valid = (gw[f] > 0) & (gh[f] > 0) & ((validity == 1) | ((gx[f] > 0) & (gy[f] > 0)))
                if with_visible:
                    valid &= visible[f]
                if not valid:
                    iou_block[f - lo], cle_block[f - lo] = -1.0, invalid_cle
                    if with_ncle:
                        ncle_block[f - lo] = invalid_ncle
        if with_lasot:
            for f in range(lo, hi):
                if lasot[f] and not visible[f]:
                    cle_block[f - lo] = np.inf
                    if with_ncle:
                        ncle_block[f - lo] = np.inf
        if with_absent and absent_mode == 1:
            for f in range(lo, hi):
                if absent[f]:
                    iou_block[f - lo], cle_block[f - lo] = -1.0, np.inf
                    if with_ncle:
                        ncle_block[f - lo] = np.inf
        if with_keep:  # frames counted at all (MGIT drops absent and NaN-GT frames)
            for f in range(lo, hi):
                kept = not (with_absent and absent_mode == 2 and absent[f])
                if nan_drop and not (np.isfinite(gx[f]) and np.isfinite(gy[f]) and np.isfinite(gw[f])
                                     and np.isfinite(gh[f])):
                    kept = False
                keep[f - lo] = kept
        # per-sequence denominators, inside hits and threshold histograms, one sequence's part
        # of the block at a time
        s = first_seq
        while s < n_seq and offsets[s] < hi:
            start, stop = max(lo, offsets[s]) - lo, min(hi, offsets[s + 1]) - lo
            if with_keep or with_inside:
                for j in range(start, stop):
                    if keep[j]:
                        counted[s] += 1
                        inside_hits[s] += inside[j]
            else:
                counted[s] += stop - start
            for m in range(n_measures):
                t, compare, inv_step, th, v_block, h = (n_thresholds[m], compares[m], inv_steps[m], thresholds[m],
                                                        values[m], hist[m, s])
                for j in range(start, stop):
                    if with_keep and not keep[j]:
                        continue
                    v = v_block[j]
                    if v != v:  # NaN: never above (">") nor below ("<=", "<") a threshold
                        b = 0 if compare == 0 else t
                    else:
                        guess = np.ceil((v - th[0]) * inv_step) if t > 0 else 0.0
                        if not guess >= 0.0:  # also NaN from inf·0
                            guess = 0.0
                        b = int(min(guess, float(t)))
                        if compare == 2:
                            while b > 0 and th[b - 1] > v:
                                b -= 1
                            while b < t and th[b] <= v:
                                b += 1
                        else:
                            while b > 0 and th[b - 1] >= v:
                                b -= 1
                            while b < t and th[b] < v:
                                b += 1
                    h[b] += 1
            if offsets[s + 1] > hi:
                break  # the sequence goes on in the next block
            s += 1
        first_seq = s
    return hist, inside_hits, counted


@dataclass
class _Bins:
    """Per-frame threshold bins (`metrics.threshold_bins`) of one run, all frames concatenated."""

    iou: np.ndarray  # (F,) int16
    cle: np.ndarray
    ncle: Optional[np.ndarray]
    inside: Optional[np.ndarray]  # (F,) float64 0/1 (MGIT)
    keep: Optional[np.ndarray]  # (F,) bool frames counted at all, None = all


# Frames per block: the dozen float64 temporaries of one block (256 KiB each) stay in the CPU
# cache instead of streaming 4 MB arrays through memory per operation (about 2x faster).
_BLOCK_FRAMES = 1 << 15


def _frame_bins(pred, gt, visible, absent, lasot, image_wh, profile: Profile) -> _Bins:
    """`_frame_errors` + `threshold_bins` over blocks of frames; only the small bins are kept.

    pred, gt (F, 4); visible/absent/lasot (F,) bool or None; image_wh (F, 2) or None.
    """
    f, th = len(gt), profile.thresholds
    part = lambda a, lo, hi: None if a is None else a[lo:hi]  # noqa: E731
    out = _Bins(np.empty(f, np.int16), np.empty(f, np.int16),
                np.empty(f, np.int16) if profile.norm_thresholds is not None else None,
                np.empty(f) if profile.npr == "inside" else None, None)
    keep_parts = []
    for lo in range(0, f, _BLOCK_FRAMES):
        hi = min(lo + _BLOCK_FRAMES, f)
        fr = _frame_errors(pred[lo:hi], gt[lo:hi], part(visible, lo, hi), part(absent, lo, hi), part(lasot, lo, hi),
                           part(image_wh, lo, hi), profile)
        out.iou[lo:hi] = M.threshold_bins(fr.iou, th["overlap"], ">")
        out.cle[lo:hi] = M.threshold_bins(fr.cle, th["center"], profile.center_compare)
        if out.ncle is not None:
            out.ncle[lo:hi] = M.threshold_bins(fr.ncle, th["center_norm"], "<=")
        if out.inside is not None:
            out.inside[lo:hi] = fr.inside
        keep_parts.append(fr.keep)
    if any(k is not None for k in keep_parts):
        out.keep = np.concatenate([np.ones(min(_BLOCK_FRAMES, f - i * _BLOCK_FRAMES), bool) if k is None else k
                                   for i, k in enumerate(keep_parts)])
    return out


def _empty_table(profile: Profile) -> _RunTable:
    th = profile.thresholds
    z = lambda k: np.zeros((0, len(th[k])), dtype=np.int64)  # noqa: E731
    return _RunTable([], z("overlap"), z("center"), z("center_norm") if "center_norm" in th else None,
                     None, np.zeros(0, dtype=np.int64), np.zeros(0))


def _stack_rows(arrays: list[np.ndarray]) -> np.ndarray:
    """Row-stack (N_i, 4) arrays into one column-major (F, 4) array (zero-copy when possible)."""
    view = _consecutive_rows(arrays)
    if view is not None:
        return view
    out = np.empty((sum(len(a) for a in arrays), 4), order="F")
    return np.concatenate(arrays, out=out) if arrays else out


def _consecutive_rows(arrays: list[np.ndarray]) -> Optional[np.ndarray]:
    """The (F, 4) view that the arrays are consecutive row slices of, or None.

    GT boxes read by `read_box_block` are exactly that (one column-major block per dataset), so
    the 16 MB concatenation of a TNL2K run is skipped; anything else is simply copied.
    """
    rows = [a for a in arrays if len(a)]  # numpy gives empty slices a start pointer of 0: skip them
    if not rows:
        return None
    owner = rows[0].base
    if owner is None or owner.ndim != 2 or owner.dtype != np.float64 or not owner.flags.f_contiguous:
        return None
    start = rows[0].__array_interface__["data"][0]
    expected = start
    for a in rows:
        if a.base is not owner or a.strides != owner.strides or a.__array_interface__["data"][0] != expected:
            return None
        expected += a.strides[0] * len(a)
    first = (start - owner.__array_interface__["data"][0]) // owner.strides[0]
    return owner[first:first + (expected - start) // owner.strides[0]]


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


def _frame1_ious(profile: Profile, run_dir: Path, kept: list[_Truth], raw_first: np.ndarray, gt_first=None) -> np.ndarray:
    """Frame-1 grounding IoU of every sequence in one call (raw row 1, or meta `frame1_box`).

    raw_first: (S, 4) first raw row per sequence (NaN when the file is empty);
    gt_first: optional (sequences with GT rows (K,) bool-or-index, their first GT rows (K, 4)),
    else taken from `kept`. -> (S,)
    """
    listing = set(os.listdir(run_dir))
    pred = raw_first.copy()
    for s, t in enumerate(kept):
        if f"{t.name}_meta.json" in listing:
            first = _frame1_prediction(run_dir, t.name, raw_first[s:s + 1])
            pred[s] = first[0] if first is not None else np.nan
    gt = np.full((len(kept), 4), np.nan)
    if gt_first is not None:
        gt[gt_first[0]] = gt_first[1]
    else:
        has_gt = np.array([len(t.boxes) > 0 for t in kept], dtype=bool)
        if has_gt.any():
            gt[has_gt] = np.stack([t.boxes[0] for t, h in zip(kept, has_gt) if h])
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


def _score_run_loop(truths, run_dir, profile, skip_missing, failures, skipped, gt_all=None) -> _RunTable:
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
    if not out:
        return _empty_table(profile)
    rows = list(out.values())
    col = lambda k, dtype: np.array([r[k] for r in rows], dtype=dtype)  # noqa: E731
    return _RunTable(list(out), col(0, np.int64), col(1, np.int64), col(2, np.int64) if rows[0][2] is not None else None,
                     col(3, np.float64) if rows[0][3] is not None else None, col(4, np.int64), col(5, np.float64))


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
    # one NaN test over all GT rows when they sit in one block; per sequence only if it fires
    stacked = _consecutive_rows([seq.boxes for seq in sequences])
    check_nan = stacked is None or (len(stacked) > 0 and bool(np.isnan(stacked.min())))
    for seq in sequences:
        try:
            truths.append(_truth(seq, prof, check_nan))
        except ScoringError as exc:
            failures[seq.name] = str(exc)
    gt_all = stacked if len(truths) == len(sequences) else None
    per_run = [run_fn(truths, run, prof, skip_missing, failures, skipped, gt_all) for run in runs]
    scored = [set(r.names) for r in per_run]
    names = [t.name for t in truths if t.name not in skipped and all(t.name in r for r in scored)]
    dataset = dataset or (sequences[0].dataset if sequences else "")
    return _assemble(dataset, prof, names, [r.rows(names) for r in per_run], failures, sorted(skipped))


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
