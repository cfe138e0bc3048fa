"""Losses on known inputs with hand-computed values (docs/paper-notes.md §1.5)."""

from __future__ import annotations

import math

import pytest
import torch

from mvlm.config import LossConfig
from mvlm.model.losses import (
    box_losses,
    contrastive_margin_loss,
    focal_loss,
    gaussian_heatmap,
    gaussian_radius,
    gt_token_mask,
    mvlm_loss,
    neighbourhood_cells,
)


def test_gaussian_radius_matches_cornernet_roots():
    # h = w = 2, m = 0.7: third root (−5.6 + sqrt(44.8)) / 2 = 0.54664 is the smallest
    assert gaussian_radius(2, 2, 0.7) == pytest.approx((-5.6 + math.sqrt(44.8)) / 2, abs=1e-9)
    # h = w = 6: (−16.8 + sqrt(403.2)) / 2 = 1.63992
    assert gaussian_radius(6, 6, 0.7) == pytest.approx((-16.8 + math.sqrt(403.2)) / 2, abs=1e-9)


def test_heatmap_small_box_is_a_single_peak_in_the_containing_cell():
    boxes = torch.tensor([[0.5, 0.5, 0.25, 0.25], [0.99, 0.01, 0.25, 0.25]])
    hm = gaussian_heatmap(boxes, torch.tensor([True, True]), 8)
    assert hm.shape == (2, 1, 8, 8)
    assert hm[0, 0, 4, 4] == 1.0 and hm[0].sum() == 1.0  # r = int(0.547) = 0
    assert hm[1, 0, 0, 7] == 1.0 and hm[1].sum() == 1.0  # floor(7.92) = 7, never off-grid


def test_heatmap_radius_one_values_and_absent_is_zero():
    boxes = torch.tensor([[0.5, 0.5, 0.75, 0.75], [0.5, 0.5, 0.75, 0.75]])
    hm = gaussian_heatmap(boxes, torch.tensor([True, False]), 8)[:, 0]
    # r = int(1.64) = 1, σ = 0.5: edge neighbours exp(−2), diagonal exp(−4), nothing beyond r
    assert hm[0, 4, 4] == 1.0
    assert hm[0, 4, 5].item() == pytest.approx(math.exp(-2), abs=1e-6)
    assert hm[0, 3, 3].item() == pytest.approx(math.exp(-4), abs=1e-6)
    assert hm[0, 4, 6] == 0.0 and (hm[0] > 0).sum() == 9
    assert hm[1].abs().sum() == 0.0


def test_focal_loss_uniform_half_is_log2():
    # one positive; every term has weight 0.25·log 0.5, normalized by one positive: −4·0.25·log 0.5
    heat = torch.zeros(1, 1, 2, 2)
    heat[0, 0, 0, 0] = 1.0
    assert focal_loss(torch.full((1, 1, 2, 2), 0.5), heat).item() == pytest.approx(math.log(2), abs=1e-6)


def test_focal_loss_without_positives_is_the_negative_sum():
    score = torch.full((1, 1, 2, 2), 0.2)
    expected = -4 * (0.2**2) * math.log(0.8)
    assert focal_loss(score, torch.zeros(1, 1, 2, 2)).item() == pytest.approx(expected, abs=1e-6)


def test_box_losses_known_values():
    pred = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    gt = torch.tensor([[0.5, 0.5, 0.4, 0.4]])
    giou, l1, iou = box_losses(pred, gt)
    # IoU = 0.04/0.16, enclosing box = GT so GIoU = IoU; xyxy differ by 0.1 on every coordinate
    assert giou.item() == pytest.approx(0.75, abs=1e-6)
    assert l1.item() == pytest.approx(0.1, abs=1e-6)
    assert iou.item() == pytest.approx(0.25, abs=1e-6)


def _cm_inputs():
    # 2x2 grid; ℓ = (1, 0); similarities s = 1, 0, −1, 1/√2; GT box covers token 0 only
    vision = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]]])
    text = torch.tensor([[[2.0, 0.0], [1.0, 0.0]]])
    boxes = torch.tensor([[0.25, 0.25, 0.5, 0.5]])
    return vision, text, boxes


def test_cm_loss_hand_computed():
    vision, text, boxes = _cm_inputs()
    present = torch.tensor([True])
    # Δ = 1, 2, 1 − 1/√2; e = −Δ|Δ| = −1, −4, −0.0858
    top2 = contrastive_margin_loss(vision, text, boxes, present, 2, 1.0, 2)
    assert top2.item() == pytest.approx((math.exp(-(1 - 2**-0.5) ** 2) + math.exp(-1)) / 2, abs=1e-6)
    top10 = contrastive_margin_loss(vision, text, boxes, present, 2, 1.0, 10)
    assert top10.item() == pytest.approx(0.43466176526953365, abs=1e-6)
    hot = contrastive_margin_loss(vision, text, boxes, present, 2, 2.0, 1)
    assert hot.item() == pytest.approx(math.exp(-2 * (1 - 2**-0.5) ** 2), abs=1e-6)


def test_cm_loss_linear_form_values_and_gradient_at_zero_margin():
    vision, text, boxes = _cm_inputs()
    present = torch.tensor([True])
    # Δ = 1, 2, 1 − 1/√2; linear energies e = −Δ
    top2 = contrastive_margin_loss(vision, text, boxes, present, 2, 1.0, 2, form="linear")
    assert top2.item() == pytest.approx((math.exp(-(1 - 2**-0.5)) + math.exp(-1)) / 2, abs=1e-6)
    # every token equally similar to the text (Δ = 0, where a random-init network starts): the
    # reference's signed square gives no gradient there, the linear form does
    flat = torch.ones(1, 4, 2, requires_grad=True)
    for form, moves in (("signed_square", False), ("linear", True)):
        noisy = flat + torch.tensor([[[0.0, 0.0], [0.0, 1e-3], [1e-3, 0.0], [0.0, 0.0]]])
        loss = contrastive_margin_loss(noisy, text, boxes, present, 2, 1.0, 10, form=form)
        (grad,) = torch.autograd.grad(loss, flat)
        assert loss.item() == pytest.approx(1.0, abs=1e-3)
        assert (grad.abs().max().item() > 1e-3) is moves
    with pytest.raises(ValueError, match="cm form"):
        contrastive_margin_loss(vision, text, boxes, present, 2, form="log")


def test_cm_loss_skips_empty_gt_sets_and_absent_samples():
    vision, text, _ = _cm_inputs()
    thin = torch.tensor([[0.1, 0.5, 0.1, 0.5]])  # x from 0.05 to 0.15: floor(0.1) = floor(0.3) = 0
    assert gt_token_mask(thin, 2).sum() == 0
    assert contrastive_margin_loss(vision, text, thin, torch.tensor([True]), 2).item() == 0.0
    full = torch.tensor([[0.5, 0.5, 1.0, 1.0]])  # no negatives left
    assert contrastive_margin_loss(vision, text, full, torch.tensor([True]), 2).item() == 0.0
    _, _, boxes = _cm_inputs()
    assert contrastive_margin_loss(vision, text, boxes, torch.tensor([False]), 2).item() == 0.0


def test_gt_token_mask_floor_on_both_ends():
    mask = gt_token_mask(torch.tensor([[0.5, 0.5, 0.5, 0.25]]), 4).reshape(4, 4)
    # x 0.25..0.75 -> cols [1, 3); y 0.375..0.625 -> rows [1, 2)
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[1, 1:3] = True
    assert torch.equal(mask, expected)


def _outputs(batch: int, feat: int, dim: int, n_text: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    tae = torch.randn(batch, feat * feat + n_text, dim, generator=g, requires_grad=True)
    return {
        "score_map": torch.rand(batch, 1, feat, feat, generator=g).requires_grad_(),
        "size_map": torch.rand(batch, 2, feat, feat, generator=g).requires_grad_(),
        "offset_map": torch.rand(batch, 2, feat, feat, generator=g).requires_grad_(),
        "pred_boxes": torch.rand(batch, 1, 4, generator=g),
        "tae": tae,
        "feat_x": torch.randn(batch, feat * feat, dim, generator=g, requires_grad=True),
    }, torch.randn(batch, n_text, dim, generator=g, requires_grad=True)


def test_absent_samples_contribute_only_focal():
    out, text = _outputs(2, 4, 8, 3)
    boxes = torch.tensor([[0.5, 0.5, 0.4, 0.4], [0.5, 0.5, 0.4, 0.4]])
    total, terms = mvlm_loss(out, text, boxes, torch.tensor([False, False]), LossConfig())
    assert terms["giou"] == 0.0 and terms["l1"] == 0.0 and terms["cm"] == 0.0
    assert total.item() == pytest.approx(terms["focal"], abs=1e-6)
    total.backward()
    assert out["score_map"].grad.abs().sum() > 0
    assert out["size_map"].grad is None or out["size_map"].grad.abs().sum() == 0


def test_total_is_the_weighted_sum_and_align_flag_adds_a_term():
    out, text = _outputs(3, 4, 8, 3, seed=1)
    boxes = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.3, 0.6, 0.4, 0.3], [0.7, 0.2, 0.2, 0.2]])
    present = torch.tensor([True, True, False])
    cfg = LossConfig()
    total, t = mvlm_loss(out, text, boxes, present, cfg)
    assert "cm_inference" not in t
    expected = 1.0 * t["focal"] + 2.0 * t["giou"] + 5.0 * t["l1"] + 0.5 * t["cm"]
    assert total.item() == pytest.approx(expected, rel=1e-6)
    cfg.align_inference_signal = True
    total2, t2 = mvlm_loss(out, text, boxes, present, cfg)
    assert t2["cm_inference"] > 0
    assert total2.item() == pytest.approx(expected + 0.5 * t2["cm_inference"], rel=1e-6)
    total2.backward()
    assert out["feat_x"].grad.abs().sum() > 0 and text.grad.abs().sum() > 0


def test_box_at_argmax_uses_pred_boxes_and_rejects_unknown():
    out, text = _outputs(1, 4, 8, 3)
    out["pred_boxes"] = torch.tensor([[[0.5, 0.5, 0.4, 0.4]]])
    _, t = mvlm_loss(out, text, torch.tensor([[0.5, 0.5, 0.4, 0.4]]), torch.tensor([True]), LossConfig(), "argmax")
    assert t["giou"] == pytest.approx(0.0, abs=1e-6) and t["l1"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="box_at"):
        mvlm_loss(out, text, torch.zeros(1, 4), torch.tensor([True]), LossConfig(), "centre")


def test_neighbourhood_cells_are_the_gt_cell_and_its_neighbours_clamped():
    # centre (0.5, 0.5) on a 4x4 grid lies in cell (2, 2); (0.05, 0.95) in the corner cell (0, 3)
    gx, gy = neighbourhood_cells(torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.05, 0.95, 0.1, 0.1]]), 4)
    assert gx[0].tolist() == [1, 2, 3] * 3 and gy[0].tolist() == [1] * 3 + [2] * 3 + [3] * 3
    assert gx[1].tolist() == [0, 0, 1] * 3 and gy[1].tolist() == [2] * 3 + [3] * 6


def test_gt_neighbourhood_box_loss_is_zero_only_when_every_neighbour_decodes_the_box():
    feat = 4
    box = torch.tensor([[0.5, 0.5, 0.4, 0.3]])  # centre 2.0 cells from the left/top: GT cell (2, 2)
    gy, gx = torch.meshgrid(torch.arange(feat).float(), torch.arange(feat).float(), indexing="ij")
    out, text = _outputs(1, feat, 8, 3)
    # every cell points at the true centre: offset = centre - cell, size = the box
    out["offset_map"] = torch.stack([2.0 - gx, 2.0 - gy])[None].requires_grad_()
    out["size_map"] = torch.tensor([0.4, 0.3]).reshape(1, 2, 1, 1).expand(1, 2, feat, feat).clone().requires_grad_()
    _, exact = mvlm_loss(out, text, box, torch.tensor([True]), LossConfig(), "gt_neighbourhood")
    assert exact["giou"] == pytest.approx(0.0, abs=1e-6) and exact["l1"] == pytest.approx(0.0, abs=1e-6)
    assert exact["iou"] == pytest.approx(1.0, abs=1e-6)
    # spoil one neighbour (cell (1, 1)): the GT-cell loss does not see it, the neighbourhood loss does
    offset = out["offset_map"].detach().clone()
    offset[0, :, 1, 1] += 1.0
    out["offset_map"] = offset.requires_grad_()
    _, at_cell = mvlm_loss(out, text, box, torch.tensor([True]), LossConfig(), "gt_cell")
    total, spoiled = mvlm_loss(out, text, box, torch.tensor([True]), LossConfig(), "gt_neighbourhood")
    assert at_cell["l1"] == pytest.approx(0.0, abs=1e-6)
    # one of nine rows is off by 1/F = 0.25 in x and y: mean |Δ| over 9 rows x 4 coordinates
    assert spoiled["l1"] == pytest.approx(0.25 * 4 / 36, rel=1e-5)
    total.backward()
    assert out["offset_map"].grad[0, :, 1, 1].abs().sum() > 0 and out["offset_map"].grad[0, :, 0, 0].abs().sum() == 0
