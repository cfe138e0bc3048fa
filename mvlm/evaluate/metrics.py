"""Per-frame errors and curves of single-object tracking, vectorized (got10k style).

Boxes are ``(N, 4)`` float64 ``x, y, w, h`` in pixels, (x, y) the top-left corner. Every function
works on all frames of all sequences at once; per-sequence counts come from one ``bincount``.

The threshold arrays are facts of the reference evaluators and are reproduced double for double
(see `overlap_thresholds_torch`).
"""

from __future__ import annotations

import os
from typing import Callable, Literal, Optional

import numpy as np

Compare = Literal[">", "<=", "<"]


# ---------------------------------------------------------------------------------------------
# thresholds


def overlap_thresholds_torch() -> np.ndarray:
    """The 21 IoU thresholds of pytracking/OSTrack: ``torch.arange(0, 1.05, 0.05, float64)``.

    torch's CPU kernel fills the range in SIMD blocks of 4 doubles: ``t_i = 0.05·(4⌊i/4⌋) +
    0.05·(i mod 4)``, which gives ``0.6500000000000001`` and ``0.7500000000000001`` at i = 13, 15
    where ``0.05·i`` gives 0.65 and 0.75. The same two-step arithmetic in numpy yields the same
    doubles.
    """
    i = np.arange(21)
    return (i // 4 * 4) * 0.05 + (i % 4) * 0.05


def overlap_thresholds_linspace(n: int = 21) -> np.ndarray:
    """``linspace(0, 1, n)``: got10k (n = 21), Octave's ``0:0.05:1`` (same doubles), MGIT (n = 101)."""
    return np.linspace(0.0, 1.0, n)


def center_thresholds(max_px: int = 50) -> np.ndarray:
    """Pixel thresholds ``0, 1, …, max_px`` (float64)."""
    return np.arange(max_px + 1, dtype=np.float64)


def norm_center_thresholds() -> np.ndarray:
    """Normalized thresholds ``k / 100`` for k = 0..50 (one division each, as the references do)."""
    return np.arange(51, dtype=np.float64) / 100.0


# ---------------------------------------------------------------------------------------------
# per-frame errors


def iou_inclusive(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU with the inclusive-pixel convention of pytracking and the MATLAB toolkits.

    right = x + w − 1, inter_x = max(0, min(right_p, right_g) − max(x_p, x_g) + 1) (same for y);
    IoU = inter_x·inter_y / (w_p·h_p + w_g·h_g − inter_x·inter_y).  (N, 4), (N, 4) -> (N,)
    """
    # in-place steps: the same float operations in the same order, fewer 8-byte-per-frame temporaries
    br = pred[:, :2] + pred[:, 2:]
    br -= 1.0
    gt_br = gt[:, :2] + gt[:, 2:]
    gt_br -= 1.0
    np.minimum(br, gt_br, out=br)
    br -= np.maximum(pred[:, :2], gt[:, :2], out=gt_br)
    br += 1.0
    np.maximum(br, 0.0, out=br)  # side lengths; NaN stays NaN
    inter = br[:, 0] * br[:, 1]
    union = pred[:, 2] * pred[:, 3]
    union += gt[:, 2] * gt[:, 3]
    union -= inter
    with np.errstate(divide="ignore", invalid="ignore"):
        inter /= union
    return inter


def iou_continuous(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of got10k ``rect_iou``: continuous intersection, ``inter / (union + eps)`` clipped to [0, 1].

    inter_x = max(0, min(x_p + w_p, x_g + w_g) − max(x_p, x_g)); eps = float64 machine epsilon.
    (N, 4), (N, 4) -> (N,)
    """
    tl = np.maximum(pred[:, :2], gt[:, :2])
    br = np.minimum(pred[:, :2] + pred[:, 2:], gt[:, :2] + gt[:, 2:])
    side = np.maximum(br - tl, 0.0)
    inter = side[:, 0] * side[:, 1]
    union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(inter / (union + np.finfo(np.float64).eps), 0.0, 1.0)


def box_centers(boxes: np.ndarray) -> np.ndarray:
    """c = (x + (w − 1)/2, y + (h − 1)/2), the convention of every toolkit.  (N, 4) -> (N, 2)"""
    half = boxes[:, 2:] - 1.0
    half *= 0.5
    half += boxes[:, :2]
    return half


def _norm2(d: np.ndarray) -> np.ndarray:
    """sqrt(d_x² + d_y²) per row, overwriting `d`.  (N, 2) -> (N,)"""
    np.square(d, out=d)
    out = d[:, 0] + d[:, 1]
    return np.sqrt(out, out=out)


def center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """CLE = ‖c_pred − c_gt‖₂ in pixels.  (N, 4), (N, 4) -> (N,)"""
    return center_errors(pred, gt, normalized=False)[0]


def normalized_center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """NCLE = ‖c_pred/(w_g, h_g) − c_gt/(w_g, h_g)‖₂.

    Each centre is divided by the GT size first, then subtracted (the reference order; computing
    (c_pred − c_gt)/(w_g, h_g) instead rounds differently and moves counts at 0.2).  -> (N,)
    """
    return center_errors(pred, gt, normalized=True)[1]


def center_errors(pred: np.ndarray, gt: np.ndarray, normalized: bool = True) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """(CLE, NCLE or None) sharing one computation of the centres.  (N, 4), (N, 4) -> (N,), (N,)"""
    c_pred, c_gt = box_centers(pred), box_centers(gt)
    ncle = None
    if normalized:
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.divide(c_pred, gt[:, 2:])
            d -= np.divide(c_gt, gt[:, 2:])
        ncle = _norm2(d)
    c_pred -= c_gt
    return _norm2(c_pred), ncle


def center_inside(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """MGIT's normalized precision per frame: x_g ≤ cx_pred ≤ x_g + w_g and y_g ≤ cy_pred ≤ y_g + h_g."""
    c = box_centers(pred)
    return (c[:, 0] >= gt[:, 0]) & (c[:, 0] <= gt[:, 0] + gt[:, 2]) & (c[:, 1] >= gt[:, 1]) & (c[:, 1] <= gt[:, 1] + gt[:, 3])


# ---------------------------------------------------------------------------------------------
# curves


def grid_step(thresholds: np.ndarray) -> Optional[float]:
    """h when t_j = t_0 + j·h + e_j with |e_j| <= h/4 (every reference's thresholds), else None.

    Then ceil((v − t_0)/h) is within one of the true bin of any v, and one exact comparison
    with each neighbouring threshold corrects it.
    """
    t = len(thresholds)
    if t < 2 or not np.isfinite(thresholds).all():
        return None
    step = (thresholds[-1] - thresholds[0]) / (t - 1)
    if not step > 0 or np.abs(thresholds - (thresholds[0] + step * np.arange(t))).max() > step / 4:
        return None
    return float(step)


def threshold_bins(values: np.ndarray, thresholds: np.ndarray, compare: Compare) -> np.ndarray:
    """Per value, the bin b that decides its hits: sorted thresholds t_0..t_{T−1}.

    ">":  b = #{j : t_j < v}, hits at j < b (NaN -> 0);
    "<=": b = #{j : t_j < v}, hits at j >= b (NaN -> T);
    "<":  b = #{j : t_j <= v}, hits at j >= b (NaN -> T).
    Equal to ``np.searchsorted``; for evenly spaced thresholds the bin is computed from
    (v − t_0)/h and made exact by two comparisons instead of a binary search per value.
    (F,) -> (F,) intp
    """
    t = len(thresholds)
    right = compare == "<"
    step = grid_step(thresholds)
    if step is None:
        b = np.searchsorted(thresholds, values, side="right" if right else "left")  # NaN sorts last
        if compare == ">":
            b[np.isnan(values)] = 0
        return b
    guess = values * (1.0 / step) if thresholds[0] == 0 else (values - thresholds[0]) * (1.0 / step)
    if right:
        np.floor(guess, out=guess)
        guess += 1.0  # after the floor: floor(v + 1) can round differently for tiny negative v
    else:
        np.ceil(guess, out=guess)
    # NaN -> 0 for ">" (never above a threshold), -> T otherwise (never below one)
    first, second = (np.fmax, np.fmin) if compare == ">" else (np.fmin, np.fmax)
    first(guess, 0 if compare == ">" else t, out=guess)
    second(guess, t if compare == ">" else 0, out=guess)
    b = guess.astype(np.intp)
    if step == 1.0 and thresholds[0] == 0 and np.array_equal(thresholds, np.arange(t)):
        return b  # integer thresholds 0, 1, 2, ...: ceil/floor of v is already exact
    # neighbours t_{b-1} and t_b, NaN past the ends (a comparison with NaN is False)
    below = np.concatenate([[np.nan], thresholds])[b]
    above = np.concatenate([thresholds, [np.nan]])[b]
    if right:
        b -= below > values
        b += above <= values
    else:
        b -= below >= values
        b += above < values
    return b


def counts_from_bins(bins: np.ndarray, segment: np.ndarray, n_segments: int, n_thresholds: int, compare: Compare) -> np.ndarray:
    """C[s, j] = hits of segment s at threshold j from `threshold_bins`: one bincount over
    (segment, bin), then a cumulative sum along the thresholds.
    bins (F,), segment (F,) int in [0, n_segments) -> (n_segments, T) int64
    """
    t = n_thresholds
    key = segment * (t + 1)
    key += bins
    hist = np.bincount(key, minlength=n_segments * (t + 1)).reshape(n_segments, t + 1)
    return hits_from_histogram(hist, compare)


def hits_from_histogram(hist: np.ndarray, compare: Compare) -> np.ndarray:
    """C[s, j] from H[s, b] = #{frames of s in bin b}: ">" hits at j < b, so C[s, j] = #{b > j};
    "<=" and "<" hit at j >= b, so C[s, j] = #{b <= j}.  (S, T + 1) -> (S, T) int64"""
    if compare == ">":
        counts = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]
    else:
        counts = np.cumsum(hist, axis=1)[:, :-1]
    return counts.astype(np.int64)


def curve_counts(
    values: np.ndarray,
    segment: np.ndarray,
    n_segments: int,
    thresholds: np.ndarray,
    compare: Compare,
) -> np.ndarray:
    """Hits per segment (sequence) and threshold: C[s, j] = #{f in s : values[f] <compare> t_j}.

    Sort-free: b_f from `threshold_bins`, then `counts_from_bins`. NaN never hits.
    values (F,), segment (F,) int in [0, n_segments) -> (n_segments, T) int64
    """
    bins = threshold_bins(np.asarray(values, dtype=np.float64), thresholds, compare)
    return counts_from_bins(bins, segment, n_segments, len(thresholds), compare)


def sequence_curve(values: np.ndarray, thresholds: np.ndarray, compare: Compare) -> np.ndarray:
    """Hits of one sequence per threshold, the plain (non-vectorized) way.  (F,) -> (T,) int64"""
    v = np.asarray(values, dtype=np.float64)[:, None]
    if compare == ">":
        hit = v > thresholds[None, :]
    elif compare == "<=":
        hit = v <= thresholds[None, :]
    else:
        hit = v < thresholds[None, :]
    return hit.sum(axis=0).astype(np.int64)


def auc(success_curve: np.ndarray) -> float:
    """Success AUC = (1/T)·Σ_j S(t_j): the rectangle rule with bin width 1/T, i.e. the plain mean
    of the curve (not a trapezoid). On 21 thresholds with ``>`` a perfect tracker scores 20/21."""
    return float(np.mean(success_curve))


def precision_at(curve: np.ndarray, index: int = 20) -> float:
    """PRE = P(20 px) and NPR = NP(0.20): the curve value at index 20."""
    return float(curve[index])


# ---------------------------------------------------------------------------------------------
# compiled kernels (optional: numba)

_NUMBA: list = []  # [module or None] once the import was tried
_COMPILED: dict[Callable, Callable] = {}


def numba_enabled() -> bool:
    """True when numba can be imported and ``MVLM_NO_NUMBA`` is not ``1`` (then numpy runs)."""
    if os.environ.get("MVLM_NO_NUMBA", "") == "1":
        return False
    if not _NUMBA:
        try:
            import numba
        except ImportError:  # optional dependency: the numpy paths give the same numbers
            numba = None
        _NUMBA.append(numba)
    return _NUMBA[0] is not None


def compiled(kernel: Callable) -> Optional[Callable]:
    """`kernel` compiled by numba, or None when numba is off (the caller then runs numpy).

    Compiled lazily (importing numba costs ~0.3 s, which the callers that never score should not
    pay) and cached on disk (``cache=True``: later processes load machine code instead of
    compiling). No fastmath, so every float operation runs as written (no FMA contraction, no
    reassociation) and the doubles equal numpy's; error_model="numpy" makes x/0 give inf/NaN
    like numpy instead of raising.
    """
    if not numba_enabled():
        return None
    fn = _COMPILED.get(kernel)
    if fn is None:
        fn = _COMPILED[kernel] = _NUMBA[0].njit(cache=True, nogil=True, error_model="numpy")(kernel)
    return fn
