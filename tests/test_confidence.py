"""The confidence functions of docs/paper-notes.md §2 on small hand-made inputs with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from mvlm.track import confidence as conf


def test_hann_window_values_and_any_grid():
    w = conf.hann_window(8)
    assert w.shape == (8, 8) and w.dtype == torch.float32
    one_d = torch.tensor([0.5 * (1 - math.cos(2 * math.pi * k / 9)) for k in range(1, 9)])
    torch.testing.assert_close(w, one_d[:, None] * one_d[None, :], atol=1e-6, rtol=0)
    assert conf.hann_window(14)[0, 6].item() == pytest.approx(0.04322729 * 0.9890738, abs=1e-7)


def test_candidate_boxes_row_major():
    size = torch.zeros(1, 2, 8, 8)
    size[0, 0, 2, 5], size[0, 1, 2, 5] = 0.25, 0.5  # cell gy=2, gx=5 -> i = 21
    off = torch.full((1, 2, 8, 8), 0.5)
    boxes = conf.candidate_boxes(size, off)
    assert boxes.shape == (1, 64, 4)
    torch.testing.assert_close(boxes[0, 21], torch.tensor([5.5 / 8, 2.5 / 8, 0.25, 0.5]))


def test_text_vector_is_normalized_mean():
    emb = torch.tensor([[[3.0, 0.0], [1.0, 0.0], [0.0, 4.0]]])
    torch.testing.assert_close(conf.text_vector(emb), torch.tensor([[0.7071068, 0.7071068]]))


def _ones_grid(f=14, d=3):
    return torch.ones(1, f * f, d)


def test_reference_pooling_drops_first_row_and_column():
    """All-ones map: full box 0.852 (= 12·12/(13·13)), width-0.2 box 0.444, width-0.1 box 0."""
    feat = _ones_grid()
    boxes = torch.tensor([[[0.5, 0.5, 1.0, 1.0], [0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.1, 0.1]]])
    pooled = conf.pool_reference(feat, boxes, 14)[0, :, 0]
    torch.testing.assert_close(pooled, torch.tensor([144 / 169, 4 / 9, 0.0]))


def test_exact_pooling_is_area_weighted_and_keeps_small_boxes():
    f = 4
    feat = torch.arange(f * f, dtype=torch.float32).reshape(1, f * f, 1)  # cell value = gy*4+gx
    boxes = torch.tensor([[
        [0.5, 0.5, 1.0, 1.0],       # whole grid: mean 7.5
        [0.125, 0.125, 0.05, 0.05],  # inside cell (0,0) only
        [0.5, 0.125, 0.25, 0.25],    # half of cell 1, half of cell 2 -> 1.5
        [2.0, 2.0, 0.1, 0.1],        # outside the grid -> defined 0
    ]])
    pooled = conf.pool_exact(feat, boxes, f)[0, :, 0]
    torch.testing.assert_close(pooled, torch.tensor([7.5, 0.0, 1.5, 0.0]))
    # a tiny box on a non-zero cell gets that cell's feature (not the zero vector)
    tiny = torch.tensor([[[0.6, 0.6, 0.01, 0.01]]])
    assert conf.pool_exact(feat, tiny, f)[0, 0, 0].item() == 10.0
    assert conf.pool_reference(feat, tiny, f)[0, 0, 0].item() == 0.0


def test_pairwise_iou_matches_torchvision_on_proper_boxes():
    from torchvision.ops import box_convert, box_iou

    boxes = torch.tensor([[[0.3, 0.3, 0.2, 0.2], [0.35, 0.3, 0.2, 0.2], [0.8, 0.8, 0.1, 0.3]]])
    ours = conf.pairwise_iou(boxes)[0]
    ref = box_iou(box_convert(boxes[0], "cxcywh", "xyxy"), box_convert(boxes[0], "cxcywh", "xyxy"))
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)
    degenerate = torch.zeros(1, 2, 4)
    assert conf.pairwise_iou(degenerate).eq(0).all()  # 0/(0+1e-12), not NaN


def test_distractor_max_and_empty_fallback():
    # boxes 0 and 1 overlap; 2 is apart: B_out(0) = {2}, B_out(1) = {2}, B_out(2) = {0, 1}
    boxes = torch.tensor([[[0.2, 0.2, 0.2, 0.2], [0.25, 0.2, 0.2, 0.2], [0.8, 0.8, 0.2, 0.2]]])
    values = torch.tensor([[0.9, 0.5, 0.1]])
    mask = conf.distractor_mask(boxes, psi_out=0.0)
    assert mask[0].tolist() == [[False, False, True], [False, False, True], [True, True, False]]
    torch.testing.assert_close(conf.distractor_max(values, mask), torch.tensor([[0.1, 0.1, 0.9]]))
    same = torch.tensor([[[0.5, 0.5, 0.2, 0.2]] * 3])  # identical boxes: every B_out empty -> min
    empty = conf.distractor_mask(same, 0.0)
    torch.testing.assert_close(conf.distractor_max(values, empty), torch.tensor([[0.1, 0.1, 0.1]]))


def test_margins_fusion_memory_and_gate_numbers():
    d_corr, d_cls = torch.tensor([[0.2, -0.4]]), torch.tensor([[0.6, 0.0]])
    k = conf.kappa_vlm(d_corr, d_cls, alpha=0.5)
    torch.testing.assert_close(k, torch.tensor([[0.4, -0.2]]))
    assert conf.kappa_vlm(d_corr, d_cls, 1.0).equal(d_corr)  # δcorr only
    assert conf.kappa_vlm(d_corr, d_cls, 0.0).equal(d_cls)   # δcls only
    assert conf.update_memory(k, None, 0.9) is k
    mem = conf.update_memory(k, torch.tensor([[1.0, float("nan")]]), lam=0.25)
    torch.testing.assert_close(mem, torch.tensor([[0.75 * 0.4 + 0.25, -0.2]]))  # NaN cell restarts
    fused = conf.kappa_mvlm(k, mem, omega=0.5)
    torch.testing.assert_close(fused, torch.tensor([[0.5 * 0.4 + 0.5 * 0.55, -0.2]]))
    assert conf.margin(torch.tensor([1.0]), torch.tensor([0.5])).item() == pytest.approx(math.tanh(0.5))


def test_select_prefers_confident_then_falls_back_to_all():
    l = torch.tensor([[0.9, 0.3, 0.5]])
    top, in_s = conf.select(l, torch.tensor([[0.0, 0.5, 0.5]]), tau=0.2)
    assert top.item() == 2 and in_s.tolist() == [[False, True, True]]
    top, in_s = conf.select(l, torch.tensor([[0.0, 0.1, 0.1]]), tau=0.2)
    assert top.item() == 0 and not in_s.any()
    top, _ = conf.select(torch.tensor([[0.5, 0.5]]), torch.tensor([[1.0, 1.0]]), tau=0.0)
    assert top.item() == 0  # first index on ties


def test_frame_confidence_memory_off_equals_vlm():
    torch.manual_seed(0)
    f, d = 8, 16
    outputs = {"score_map": torch.rand(1, 1, f, f), "size_map": torch.rand(1, 2, f, f) * 0.5,
               "offset_map": torch.rand(1, 2, f, f), "feat_x": torch.randn(1, f * f, d)}
    tv = conf.text_vector(torch.randn(1, 5, d))
    on = conf.ConfidenceParams(alpha=0.5, tau=0.1, omega=0.9, lam=0.9, psi_out=0.3)
    off = conf.ConfidenceParams(alpha=0.5, tau=0.1, omega=0.9, lam=0.9, psi_out=0.3, memory=False)
    prev = torch.full((1, f * f), 0.5)
    c_on = conf.frame_confidence(outputs, tv, conf.hann_window(f), prev, on)
    c_off = conf.frame_confidence(outputs, tv, conf.hann_window(f), prev, off)
    assert c_off.kappa_mvlm.equal(c_off.kappa_vlm)
    expected = 0.1 * c_on.kappa_vlm + 0.9 * (0.1 * c_on.kappa_vlm + 0.9 * prev)
    torch.testing.assert_close(c_on.kappa_mvlm, expected)
    assert c_on.boxes.shape == (1, 64, 4) and c_on.n_selected.item() == int(c_on.in_s.sum())
