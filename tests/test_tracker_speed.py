"""The fast per-frame paths equal the plain formulas they replace, bit for bit.

Each test writes the straightforward form of a formula (per pixel, per cell, per box, one value
row at a time) and checks that the optimized code returns exactly the same numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mvlm.data.crops import IMAGENET_MEAN, IMAGENET_STD, ViewTransform, to_network_input
from mvlm.track import confidence as conf
from mvlm.track import mapping
from mvlm.track.tracker import one_intra_op_thread


def _formula_input(views: np.ndarray) -> torch.Tensor:
    x = (views.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    return torch.cat([x, x], dim=1)


def test_network_input_table_equals_the_formula_for_every_level():
    every_level = np.repeat(np.arange(256, dtype=np.uint8)[None, None, :, None], 3, axis=3)  # (1,1,256,3)
    got = to_network_input(every_level)
    assert got.shape == (1, 6, 1, 256) and got.dtype == torch.float32
    assert torch.equal(got, _formula_input(every_level))
    assert got[0, 0, 0, 255].item() == pytest.approx((1.0 - 0.485) / 0.229, abs=1e-6)


def test_network_input_batches_lists_and_strided_views():
    rng = np.random.default_rng(3)
    batch = rng.integers(0, 256, (2, 32, 48, 3), dtype=np.uint8)
    assert torch.equal(to_network_input(batch), _formula_input(batch))
    assert torch.equal(to_network_input(list(batch)), _formula_input(batch))
    strided = batch[:, ::2, ::3]
    assert torch.equal(to_network_input(strided), _formula_input(strided))
    floats = rng.random((1, 8, 8, 3)) * 255  # not a decoded frame: the formula itself
    assert torch.equal(to_network_input(floats), _formula_input(floats))
    with pytest.raises(ValueError, match="RGB"):
        to_network_input(np.zeros((8, 8), np.uint8))


def _per_cell_realign(memory, old, new, grid):
    """Per-cell bilinear read, the plain form of mapping.realign_memory."""
    xs, ys = mapping.cell_centres_in_image(new, grid)
    out = torch.empty_like(memory)
    m = memory.reshape(memory.shape[0], grid, grid)
    for i, (x, y) in enumerate(zip(xs, ys)):
        u = (x - old.origin_x) * old.scale_x * grid / old.size - 0.5
        v = (y - old.origin_y) * old.scale_y * grid / old.size - 0.5
        if not (-0.5 <= u <= grid - 0.5 and -0.5 <= v <= grid - 0.5):
            out[:, i] = float("nan")
            continue
        u, v = min(max(u, 0), grid - 1), min(max(v, 0), grid - 1)
        u0, v0 = int(np.floor(u)), int(np.floor(v))
        u1, v1 = min(u0 + 1, grid - 1), min(v0 + 1, grid - 1)
        fu, fv = torch.tensor(u - u0, dtype=torch.float32), torch.tensor(v - v0, dtype=torch.float32)
        top = m[:, v0, u0] * (1 - fu) + m[:, v0, u1] * fu
        bottom = m[:, v1, u0] * (1 - fu) + m[:, v1, u1] * fu
        out[:, i] = top * (1 - fv) + bottom * fv
    return out


@pytest.mark.parametrize("grid", [4, 8, 14])
def test_realign_memory_equals_the_per_cell_read(grid):
    rng = np.random.default_rng(grid)
    for _ in range(20):
        old = ViewTransform(float(rng.uniform(-50, 200)), float(rng.uniform(-50, 200)), 0.8, 0.6, 128)
        new = ViewTransform(old.origin_x + float(rng.normal(0, 25)), old.origin_y + float(rng.normal(0, 25)),
                            float(rng.uniform(0.6, 1.0)), 0.6, 128)
        memory = torch.from_numpy(rng.normal(size=(2, grid * grid)).astype(np.float32))
        got, want = mapping.realign_memory(memory, old, new, grid), _per_cell_realign(memory, old, new, grid)
        assert torch.equal(torch.isnan(got), torch.isnan(want))
        assert torch.equal(torch.nan_to_num(got), torch.nan_to_num(want))


def test_map_back_exact_equals_the_view_transform():
    t = ViewTransform(-13.25, 40.5, 0.73, 0.41, 128)
    view = mapping.SearchView(np.zeros((128, 128, 3), np.uint8), "local", t, t.scale_x, (360, 640), reference=False)
    box = torch.tensor([0.43, 0.61, 0.2, 0.35])
    cx, cy, w, h = (float(v) * 128 for v in box.tolist())
    want = t.to_image(np.array([cx - 0.5 * w, cy - 0.5 * h, w, h]))
    got = mapping.map_back_exact(box, view)
    assert got.dtype == np.float64 and np.array_equal(got, want)


def _maps(seed, f=8, d=16):
    g = torch.Generator().manual_seed(seed)
    return {"feat_x": torch.randn(1, f * f, d, generator=g), "score_map": torch.rand(1, 1, f, f, generator=g),
            "size_map": torch.rand(1, 2, f, f, generator=g) * 0.6, "offset_map": torch.rand(1, 2, f, f, generator=g)}


@pytest.mark.parametrize("exact", [False, True])
def test_frame_confidence_equals_the_one_function_at_a_time_form(exact):
    """instantaneous() shares corners and stacks s and l; the public helpers, one value row at a
    time, must give the very same tensors."""
    params = conf.ConfidenceParams(alpha=0.4, tau=0.1, omega=0.3, lam=0.6, psi_out=0.3, exact_pooling=exact)
    for seed in range(10):
        out = _maps(seed)
        tv = conf.text_vector(torch.randn(1, 5, 16, generator=torch.Generator().manual_seed(99)))
        got = conf.instantaneous(out, tv, conf.hann_window(8), params)
        boxes = conf.candidate_boxes(out["size_map"], out["offset_map"])
        l = conf.classification_scores(out["score_map"], conf.hann_window(8))
        pool = conf.pool_exact if exact else conf.pool_reference
        s = conf.vl_similarity(pool(out["feat_x"], boxes, 8), tv)
        mask = conf.distractor_mask(boxes, 0.3)
        s_tilde, l_tilde = conf.distractor_max(s, mask), conf.distractor_max(l, mask)
        want = {"boxes": boxes, "l": l, "s": s, "s_tilde": s_tilde, "l_tilde": l_tilde,
                "delta_corr": conf.margin(s, s_tilde), "delta_cls": conf.margin(l, l_tilde)}
        for name, value in want.items():
            assert torch.equal(got[name], value), (seed, name)


def test_reference_pooling_equals_a_per_box_integral_read():
    out = _maps(5, f=14, d=8)
    boxes = conf.candidate_boxes(out["size_map"], out["offset_map"])
    x1, y1, x2, y2 = conf.reference_token_rects(boxes, 14)
    integral = torch.nn.functional.pad(out["feat_x"].reshape(14, 14, 8).cumsum(0).cumsum(1), (0, 0, 1, 0, 1, 0))
    pooled = conf.pool_reference(out["feat_x"], boxes, 14)[0]
    for i in range(boxes.shape[1]):
        a, b, c, d = int(x1[0, i]), int(y1[0, i]), int(x2[0, i]), int(y2[0, i])
        total = integral[d, c] - integral[b + 1, c] - integral[d, a + 1] + integral[b + 1, a + 1]
        assert torch.equal(pooled[i], total / ((c - a) * (d - b))), i


def test_batched_reference_pooling_reads_each_sample():
    a, b = _maps(1, d=4), _maps(2, d=4)
    feat = torch.cat([a["feat_x"], b["feat_x"]])
    boxes = torch.cat([conf.candidate_boxes(m["size_map"], m["offset_map"]) for m in (a, b)])
    both = conf.pool_reference(feat, boxes, 8)
    assert torch.equal(both[1], conf.pool_reference(b["feat_x"], boxes[1:], 8)[0])


def testone_intra_op_thread_restores_the_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_intra_op_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), one_intra_op_thread():
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_bench_frames_are_decodable_sequences():
    from mvlm.bench.tracker import _frames
    from mvlm.data.image import decode_rgb

    for kind in ("synth", "noise"):
        jpegs, box = _frames(160, 96, 3, kind)
        frame = decode_rgb(jpegs[1])
        assert len(jpegs) == 3 and frame.shape == (96, 160, 3) and frame.dtype == np.uint8
        assert len(box) == 4 and box[2] > 0 and box[3] > 0
