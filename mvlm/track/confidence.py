"""MVLM confidence: pure tensor functions (docs/tracker.md, "Confidence"; no state, no I/O).

Notation for one frame (B frames batched), grid side F, N = F·F candidates, i = gy·F + gx:

    σ_i        raw centre score (head sigmoid)            l_i = h_i·σ_i   (h = Hann window)
    b_i        candidate box ((gx+ox)/F, (gy+oy)/F, w, h)  normalized cx,cy,w,h of the view
               (`mvlm.model.head.decode_boxes`, the decoder the head and the losses use too)
    s_i        cos(pool(feat_x, b_i), τ̄)                  τ̄ = normalize(mean_k text_emb_k)
    B_out(i)   {j ≠ i : IoU(b_i, b_j) ≤ ψ_out}
    s̃_i, l̃_i   max over B_out(i); min over all N when B_out(i) = ∅
    δcorr_i    tanh(s_i − s̃_i)          δcls_i = tanh(l_i − l̃_i)
    κvlm_i     α·δcorr_i + (1−α)·δcls_i
    κmem_t     κvlm_t at the first step, else (1−λ)·κvlm_t + λ·κmem_{t−1}
    κmvlm_t    (1−ω)·κvlm_t + ω·κmem_t
    S_t        {i : κmvlm_i ≥ τ};  î = argmax_{i∈S_t} l_i  (argmax over all N if S_t = ∅)

Every expression keeps the float32 operation order of the released tracker, so `reference`
mode matches the parity fixture (bit for bit on the CPU it was recorded on, to the tolerances of
docs/tracker.md elsewhere); Python-float parameters (α, 1−α, λ, ω) are applied as scalars
exactly as there.

Speed: with N = 64 candidates each tensor op costs microseconds of dispatch and next to nothing
of arithmetic, so the per-frame path counts ops, not FLOPs. It works on candidates laid out as
rows over N ((B,4,N), as `decode_boxes` returns them: broadcasting over a trailing N is several
times faster than over a trailing 4), computes the box corners once for the IoU and the exact pooling, runs s and l
through the distractor max and the margin stacked as one (B,2,N) tensor, and caches the grids
per size and device. None of this changes any element's arithmetic, so results stay bitwise
equal to the one-function-at-a-time form the public helpers below still offer.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from mvlm.model.head import decode_boxes

# --------------------------------------------------------------------------------------------
# candidates and classification score


def hann_window(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """2-D Hann window (n, n), float32: outer product of w_k = 0.5·(1 − cos(2π/(n+1)·k)), k=1..n.

    The 1-D factor is evaluated in float32 torch with the angle step 2π/(n+1) as a Python
    double, as the reference does (a float64 window cast to float32 differs in the last bit, enough
    to flip a near-tie argmax; torch's float32 cos itself can differ by a bit between CPUs).
    """
    k = torch.arange(1, n + 1, device=device).float()
    w = 0.5 * (1 - torch.cos(2 * math.pi / (n + 1) * k))
    return w[:, None] * w[None, :]


@functools.lru_cache(maxsize=16)
def _cell_edges(f: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Left and right edges (F,) of the F token cells in token units: k and k + 1."""
    cells = torch.arange(f, device=device, dtype=dtype)
    return cells, cells + 1


@functools.lru_cache(maxsize=16)
def _self_pairs(n: int, device: torch.device) -> torch.Tensor:
    return torch.eye(n, dtype=torch.bool, device=device)


def _planar_corners(planar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,4,N) cx,cy,w,h rows -> lo (B,2,N) = (x1, y1) = centre − size/2, hi = centre + size/2."""
    centre, half = planar[:, :2], planar[:, 2:] / 2
    return centre - half, centre + half


def candidate_boxes(size_map: torch.Tensor, offset_map: torch.Tensor) -> torch.Tensor:
    """All F·F candidate boxes, normalized cx,cy,w,h of the search view.

    b_i = ((gx + ox_i)/F, (gy + oy_i)/F, w_i, h_i) for cell i = gy·F + gx (`decode_boxes`).
    size_map (B,2,F,F) ch0 w ch1 h; offset_map (B,2,F,F) ch0 x ch1 y -> (B, F·F, 4).
    """
    return decode_boxes(size_map, offset_map).transpose(1, 2).contiguous()


def classification_scores(score_map: torch.Tensor, window: Optional[torch.Tensor]) -> torch.Tensor:
    """l_i = h_i·σ_i (or σ_i without a window): score_map (B,1,F,F) -> (B, F·F)."""
    scores = score_map if window is None else window * score_map
    return scores.reshape(score_map.shape[0], -1)


# --------------------------------------------------------------------------------------------
# VL similarity


def text_vector(text_emb: torch.Tensor) -> torch.Tensor:
    """τ̄ = normalize(mean over the L positions of text_emb): (B,L,D) -> (B,D)."""
    return F.normalize(text_emb.mean(dim=1), dim=-1)


def reference_token_rects(boxes: torch.Tensor, grid: int) -> tuple[torch.Tensor, ...]:
    """Token rectangles of the released pooling (scale F−1, round half to even), clamped.

    x1 = round((cx − w/2)·(F−1)), x2 = round((cx + w/2)·(F−1)), same for y; then x1,y1 ≥ 0;
    x2 ≥ x1+1, y2 ≥ y1+1; x1,y1 ≤ F−1; x2,y2 ≤ F.  boxes (B,N,4) -> four int64 (B,N).
    """
    return _reference_rects(boxes.transpose(-1, -2), grid)


def _reference_rects(planar: torch.Tensor, grid: int) -> tuple[torch.Tensor, ...]:
    lo, hi = _planar_corners(planar)
    scale = grid - 1
    lo = torch.round(lo * scale).long().clamp(min=0)  # (B,2,N): x1, y1
    hi = torch.maximum(torch.round(hi * scale).long(), lo + 1)  # x2, y2
    lo, hi = lo.clamp(max=scale), hi.clamp(max=grid)
    return lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1]


def pool_reference(feat: torch.Tensor, boxes: torch.Tensor, grid: int) -> torch.Tensor:
    """Region means as the released tracker computes them (quirks kept), (B,N,D).

    Integral image Σ (zero row/column in front) of the F×F feature grid, then
        pooled_i = (Σ[y2,x2] − Σ[y1+1,x2] − Σ[y2,x1+1] + Σ[y1+1,x1+1]) / ((x2−x1)(y2−y1))
    which sums rows y1+1..y2−1 and columns x1+1..x2−1 only (the first row/column of the
    rectangle is dropped). A rectangle one token wide is empty, yet the float32 difference can
    leave a rounding residue — part of what the parity fixture checks.
    feat (B, F·F, D), boxes (B, N, 4) normalized cx,cy,w,h.
    """
    return _pool_reference(feat, boxes.transpose(-1, -2), grid)


def _pool_reference(feat: torch.Tensor, planar: torch.Tensor, grid: int) -> torch.Tensor:
    b, n, d = planar.shape[0], planar.shape[-1], feat.shape[-1]
    x1, y1, x2, y2 = _reference_rects(planar, grid)
    integral = feat.reshape(b, grid, grid, d).cumsum(dim=1).cumsum(dim=2)
    cells = (grid + 1) ** 2
    integral = F.pad(integral, (0, 0, 1, 0, 1, 0)).reshape(b * cells, d)  # (B·(F+1)², D)
    # the four corners Σ[y2,x2], Σ[y1+1,x2], Σ[y2,x1+1], Σ[y1+1,x1+1] of every box in one
    # row lookup (index_select: a gather with an expanded index is ~10x slower here)
    rows = torch.stack([y2, y1 + 1, y2, y1 + 1], dim=1) * (grid + 1)  # (B,4,N)
    cols = torch.stack([x2, x2, x1 + 1, x1 + 1], dim=1)
    flat = rows + cols
    if b > 1:
        flat = flat + torch.arange(b, device=flat.device).reshape(b, 1, 1) * cells
    corner = integral.index_select(0, flat.reshape(-1)).reshape(b, 4, n, d)
    total = corner[:, 0] - corner[:, 1] - corner[:, 2] + corner[:, 3]
    area = ((x2 - x1) * (y2 - y1)).unsqueeze(-1)
    return total / area


def pool_exact(feat: torch.Tensor, boxes: torch.Tensor, grid: int) -> torch.Tensor:
    """Area-weighted region means, (B,N,D): each token cell weighs by its overlap with the box.

    With the box in token units [x1,x2]×[y1,y2] = (cx ∓ w/2)·F, (cy ∓ h/2)·F clipped to [0,F]:
        a_{yx} = |[x1,x2] ∩ [x,x+1]| · |[y1,y2] ∩ [y,y+1]|,  pooled = Σ a_{yx} f_{yx} / Σ a_{yx}.
    A box inside one cell pools that cell's feature; a box with no area inside the grid
    pools the zero vector (s = 0), by definition.
    """
    return _pool_exact(feat, *_planar_corners(boxes.transpose(-1, -2)), grid)


def _pool_exact(feat: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, grid: int) -> torch.Tensor:
    b, n, d = lo.shape[0], lo.shape[-1], feat.shape[-1]
    left, right = _cell_edges(grid, feat.device, feat.dtype)
    lo = (lo * grid).clamp(0, grid).unsqueeze(-1)  # (B,2,N,1) in token units
    hi = (hi * grid).clamp(0, grid).unsqueeze(-1)
    overlap = (torch.minimum(hi, right) - torch.maximum(lo, left)).clamp(min=0)  # (B,2,N,F): x, y
    weights = overlap[:, 1].unsqueeze(-1) * overlap[:, 0].unsqueeze(-2)  # (B,N,F,F) = oy ⊗ ox
    total = torch.bmm(weights.reshape(b, n, grid * grid), feat.reshape(b, grid * grid, d))  # (B,N,D)
    area = weights.sum(dim=(-1, -2)).unsqueeze(-1)
    return torch.where(area > 0, total / area.clamp(min=torch.finfo(feat.dtype).tiny), 0.0)


def vl_similarity(pooled: torch.Tensor, text_vec: torch.Tensor) -> torch.Tensor:
    """s_i = ⟨normalize(pooled_i), τ̄⟩ (F.normalize eps 1e-12; zero vector gives 0): -> (B,N)."""
    return (F.normalize(pooled, dim=-1) * text_vec.unsqueeze(1)).sum(dim=-1)


# --------------------------------------------------------------------------------------------
# distractors and margins


def pairwise_iou(boxes: torch.Tensor) -> torch.Tensor:
    """IoU of every pair of normalized cx,cy,w,h boxes, (B,N,4) -> (B,N,N).

    IoU = |A∩B| / (|A| + |B| − |A∩B| + 1e-12); the 1e-12 keeps two degenerate boxes at IoU 0
    (torchvision's box_iou would give 0/0 = NaN there, which changes which boxes count as
    distractors, so the parity fixture decides for this form).
    """
    return _pairwise_iou(*_planar_corners(boxes.transpose(-1, -2)))


def _pairwise_iou(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    side = hi - lo  # (B,2,N)
    area = side[:, 0] * side[:, 1]
    inter_side = (torch.minimum(hi.unsqueeze(-1), hi.unsqueeze(-2))
                  - torch.maximum(lo.unsqueeze(-1), lo.unsqueeze(-2))).clamp(min=0)  # (B,2,N,N)
    inter = inter_side[:, 0] * inter_side[:, 1]
    union = area.unsqueeze(-1) + area.unsqueeze(-2) - inter
    return inter / (union + 1e-12)


def distractor_mask(boxes: torch.Tensor, psi_out: float) -> torch.Tensor:
    """B_out as a bool matrix (B,N,N): [i, j] = j ≠ i and IoU(b_i, b_j) ≤ ψ_out."""
    return ~_not_distractors(*_planar_corners(boxes.transpose(-1, -2)), psi_out)


def _not_distractors(lo: torch.Tensor, hi: torch.Tensor, psi_out: float) -> torch.Tensor:
    """Complement of B_out, (B,N,N): j = i, or IoU(b_i, b_j) > ψ_out (NaN IoU counts here too,
    as `IoU ≤ ψ_out` is false for it)."""
    return ~(_pairwise_iou(lo, hi) <= psi_out) | _self_pairs(lo.shape[-1], lo.device)


def distractor_max(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """ṽ_i = max_{j∈B_out(i)} v_j, or min_j v_j over all N (i included) when B_out(i) = ∅.

    values (B,N), mask (B,N,N) -> (B,N).
    """
    return _rivals(values.unsqueeze(1), ~mask).squeeze(1)


def _rivals(values: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
    """distractor_max for K value rows sharing one B_out: values (B,K,N), blocked = ¬B_out
    (B,N,N) -> (B,K,N)."""
    blocked = blocked.unsqueeze(1)  # (B,1,N,N)
    best = values.unsqueeze(-2).masked_fill(blocked, float("-inf")).amax(dim=-1)  # (B,K,N)
    empty = blocked.all(dim=-1)  # (B,1,N): B_out(i) = ∅
    return torch.where(empty, values.amin(dim=-1, keepdim=True), best)


def margin(values: torch.Tensor, rival: torch.Tensor) -> torch.Tensor:
    """δ_i = tanh(v_i − ṽ_i)."""
    return torch.tanh(values - rival)


def kappa_vlm(delta_corr: torch.Tensor, delta_cls: torch.Tensor, alpha: float) -> torch.Tensor:
    """κvlm = α·δcorr + (1−α)·δcls  (α = 1: VL margin only; α = 0: classification margin only)."""
    return alpha * delta_corr + (1 - alpha) * delta_cls


def update_memory(kappa: torch.Tensor, memory: Optional[torch.Tensor], lam: float) -> torch.Tensor:
    """EWMA memory: κmem_t = κvlm_t without a previous memory, else (1−λ)·κvlm_t + λ·κmem_{t−1}.

    NaN cells of `memory` mean "no memory for this cell" (a re-aligned memory whose cell came
    from outside the previous view): they start again from κvlm_t.
    """
    if memory is None:
        return kappa
    mixed = (1 - lam) * kappa + lam * memory
    return torch.where(torch.isnan(memory), kappa, mixed)


def kappa_mvlm(kappa: torch.Tensor, memory: torch.Tensor, omega: float) -> torch.Tensor:
    """κmvlm = (1−ω)·κvlm + ω·κmem."""
    return (1 - omega) * kappa + omega * memory


def select(l: torch.Tensor, fused: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gate and selection: S = {i : κmvlm_i ≥ τ}; î = argmax_{i∈S} l_i, or over all N if S = ∅.

    Ties go to the first index. Returns (top1 (B,) int64, in_S (B,N) bool).
    """
    in_s = fused >= tau
    allowed = in_s | ~in_s.any(dim=-1, keepdim=True)
    return l.masked_fill(~allowed, float("-inf")).argmax(dim=-1), in_s


# --------------------------------------------------------------------------------------------
# one frame


@dataclass
class Confidence:
    """Every intermediate of one frame; tensors (B,N) unless noted."""

    boxes: torch.Tensor  # (B,N,4) normalized cx,cy,w,h
    l: torch.Tensor
    s: torch.Tensor
    s_tilde: torch.Tensor
    l_tilde: torch.Tensor
    delta_corr: torch.Tensor
    delta_cls: torch.Tensor
    kappa_vlm: torch.Tensor
    kappa_mem_prev: Optional[torch.Tensor]
    kappa_mem: torch.Tensor
    kappa_mvlm: torch.Tensor
    in_s: torch.Tensor  # bool
    top1: torch.Tensor  # (B,) int64

    @property
    def n_selected(self) -> torch.Tensor:
        return self.in_s.sum(dim=-1)


@dataclass(frozen=True)
class ConfidenceParams:
    alpha: float
    tau: float
    omega: float
    lam: float
    psi_out: float
    memory: bool = True
    exact_pooling: bool = False


def instantaneous(
    outputs: dict, text_vec: torch.Tensor, window: Optional[torch.Tensor], params: ConfidenceParams
) -> dict[str, torch.Tensor]:
    """Steps A–C (candidates to κvlm) for head outputs -> boxes, l, s, s̃, l̃, δcorr, δcls, κvlm."""
    score_map = outputs["score_map"]
    grid = score_map.shape[-1]
    planar = decode_boxes(outputs["size_map"], outputs["offset_map"])  # (B,4,N)
    lo, hi = _planar_corners(planar)  # shared by the exact pooling and the IoU
    l = classification_scores(score_map, window)
    if params.exact_pooling:
        pooled = _pool_exact(outputs["feat_x"], lo, hi, grid)
    else:
        pooled = _pool_reference(outputs["feat_x"], planar, grid)
    s = vl_similarity(pooled, text_vec)
    values = torch.stack([s, l], dim=1)  # (B,2,N): s and l share B_out
    rivals = _rivals(values, _not_distractors(lo, hi, params.psi_out))
    deltas = margin(values, rivals)
    boxes = planar.transpose(1, 2).contiguous()  # (B,N,4)
    s_tilde, l_tilde = rivals.unbind(1)
    d_corr, d_cls = deltas.unbind(1)
    return {
        "boxes": boxes, "l": l, "s": s, "s_tilde": s_tilde, "l_tilde": l_tilde,
        "delta_corr": d_corr, "delta_cls": d_cls, "kappa_vlm": kappa_vlm(d_corr, d_cls, params.alpha),
    }


def frame_confidence(
    outputs: dict,
    text_vec: torch.Tensor,
    window: Optional[torch.Tensor],
    memory_prev: Optional[torch.Tensor],
    params: ConfidenceParams,
) -> Confidence:
    """Steps A–F (candidates to S_t and î) for one frame. `memory_prev` must already be expressed on this
    frame's grid (the tracker re-aligns it in corrected mode). With params.memory False,
    κmvlm = κvlm."""
    parts = instantaneous(outputs, text_vec, window, params)
    k = parts["kappa_vlm"]
    if params.memory:
        memory = update_memory(k, memory_prev, params.lam)
        fused = kappa_mvlm(k, memory, params.omega)
    else:  # ablation: no temporal term at all, κmvlm = κvlm
        memory, fused = k, k
    top1, in_s = select(parts["l"], fused, params.tau)
    return Confidence(
        **parts, kappa_mem_prev=memory_prev, kappa_mem=memory, kappa_mvlm=fused, in_s=in_s, top1=top1
    )


def confidence_row(c: Confidence, row: int) -> Confidence:
    """Batch row `row` of a Confidence, keeping a batch dimension of 1 (one window of a tiled pass)."""
    return Confidence(**{
        f.name: (None if getattr(c, f.name) is None else getattr(c, f.name)[row:row + 1])
        for f in dataclasses.fields(c)
    })
