"""Per-frame errors and curves of single-object tracking, vectorized (got10k style).

Boxes are ``(N, 4)`` float64 ``x, y, w, h`` in pixels, (x, y) the top-left corner. Every function
works on all frames of all sequences at once; per-sequence counts come from one ``bincount``.

The threshold arrays are facts of the reference evaluators and are reproduced double for double
(see `overlap_thresholds_torch`).
"""

from __future__ import annotations

from typing import Literal

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
    tl = np.maximum(pred[:, :2], gt[:, :2])
    br = np.minimum(pred[:, :2] + pred[:, 2:] - 1.0, gt[:, :2] + gt[:, 2:] - 1.0)
    side = np.clip(br - tl + 1.0, 0.0, None)
    inter = side[:, 0] * side[:, 1]
    union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


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
    return boxes[:, :2] + 0.5 * (boxes[:, 2:] - 1.0)


def center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """CLE = ‖c_pred − c_gt‖₂ in pixels.  (N, 4), (N, 4) -> (N,)"""
    d = box_centers(pred) - box_centers(gt)
    return np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2)


def normalized_center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """NCLE = ‖c_pred/(w_g, h_g) − c_gt/(w_g, h_g)‖₂.

    Each centre is divided by the GT size first, then subtracted (the reference order; computing
    (c_pred − c_gt)/(w_g, h_g) instead rounds differently and moves counts at 0.2).  -> (N,)
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        d = box_centers(pred) / gt[:, 2:] - box_centers(gt) / gt[:, 2:]
        return np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2)


def center_inside(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """MGIT's normalized precision per frame: x_g ≤ cx_pred ≤ x_g + w_g and y_g ≤ cy_pred ≤ y_g + h_g."""
    c = box_centers(pred)
    return (c[:, 0] >= gt[:, 0]) & (c[:, 0] <= gt[:, 0] + gt[:, 2]) & (c[:, 1] >= gt[:, 1]) & (c[:, 1] <= gt[:, 1] + gt[:, 3])


# ---------------------------------------------------------------------------------------------
# curves


def curve_counts(
    values: np.ndarray,
    segment: np.ndarray,
    n_segments: int,
    thresholds: np.ndarray,
    compare: Compare,
) -> np.ndarray:
    """Hits per segment (sequence) and threshold: C[s, j] = #{f in s : values[f] <compare> t_j}.

    Uses one sort-free pass: b_f = number of thresholds below (or at) the value, found by
    ``searchsorted``; then a ``bincount`` over (segment, b_f) and a cumulative sum along the
    thresholds. NaN never hits.
    values (F,), segment (F,) int in [0, n_segments) -> (n_segments, T) int64
    """
    t = len(thresholds)
    values = np.asarray(values, dtype=np.float64)
    side = "right" if compare == "<" else "left"
    b = np.searchsorted(thresholds, values, side=side)  # NaN sorts last: b = T
    nan = np.isnan(values)
    if compare == ">":
        b = np.where(nan, 0, b)  # v > t_j  <=>  j < b
    else:
        b = np.where(nan, t, b)  # v <= t_j (or <)  <=>  j >= b
    flat = np.bincount(segment * (t + 1) + b, minlength=n_segments * (t + 1))
    hist = flat.reshape(n_segments, t + 1)
    if compare == ">":
        counts = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]  # #{b > j}
    else:
        counts = np.cumsum(hist, axis=1)[:, :t]  # #{b <= j}
    return counts.astype(np.int64)


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
