"""Per-frame errors and curves of single-object tracking (got10k ``utils/metrics.py`` style).

Boxes are ``(N, 4)`` float64 ``x, y, w, h`` in pixels, (x, y) the top-left corner. Every function
is a plain numpy formula over all rows at once, so it serves one sequence or the frames of many
sequences concatenated. The threshold arrays are facts of the reference evaluators and are
reproduced double for double (see `overlap_thresholds_torch`). docs/metrics.md explains the
formulas and the profiles that apply them.
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
    A zero union gives NaN (0/0), which never passes a threshold.
    """
    right = np.minimum(pred[:, :2] + pred[:, 2:] - 1.0, gt[:, :2] + gt[:, 2:] - 1.0)
    side = np.maximum(right - np.maximum(pred[:, :2], gt[:, :2]) + 1.0, 0.0)
    inter = side[:, 0] * side[:, 1]
    union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def iou_continuous(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of got10k ``rect_iou``: continuous intersection, ``inter / (union + eps)`` clipped to [0, 1].

    inter_x = max(0, min(x_p + w_p, x_g + w_g) − max(x_p, x_g)); eps = float64 machine epsilon.
    (N, 4), (N, 4) -> (N,)
    """
    right = np.minimum(pred[:, :2] + pred[:, 2:], gt[:, :2] + gt[:, 2:])
    side = np.maximum(right - np.maximum(pred[:, :2], gt[:, :2]), 0.0)
    inter = side[:, 0] * side[:, 1]
    union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(inter / (union + np.finfo(np.float64).eps), 0.0, 1.0)


def iou(pred: np.ndarray, gt: np.ndarray, form: Literal["inclusive", "continuous"] = "inclusive") -> np.ndarray:
    """`iou_inclusive` (pytracking, MATLAB) or `iou_continuous` (got10k, MGIT) by name."""
    return iou_inclusive(pred, gt) if form == "inclusive" else iou_continuous(pred, gt)


def box_centers(boxes: np.ndarray) -> np.ndarray:
    """c = (x + (w − 1)/2, y + (h − 1)/2), the convention of every toolkit.  (N, 4) -> (N, 2)"""
    return (boxes[:, 2:] - 1.0) * 0.5 + boxes[:, :2]


def center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """CLE = ‖c_pred − c_gt‖₂ = sqrt(dx² + dy²) in pixels.  (N, 4), (N, 4) -> (N,)"""
    d = box_centers(pred) - box_centers(gt)
    return np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])


def normalized_center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """NCLE = ‖c_pred/(w_g, h_g) − c_gt/(w_g, h_g)‖₂.  (N, 4), (N, 4) -> (N,)

    Each centre is divided by the GT size first, then subtracted (the reference order; computing
    (c_pred − c_gt)/(w_g, h_g) instead rounds differently and moves counts at 0.2). A zero GT
    size gives inf or NaN; the profiles replace those frames' values (invalid GT).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        d = box_centers(pred) / gt[:, 2:] - box_centers(gt) / gt[:, 2:]
    return np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])


def center_inside(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """MGIT's normalized precision per frame: x_g ≤ cx_pred ≤ x_g + w_g and y_g ≤ cy_pred ≤ y_g + h_g."""
    c = box_centers(pred)
    return (c[:, 0] >= gt[:, 0]) & (c[:, 0] <= gt[:, 0] + gt[:, 2]) & (c[:, 1] >= gt[:, 1]) & (c[:, 1] <= gt[:, 1] + gt[:, 3])


# ---------------------------------------------------------------------------------------------
# curves


def success_curve(ious: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """S(t_j) = #{frames with IoU > t_j} / N for one sequence (strictly greater).  (N,) -> (T,)"""
    return np.mean(ious[:, None] > thresholds[None, :], axis=0)


def precision_curve(errors: np.ndarray, thresholds: np.ndarray, compare: Compare = "<=") -> np.ndarray:
    """P(d_j) = #{frames with error <= d_j} / N for one sequence (MGIT: strict ``<``).  (N,) -> (T,)"""
    hit = errors[:, None] < thresholds[None, :] if compare == "<" else errors[:, None] <= thresholds[None, :]
    return np.mean(hit, axis=0)


def curve_counts(values: np.ndarray, segment: np.ndarray, n_segments: int, thresholds: np.ndarray,
                 compare: Compare) -> np.ndarray:
    """Hits per segment (sequence) and threshold: C[s, j] = #{f in s : values[f] <compare> t_j}.

    The numerators of `success_curve` (">") and `precision_curve` ("<=", "<") for many sequences
    at once, without a (frames x thresholds) matrix. With sorted thresholds each frame passes a
    prefix or a suffix of them, decided by k_f = #{j : t_j < v_f} (``searchsorted`` left; for "<"
    k_f = #{j : t_j <= v_f}, side right):
      ">":       v_f > t_j  iff j < k_f,   so C[s, j] = #{f in s : k_f > j};
      "<=", "<": v_f <(=) t_j iff j >= k_f, so C[s, j] = #{f in s : k_f <= j}.
    A histogram H[s, k] (one ``bincount``) and a cumulative sum over k give C. NaN never hits.
    values (F,), segment (F,) int in [0, n_segments) -> (n_segments, T) int64
    """
    values = np.asarray(values, dtype=np.float64)
    t = len(thresholds)
    if compare == ">":
        values = np.where(np.isnan(values), -np.inf, values)  # NaN is above no threshold
    k = np.searchsorted(thresholds, values, side="right" if compare == "<" else "left")  # NaN sorts last: no hit
    hist = np.bincount(segment * (t + 1) + k, minlength=n_segments * (t + 1)).reshape(n_segments, t + 1)
    if compare == ">":
        return np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:].astype(np.int64)
    return np.cumsum(hist, axis=1)[:, :-1].astype(np.int64)


def auc(success_curve: np.ndarray) -> float:
    """Success AUC = (1/T)·Σ_j S(t_j): the rectangle rule with bin width 1/T, i.e. the plain mean
    of the curve (not a trapezoid). On 21 thresholds with ``>`` a perfect tracker scores 20/21."""
    return float(np.mean(success_curve))


def precision_at(curve: np.ndarray, index: int = 20) -> float:
    """PRE = P(20 px) and NPR = NP(0.20): the curve value at index 20."""
    return float(curve[index])
