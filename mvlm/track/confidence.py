"""MVLM confidence: pure tensor functions of digest §2 (no state, no I/O).

Notation for one frame (B frames batched), grid side F, N = F·F candidates, i = gy·F + gx:

    σ_i        raw centre score (head sigmoid)            l_i = h_i·σ_i   (h = Hann window)
    b_i        candidate box ((gx+ox)/F, (gy+oy)/F, w, h)  normalized cx,cy,w,h of the view
    s_i        cos(pool(feat_x, b_i), τ̄)                  τ̄ = normalize(mean_k text_emb_k)
    B_out(i)   {j ≠ i : IoU(b_i, b_j) ≤ ψ_out}
    s̃_i, l̃_i   max over B_out(i); min over all N when B_out(i) = ∅
    δcorr_i    tanh(s_i − s̃_i)          δcls_i = tanh(l_i − l̃_i)
    κvlm_i     α·δcorr_i + (1−α)·δcls_i
    κmem_t     κvlm_t at the first step, else (1−λ)·κvlm_t + λ·κmem_{t−1}
    κmvlm_t    (1−ω)·κvlm_t + ω·κmem_t
    S_t        {i : κmvlm_i ≥ τ};  î = argmax_{i∈S_t} l_i  (argmax over all N if S_t = ∅)

Every expression keeps the float32 operation order of the released tracker, so `reference`
mode matches the parity fixture bit for bit; Python-float parameters (α, 1−α, λ, ω) are applied
as scalars exactly as there.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------------------------
# candidates and classification score


def hann_window(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """2-D Hann window (n, n), float32: outer product of w_k = 0.5·(1 − cos(2π/(n+1)·k)), k=1..n.

    The 1-D factor is evaluated in float32 torch with the angle step 2π/(n+1) as a Python
    double, which is what makes it bitwise equal to the reference (a float64 window cast to
    float32 differs in the last bit, enough to flip a near-tie argmax).
    """
    k = torch.arange(1, n + 1, device=device).float()
    w = 0.5 * (1 - torch.cos(2 * math.pi / (n + 1) * k))
    return w[:, None] * w[None, :]


@functools.lru_cache(maxsize=16)
def _cell_coords(f: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid x and y (float32, (F·F,)) of every cell i = gy·F + gx; cached per grid and device
    so the per-frame path allocates nothing for them."""
    idx = torch.arange(f * f, device=device)
    return (idx % f).float(), torch.div(idx, f, rounding_mode="floor").float()


@functools.lru_cache(maxsize=16)
def _not_self(n: int, device: torch.device) -> torch.Tensor:
    return ~torch.eye(n, dtype=torch.bool, device=device)


def candidate_boxes(size_map: torch.Tensor, offset_map: torch.Tensor) -> torch.Tensor:
    """All F·F candidate boxes, normalized cx,cy,w,h of the search view.

    b_i = ((gx + ox_i)/F, (gy + oy_i)/F, w_i, h_i) for cell i = gy·F + gx.
    size_map (B,2,F,F) ch0 w ch1 h; offset_map (B,2,F,F) ch0 x ch1 y -> (B, F·F, 4).
    """
    b, _, f, _ = size_map.shape
    gx, gy = _cell_coords(f, size_map.device)
    off = offset_map.reshape(b, 2, f * f)
    size = size_map.reshape(b, 2, f * f)
    cx = (gx + off[:, 0]) / f
    cy = (gy + off[:, 1]) / f
    return torch.stack([cx, cy, size[:, 0], size[:, 1]], dim=-1)


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
    scale = grid - 1
    cx, cy, w, h = boxes.unbind(-1)
    x1 = torch.round((cx - w / 2) * scale).long().clamp(min=0)
    y1 = torch.round((cy - h / 2) * scale).long().clamp(min=0)
    x2 = torch.round((cx + w / 2) * scale).long()
    y2 = torch.round((cy + h / 2) * scale).long()
    x2 = torch.maximum(x2, x1 + 1)
    y2 = torch.maximum(y2, y1 + 1)
    return x1.clamp(max=scale), y1.clamp(max=scale), x2.clamp(max=grid), y2.clamp(max=grid)


def pool_reference(feat: torch.Tensor, boxes: torch.Tensor, grid: int) -> torch.Tensor:
    """Region means as the released tracker computes them (quirks kept), (B,N,D).

    Integral image Σ (zero row/column in front) of the F×F feature grid, then
        pooled_i = (Σ[y2,x2] − Σ[y1+1,x2] − Σ[y2,x1+1] + Σ[y1+1,x1+1]) / ((x2−x1)(y2−y1))
    which sums rows y1+1..y2−1 and columns x1+1..x2−1 only (the first row/column of the
    rectangle is dropped). A rectangle one token wide is empty, yet the float32 difference can
    leave a rounding residue — part of what the parity fixture checks.
    feat (B, F·F, D), boxes (B, N, 4) normalized cx,cy,w,h.
    """
    b, _, d = feat.shape
    x1, y1, x2, y2 = reference_token_rects(boxes, grid)
    integral = feat.reshape(b, grid, grid, d).cumsum(dim=1).cumsum(dim=2)
    integral = F.pad(integral, (0, 0, 1, 0, 1, 0)).reshape(b, (grid + 1) ** 2, d)  # (B,(F+1)²,D)

    def at(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        flat = (y * (grid + 1) + x).unsqueeze(-1).expand(-1, -1, d)
        return torch.gather(integral, 1, flat)

    total = at(y2, x2) - at(y1 + 1, x2) - at(y2, x1 + 1) + at(y1 + 1, x1 + 1)
    area = ((x2 - x1) * (y2 - y1)).unsqueeze(-1)
    return total / area


def pool_exact(feat: torch.Tensor, boxes: torch.Tensor, grid: int) -> torch.Tensor:
    """Area-weighted region means, (B,N,D): each token cell weighs by its overlap with the box.

    With the box in token units [x1,x2]×[y1,y2] = (cx ∓ w/2)·F, (cy ∓ h/2)·F clipped to [0,F]:
        a_{yx} = |[x1,x2] ∩ [x,x+1]| · |[y1,y2] ∩ [y,y+1]|,  pooled = Σ a_{yx} f_{yx} / Σ a_{yx}.
    A box inside one cell pools that cell's feature; a box with no area inside the grid
    pools the zero vector (s = 0), by definition.
    """
    b, _, d = feat.shape
    cx, cy, w, h = boxes.unbind(-1)  # (B,N)
    cells = torch.arange(grid, device=feat.device, dtype=feat.dtype)  # (F,)

    def overlap(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:  # (B,N) -> (B,N,F)
        lo = (lo * grid).clamp(0, grid).unsqueeze(-1)
        hi = (hi * grid).clamp(0, grid).unsqueeze(-1)
        return (torch.minimum(hi, cells + 1) - torch.maximum(lo, cells)).clamp(min=0)

    ox = overlap(cx - w / 2, cx + w / 2)
    oy = overlap(cy - h / 2, cy + h / 2)
    weights = oy.unsqueeze(-1) * ox.unsqueeze(-2)  # (B,N,F,F)
    grid_feat = feat.reshape(b, grid * grid, d)
    total = torch.bmm(weights.reshape(b, -1, grid * grid), grid_feat)  # (B,N,D)
    area = weights.sum(dim=(-1, -2)).unsqueeze(-1)
    return torch.where(area > 0, total / area.clamp(min=torch.finfo(feat.dtype).tiny), torch.zeros_like(total))


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
    cx, cy, w, h = boxes.unbind(-1)
    x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    area = (x2 - x1) * (y2 - y1)
    iw = (torch.minimum(x2[..., :, None], x2[..., None, :]) - torch.maximum(x1[..., :, None], x1[..., None, :])).clamp(min=0)
    ih = (torch.minimum(y2[..., :, None], y2[..., None, :]) - torch.maximum(y1[..., :, None], y1[..., None, :])).clamp(min=0)
    inter = iw * ih
    union = area[..., :, None] + area[..., None, :] - inter
    return inter / (union + 1e-12)


def distractor_mask(boxes: torch.Tensor, psi_out: float) -> torch.Tensor:
    """B_out as a bool matrix (B,N,N): [i, j] = j ≠ i and IoU(b_i, b_j) ≤ ψ_out."""
    return (pairwise_iou(boxes) <= psi_out) & _not_self(boxes.shape[-2], boxes.device)


def distractor_max(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """ṽ_i = max_{j∈B_out(i)} v_j, or min_j v_j over all N (i included) when B_out(i) = ∅.

    values (B,N), mask (B,N,N) -> (B,N).
    """
    expanded = values.unsqueeze(1).expand_as(mask)
    best = expanded.masked_fill(~mask, float("-inf")).amax(dim=-1)
    fallback = values.amin(dim=-1, keepdim=True).expand_as(best)
    return torch.where(mask.any(dim=-1), best, fallback)


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
    any_s = in_s.any(dim=-1, keepdim=True)
    masked = torch.where(in_s | ~any_s, l, torch.full_like(l, float("-inf")))
    return masked.argmax(dim=-1), in_s


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
    """Steps A–C of digest §2 for head outputs -> boxes, l, s, s̃, l̃, δcorr, δcls, κvlm."""
    score_map = outputs["score_map"]
    grid = score_map.shape[-1]
    boxes = candidate_boxes(outputs["size_map"], outputs["offset_map"])
    l = classification_scores(score_map, window)
    pool = pool_exact if params.exact_pooling else pool_reference
    s = vl_similarity(pool(outputs["feat_x"], boxes, grid), text_vec)
    mask = distractor_mask(boxes, params.psi_out)
    s_tilde, l_tilde = distractor_max(s, mask), distractor_max(l, mask)
    d_corr, d_cls = margin(s, s_tilde), margin(l, l_tilde)
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
    """Steps A–F of digest §2 for one frame. `memory_prev` must already be expressed on this
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
