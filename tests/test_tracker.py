"""MVLMTracker state machine on a stub network: starts, errors, switches, ablations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mvlm.config import ConfigError, model_config, tracker_config
from mvlm.data.crops import ViewTransform
from mvlm.track import mapping
from mvlm.track.extensions import ExtendedTracker
from mvlm.track.tracker import MVLMTracker, TrackerError, create_tracker, resolve_switches, tracker_overrides

F, D = 8, 4  # tiny preset: 128 px search, stride 16


def maps(score=None, size=0.2, offset=0.5, feat=None):
    """Head outputs: score (F,F) array, constant size/offset, features (F·F, D)."""
    s = torch.full((F, F), 0.01) if score is None else torch.as_tensor(score, dtype=torch.float32)
    return {
        "score_map": s.reshape(1, 1, F, F),
        "size_map": torch.full((1, 2, F, F), float(size)),
        "offset_map": torch.full((1, 2, F, F), float(offset)),
        "feat_x": (torch.randn(1, F * F, D, generator=torch.Generator().manual_seed(0)) if feat is None
                   else torch.as_tensor(feat, dtype=torch.float32).reshape(1, F * F, D)),
    }


class StubNet(torch.nn.Module):
    """Same contract as MVLMNet; returns `outputs[k]` on the k-th call (the last one repeats).
    A batch of B views meets single-view outputs by taking the next B of them, row by row."""

    def __init__(self, outputs, text=None):
        super().__init__()
        self.outputs = outputs if isinstance(outputs, list) else [outputs]
        self.text = torch.ones(1, 3, D) if text is None else text
        self.calls = []
        self.encoded = []

    def encode_text(self, texts):
        self.encoded.append(list(texts))
        return self.text

    def forward(self, search, templates, text_emb):
        self.calls.append({"search": tuple(search.shape), "templates": None if templates is None else len(templates)})
        out = self._next()
        if search.shape[0] > 1 and out["score_map"].shape[0] == 1:
            rows = [out] + [self._next() for _ in range(search.shape[0] - 1)]
            out = {k: torch.cat([r[k] for r in rows]) for k in out}
        return out

    def _next(self):
        self.served = getattr(self, "served", 0) + 1
        return self.outputs[min(self.served - 1, len(self.outputs) - 1)]


def make(outputs, preset="tf", text=None, **overrides):
    model_cfg = model_config({"template_free": preset != "bbox"}, preset="tiny")
    cfg = tracker_config(overrides, preset=preset)
    net = StubNet(outputs, text)
    return create_tracker(net, model_cfg, cfg), net


def frame(h=120, w=160):
    return (np.arange(h * w * 3) % 253).astype(np.uint8).reshape(h, w, 3)


def peak(gy, gx, value=0.9, rest=0.05):
    s = np.full((F, F), rest, np.float32)
    s[gy, gx] = value
    return s


# --------------------------------------------------------------------------------------------
# starting and inputs


def test_language_only_start_localizes_the_first_frame_globally():
    tr, net = make(maps(peak(4, 4)))
    res = tr.initialize(frame(), "the red car")
    assert res.mode == "global" and res.frame_index == 0 and res.kappa is not None
    assert net.calls[0]["search"] == (1, 6, 128, 128) and net.calls[0]["templates"] is None
    # cell (4,4) + offset 0.5 -> centre (4.5/8) of a stretched 160x120 frame, box 0.2 of each side
    np.testing.assert_allclose(res.box, [4.5 / 8 * 160 - 16, 4.5 / 8 * 120 - 12, 32, 24], atol=1e-4)
    nxt = tr.track(frame())
    assert nxt.frame_index == 1 and nxt.mode == res.next_mode
    assert net.encoded == [["the red car"]]  # text encoded once


def test_box_start_echoes_the_box_and_bbox_mode_uses_two_templates():
    tr, net = make(maps(peak(4, 4)), preset="bbox")
    res = tr.initialize(frame(), "a car", box=[60, 40, 30, 20])
    assert res.mode == "init" and res.kappa is None and res.box.tolist() == [60, 40, 30, 20]
    assert res.next_mode == "local" and len(tr.templates) == 2 and tr.templates[0].shape == (1, 6, 64, 64)
    out = tr.track(frame())
    assert out.mode == "local" and net.calls[-1]["templates"] == 2
    assert set(out.timings) >= {"view_ms", "network_ms", "confidence_ms", "total_ms"}


@pytest.mark.parametrize("text,box,match", [
    ("", None, "sentence is empty"),
    ("   ", None, "sentence is empty"),
    ("car", [1, 2, float("nan"), 4], "finite"),
    ("car", [1, 2, 0, 4], "w,h > 0"),
    ("car", [500, 500, 10, 10], "outside"),
])
def test_bad_initialize_inputs_raise_clearly(text, box, match):
    tr, _ = make(maps())
    with pytest.raises(TrackerError, match=match):
        tr.initialize(frame(), text, box=box)


def test_bad_frames_and_order_raise_clearly():
    tr, _ = make(maps())
    with pytest.raises(TrackerError, match="before initialize"):
        tr.track(frame())
    with pytest.raises(TrackerError, match="RGB uint8"):
        tr.initialize(frame().astype(np.float32), "car")
    with pytest.raises(TrackerError, match="RGB uint8"):
        tr.initialize(frame()[..., 0], "car")
    bb, _ = make(maps(), preset="bbox")
    with pytest.raises(TrackerError, match="needs a box"):
        bb.initialize(frame(), "car")
    with pytest.raises(ConfigError, match="template"):
        MVLMTracker(StubNet(maps()), model_config({"template_free": False}, preset="tiny"), tracker_config(preset="tf"))


def test_nan_network_output_keeps_last_state_and_goes_global():
    bad = maps(peak(4, 4))
    bad["size_map"] = torch.full((1, 2, F, F), float("nan"))
    tr, _ = make([maps(peak(4, 4)), bad], preset="bbox")
    tr.initialize(frame(), "car", box=[60, 40, 30, 20])
    good = tr.track(frame())
    res = tr.track(frame())
    assert np.isfinite(res.box).all() and res.box.tolist() == good.box.tolist() and res.next_mode == "global"


# --------------------------------------------------------------------------------------------
# corrected-mode switches


def test_switches_resolve_per_mode_and_individually():
    assert resolve_switches(tracker_config({"compat": "reference"})) == {
        "exact_pooling": False, "aligned_memory": False, "letterbox_global": False, "global_window": True,
        "exact_mapping": False, "hysteresis": 1}
    cor = resolve_switches(tracker_config({"compat": "corrected", "exact_pooling": False, "hysteresis": 3}))
    assert cor["aligned_memory"] and cor["letterbox_global"] and cor["exact_mapping"]
    assert not cor["global_window"] and not cor["exact_pooling"] and cor["hysteresis"] == 3


def test_exact_pooling_gives_small_boxes_a_similarity():
    """A target smaller than one token: reference pooling gives s = 0, exact pooling s = 1."""
    feat = torch.zeros(F * F, D)
    feat[4 * F + 4] = 1.0  # the target token is aligned with the (all-ones) text vector
    out = maps(peak(4, 4), size=0.04, feat=feat)
    for exact, expected in ((False, 0.0), (True, 1.0)):
        tr, _ = make(out, exact_pooling=exact)
        tr.initialize(frame(), "car")
        assert tr.last_confidence.s[0, 4 * F + 4].item() == pytest.approx(expected, abs=1e-6)


def test_realign_memory_follows_the_image_not_the_grid_index():
    old = ViewTransform(0.0, 0.0, 1.0, 1.0, F)  # one pixel per cell
    new = ViewTransform(2.0, 1.0, 1.0, 1.0, F)  # the view moved 2 px right, 1 px down
    memory = torch.zeros(1, F * F)
    memory[0, 3 * F + 5] = 1.0
    aligned = mapping.realign_memory(memory, old, new, F).reshape(F, F)
    assert aligned[2, 3].item() == 1.0  # same image point, new cell (3-1, 5-2)
    assert aligned[2, 5].item() == 0.0
    assert torch.isnan(aligned[F - 1, F - 1]) and torch.isnan(aligned[F - 1, 0])  # came from outside
    assert aligned[0, 0].item() == 0.0


def test_aligned_memory_in_the_tracker_when_the_crop_moves():
    outs = [maps(peak(2, 2)), maps(peak(5, 5))]
    prev = {}
    for aligned in (False, True):
        tr, _ = make(outs, preset="bbox", aligned_memory=aligned, compat="corrected")
        tr.initialize(frame(240, 320), "car", box=[100, 80, 40, 30])
        tr.track(frame(240, 320))
        first_mem = tr.memory.clone()
        tr.track(frame(240, 320))  # the crop moved: centred on the new state
        prev[aligned] = (first_mem, tr.last_confidence.kappa_mem_prev)
    mem, used = prev[False]
    assert used.equal(mem)  # reference: same grid index, whatever the crop
    mem, used = prev[True]
    assert not torch.allclose(torch.nan_to_num(used), mem)


def test_letterbox_global_keeps_aspect():
    tr_ref, _ = make(maps(peak(4, 4), size=0.25), letterbox_global=False)
    tr_box, _ = make(maps(peak(4, 4), size=0.25), letterbox_global=True)
    wide = frame(100, 200)
    ref = tr_ref.initialize(wide, "car")
    box = tr_box.initialize(wide, "car")
    assert ref.box[2] / ref.box[3] == pytest.approx(2.0)  # stretched view: a square -> 2:1
    assert box.box[2] / box.box[3] == pytest.approx(1.0)  # letterboxed: squares stay square
    assert box.box[2] == pytest.approx(0.25 * 200)


def test_global_window_switch():
    """Global pass, strong target in a corner: the Hann window hides it, no window finds it."""
    s = peak(0, 7, value=0.95, rest=0.05)
    s[3, 3] = 0.5
    with_window, _ = make(maps(s), global_window=True)
    without, _ = make(maps(s), global_window=False)
    assert with_window.initialize(frame(), "car").top1 == 3 * F + 3
    assert without.initialize(frame(), "car").top1 == 0 * F + 7


def test_hysteresis_delays_the_global_pass():
    zero_text = torch.zeros(1, 3, D)  # s ≡ 0 and τ = 0.5: S is always empty
    modes = {}
    for n in (0, 3):
        tr, _ = make(maps(peak(4, 4)), preset="bbox", text=zero_text, tau=0.5, hysteresis=n)
        tr.initialize(frame(), "car", box=[60, 40, 30, 20])
        modes[n] = [tr.track(frame()).next_mode for _ in range(4)]
    assert modes[0] == ["global"] * 4
    assert modes[3] == ["local", "local", "global", "global"]


# --------------------------------------------------------------------------------------------
# ablations


def test_gate_ablations():
    zero_text = torch.zeros(1, 3, D)
    local, _ = make(maps(peak(4, 4)), preset="bbox", text=zero_text, tau=0.5, gate="local_only")
    local.initialize(frame(), "car", box=[60, 40, 30, 20])
    assert {local.track(frame()).mode for _ in range(3)} == {"local"}
    glob, _ = make(maps(peak(4, 4)), preset="bbox", gate="always_global")
    assert glob.initialize(frame(), "car", box=[60, 40, 30, 20]).next_mode == "global"
    assert {glob.track(frame()).mode for _ in range(3)} == {"global"}


def test_alpha_selects_the_margin_and_memory_switch():
    a0, _ = make(maps(peak(4, 4)), alpha=0.0)
    a0.initialize(frame(), "car")
    assert a0.last_confidence.kappa_vlm.equal(a0.last_confidence.delta_cls)
    a1, _ = make(maps(peak(4, 4)), alpha=1.0)
    a1.initialize(frame(), "car")
    assert a1.last_confidence.kappa_vlm.equal(a1.last_confidence.delta_corr)
    off, _ = make(maps(peak(4, 4)), memory=False)
    off.initialize(frame(), "car")
    off.track(frame())
    c = off.last_confidence
    assert c.kappa_mem_prev is None and c.kappa_mvlm.equal(c.kappa_vlm)


def test_overrides_parse_and_reject_unknown_keys():
    assert tracker_overrides(["tau=0.25", "tracker.memory=false", "gate=local_only"]) == {
        "tau": 0.25, "memory": False, "gate": "local_only"}
    with pytest.raises(ConfigError, match="unknown key"):
        tracker_config(tracker_overrides(["taux=1"]))
    with pytest.raises(ConfigError, match="flat"):
        tracker_overrides(["model.encoder.dims=1"])


def batched(per_window: list[np.ndarray], size=0.2, offset=0.5):
    """Head outputs for a batch of windows, one score map (F,F) each."""
    outs = [maps(s, size=size, offset=offset) for s in per_window]
    return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}


def test_target_scale_tiles_use_windows_of_the_last_box_local_crop():
    # box 16x16 at search_factor 4: a 64 px crop side -> zoom 2 on the 160x120 frame, 12 windows
    scores = [peak(2, 2, value=0.5) for _ in range(12)]
    scores[7] = peak(4, 4, value=0.9)  # row 1, column 3: origin (96, 28)
    tr, net = make(batched(scores), preset="bbox", gate="always_global", compat="corrected",
                   target_scale_tiles=True, alpha=0.0)
    tr.initialize(frame(), "car", box=[60, 40, 16, 16])
    res = tr.track(frame())
    assert res.mode == "global" and net.calls[0]["search"] == (12, 6, 128, 128)
    np.testing.assert_allclose(res.box, [132 - 6.4, 64 - 6.4, 12.8, 12.8], atol=1e-4)


def test_tile_select_score_compares_windows_by_score_not_by_their_inner_margin():
    # window 0: a lone weak peak (wide margin inside its window); window 7: a strong peak beside
    # a rival almost as strong (narrow margin)
    scores = [peak(2, 2, value=0.3, rest=0.01)] + [np.full((F, F), 0.01, np.float32)] * 11
    crowded = peak(4, 4, value=0.9, rest=0.01)
    crowded[1, 1] = 0.88
    scores[7] = crowded
    picked = {}
    for select in ("kappa", "score"):
        tr, _ = make(batched(scores), preset="bbox", gate="always_global", compat="corrected",
                     target_scale_tiles=True, alpha=0.0, tile_select=select)
        tr.initialize(frame(), "car", box=[60, 40, 16, 16])
        tr.track(frame())
        picked[select] = (tr.memory_view.origin_x, tr.memory_view.origin_y)
    assert picked == {"kappa": (0.0, 0.0), "score": (96.0, 28.0)}


def test_target_scale_tiles_never_exceed_the_frame_and_need_a_last_box():
    # a 40x40 box asks for 160 px windows: one window of the frame's longer side, centred
    tr, net = make(batched([peak(4, 4)]), preset="bbox", gate="always_global", compat="corrected",
                   target_scale_tiles=True)
    tr.initialize(frame(), "car", box=[60, 40, 40, 40])
    tr.track(frame())
    assert net.calls[0]["search"] == (1, 6, 128, 128)
    assert tr.memory_view.origin_x == 0.0 and tr.memory_view.origin_y == -20.0
    # template-free: the first frame has no box, so its global pass is the one whole-frame view
    tiles, net = make(maps(peak(4, 4)), compat="corrected", target_scale_tiles=True)
    whole, _ = make(maps(peak(4, 4)), compat="corrected")
    first = tiles.initialize(frame(), "the red car")
    assert net.calls[0]["search"] == (1, 6, 128, 128)
    np.testing.assert_allclose(first.box, whole.initialize(frame(), "the red car").box)
    assert tiles.memory_view == whole.memory_view


def test_size_damping_moves_width_and_height_part_of_the_way_in_local_steps_only():
    box = [60, 40, 30, 20]
    free, _ = make(maps(peak(4, 4)), preset="bbox", compat="corrected")
    damped, _ = make(maps(peak(4, 4)), preset="bbox", compat="corrected", size_damping=0.5)
    for tr in (free, damped):
        tr.initialize(frame(), "car", box=box)
    a, b = free.track(frame()), damped.track(frame())
    assert a.mode == b.mode == "local"
    np.testing.assert_allclose(b.raw_box, a.raw_box)  # the network's box is reported undamped
    w, h = a.box[2], a.box[3]
    np.testing.assert_allclose(b.box[2:], [np.sqrt(30 * w), np.sqrt(20 * h)], rtol=1e-9)
    np.testing.assert_allclose(b.box[:2] + b.box[2:] / 2, a.box[:2] + a.box[2:] / 2, rtol=1e-9)
    # a global pass takes the detected size as it is
    g_free, _ = make(maps(peak(4, 4)), preset="bbox", compat="corrected", gate="always_global")
    g_damped, _ = make(maps(peak(4, 4)), preset="bbox", compat="corrected", gate="always_global", size_damping=0.5)
    for tr in (g_free, g_damped):
        tr.initialize(frame(), "car", box=box)
    np.testing.assert_allclose(g_damped.track(frame()).box, g_free.track(frame()).box)


@pytest.mark.parametrize("beta", [0.0, -0.5, 1.5, float("nan")])
def test_size_damping_outside_zero_one_is_rejected(beta):
    with pytest.raises(ConfigError, match="size_damping"):
        make(maps(peak(4, 4)), size_damping=beta)


@pytest.mark.parametrize("global_wins", [False, True])
def test_global_vs_local_keeps_the_more_confident_of_both_passes(global_wins):
    init = maps(peak(4, 4, value=0.9))
    strong, weak = maps(peak(2, 2, value=0.9)), maps(peak(5, 3, value=0.3))
    global_out, local_out = (strong, weak) if global_wins else (weak, strong)
    # τ above every κ: S stays empty, so the MVLM gate sends every frame global
    common = dict(alpha=0.0, memory=False, compat="corrected", tau=10.0)
    tr, net = make([init, global_out, local_out], global_vs_local=True, **common)
    first = tr.initialize(frame(), "the red car")
    assert len(net.calls) == 1 and not first.contested  # no previous box yet: a plain global pass
    res = tr.track(frame())
    # both views in one network call, the global one first
    assert len(net.calls) == 2 and net.calls[1]["search"] == (2, 6, 128, 128) and res.contested
    assert res.mode == ("global" if global_wins else "local")
    # the answer is exactly what the winning pass alone gives
    twin_common = {**common, "gate": "mvlm" if global_wins else "local_only"}
    twin, _ = make([init, global_out if global_wins else local_out], **twin_common)
    twin.initialize(frame(), "the red car")
    alone = twin.track(frame())
    assert res.top1 == alone.top1 and res.kappa == pytest.approx(alone.kappa)
    np.testing.assert_allclose(res.box, alone.box)
    assert tr.memory_view == twin.memory_view


@pytest.mark.parametrize("settings", [{"tau": 10.0}, {"gate": "always_global", "global_vs_local": True}])
def test_one_pass_per_global_frame_without_the_contest_or_under_the_always_global_ablation(settings):
    tr, net = make(maps(peak(4, 4)), compat="corrected", **settings)
    tr.initialize(frame(), "the red car")
    res = tr.track(frame())
    assert len(net.calls) == 2 and not res.contested and res.mode == "global"
    assert res.to_json()["contested"] is False


# --------------------------------------------------------------------------------------------
# shot cuts


def other_shot(h=120, w=160):
    """A frame unrelated to `frame()`: coarse random blobs."""
    rng = np.random.default_rng(5)
    coarse = rng.integers(0, 256, (h // 20, w // 20, 3), dtype=np.uint8)
    return np.kron(coarse, np.ones((20, 20, 1), np.uint8))


def test_thumbnail_correlation_ignores_lighting_and_flags_another_scene():
    from mvlm.track.shots import shot_thumbnail, thumbnail_correlation

    a = shot_thumbnail(frame())
    assert a.shape == (24, 32) and a.dtype == np.float32
    assert thumbnail_correlation(a, a) == pytest.approx(1.0, abs=1e-5)
    darker = (frame().astype(np.float32) * 0.5 + 20).astype(np.uint8)
    assert thumbnail_correlation(a, shot_thumbnail(darker)) > 0.99
    assert abs(thumbnail_correlation(a, shot_thumbnail(other_shot()))) < 0.3
    flat = shot_thumbnail(np.full((120, 160, 3), 77, np.uint8))
    assert not flat.any() and thumbnail_correlation(a, flat) == 1.0  # no evidence of a cut


def test_a_shot_cut_sends_the_frame_global_without_contest_and_clears_the_memory():
    outputs = [maps(peak(4, 4, value=0.9))]
    # τ -1: S is never empty, so without the cut detector every frame would stay local
    tr, net = make(outputs, preset="bbox", compat="corrected", tau=-1.0, global_vs_local=True,
                   shot_cut_threshold=0.25)
    tr.initialize(frame(), "the red car", box=[60, 40, 20, 20])
    same = tr.track(frame())
    assert same.mode == "local" and not same.shot_cut and tr.memory is not None
    cut = tr.track(other_shot())
    assert cut.mode == "global" and cut.shot_cut and not cut.contested
    assert len(net.calls) == 2  # one pass for the cut frame, no local contest
    assert cut.to_json()["shot_cut"] is True
    # the cut frame's κ is that of a global pass with no memory at all
    twin, _ = make(outputs, preset="bbox", compat="corrected", gate="always_global", memory=False)
    twin.initialize(frame(), "the red car", box=[60, 40, 20, 20])
    twin.track(frame())
    assert cut.kappa == pytest.approx(twin.track(other_shot()).kappa, abs=1e-6)
    after = tr.track(other_shot())  # the new shot goes on: local again
    assert after.mode == "local" and not after.shot_cut


@pytest.mark.parametrize("settings", [{}, {"gate": "local_only", "shot_cut_threshold": 0.25}])
def test_no_shot_cut_when_off_or_under_the_local_only_ablation(settings):
    tr, net = make(maps(peak(4, 4)), preset="bbox", compat="corrected", tau=-1.0, **settings)
    tr.initialize(frame(), "the red car", box=[60, 40, 20, 20])
    res = tr.track(other_shot())
    assert res.mode == "local" and not res.shot_cut


@pytest.mark.parametrize("value", [1.5, -2.0])
def test_shot_cut_threshold_outside_minus_one_one_is_rejected(value):
    with pytest.raises(ConfigError, match="shot_cut_threshold"):
        make(maps(peak(4, 4)), shot_cut_threshold=value)


# --------------------------------------------------------------------------------------------
# refining a global answer in a local crop


@pytest.mark.parametrize("compat", ["corrected", "reference"])
def test_refine_global_reads_the_global_answer_again_in_a_crop_around_it(compat):
    coarse, fine = maps(peak(1, 6, value=0.9)), maps(peak(5, 2, value=0.8))
    tr, net = make([coarse, fine, coarse, fine], compat=compat, refine_global=True, gate="always_global")
    first = tr.initialize(frame(), "the red car")
    assert len(net.calls) == 2 and first.refined and first.mode == "global"
    assert first.to_json()["refined"] is True
    # the global pass alone, and then a local step from its (clipped) box with the second output
    plain, _ = make([coarse], compat=compat)
    coarse_box = plain.initialize(frame(), "the red car").box
    twin, _ = make([fine], compat=compat, gate="local_only")
    twin.initialize(frame(), "the red car", box=coarse_box)
    local = twin.track(frame())
    assert not np.allclose(first.box, coarse_box)
    np.testing.assert_allclose(first.box, local.box)
    assert first.top1 == local.top1 and first.kappa == pytest.approx(local.kappa)
    # a later frame: the crop is centred on this frame's global answer, not on the last state
    second = tr.track(frame())
    assert len(net.calls) == 4 and second.refined
    np.testing.assert_allclose(second.box, local.box)


def test_refine_global_applies_to_every_gate_that_goes_global_and_is_off_by_default():
    tr, net = make(maps(peak(4, 4)), compat="corrected", gate="always_global", refine_global=True)
    tr.initialize(frame(), "the red car")
    res = tr.track(frame())
    assert len(net.calls) == 4 and res.refined and res.mode == "global"
    tr, net = make(maps(peak(4, 4)), compat="corrected", gate="always_global")
    tr.initialize(frame(), "the red car")
    assert not tr.track(frame()).refined and len(net.calls) == 2


@pytest.mark.parametrize("winner", ["global", "local"])
def test_the_contest_compares_the_refined_global_answer(winner):
    init = maps(peak(4, 4, value=0.9))
    # the global pass itself is the most confident, but its refinement (0.6) is what competes
    # with the local pass (0.5): κ = tanh(v − 0.05) with α 0, no window, no memory
    local_value = 0.5 if winner == "global" else 0.7
    global_out, refined_out, local_out = (maps(peak(1, 1, value=0.95)), maps(peak(2, 5, value=0.6)),
                                          maps(peak(6, 3, value=local_value)))
    common = dict(alpha=0.0, memory=False, window=False, compat="corrected", tau=10.0,
                  global_vs_local=True, refine_global=True)
    # the global and local views run as one batch, then the refinement around the global box
    tr, net = make([init, init, global_out, local_out, refined_out], **common)
    tr.initialize(frame(), "the red car")
    res = tr.track(frame())
    assert [c["search"][0] for c in net.calls] == [1, 1, 2, 1] and res.contested and res.mode == winner
    assert res.refined == (winner == "global")
    expected = np.tanh(0.6 - 0.05) if winner == "global" else np.tanh(local_value - 0.05)
    assert res.kappa == pytest.approx(float(expected), abs=1e-6)


def test_the_batched_contest_answers_as_the_two_passes_run_one_by_one():
    """A random-init tiny network: the contest's global and local views as one batch of two give
    the same choices, and boxes and κ within float noise, as two separate network calls."""
    from mvlm.track.spec import TrackerSpec
    from mvlm.track.tracker import build_tracker

    spec = TrackerSpec(model_preset="tiny", compat="corrected", seed=0,
                       overrides=("tau=10", "global_vs_local=true", "refine_global=true"))
    batched, alone = build_tracker(spec).tracker, build_tracker(spec).tracker
    one_by_one = alone._passes
    alone._passes = lambda img, requests: [one_by_one(img, [r])[0] for r in requests]
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(4)]
    results = []
    for tracker in (batched, alone):
        tracker.initialize(frames[0], "the red block")
        results.append([tracker.track(f) for f in frames[1:]])
    for a, b in zip(*results):
        assert a.contested and b.contested and (a.mode, a.top1, a.refined) == (b.mode, b.top1, b.refined)
        np.testing.assert_allclose(a.box, b.box, atol=1e-3)
        assert a.kappa == pytest.approx(b.kappa, abs=1e-5)


# --------------------------------------------------------------------------------------------
# the two layers


def test_the_paper_tracker_refuses_extension_settings_and_create_tracker_picks_the_class():
    model_cfg = model_config({"template_free": True}, preset="tiny")
    for settings in ({"size_damping": 0.5}, {"global_vs_local": True}, {"refine_global": True},
                     {"shot_cut_threshold": 0.25}, {"target_scale_tiles": True}):
        cfg = tracker_config(settings)
        with pytest.raises(ConfigError, match=next(iter(settings))):
            MVLMTracker(StubNet(maps()), model_cfg, cfg)
        assert type(create_tracker(StubNet(maps()), model_cfg, cfg)) is ExtendedTracker
        assert type(ExtendedTracker(StubNet(maps()), model_cfg, cfg)) is ExtendedTracker
    paper = tracker_config({"compat": "corrected", "hysteresis": 3, "tile_select": "score"})
    assert type(create_tracker(StubNet(maps()), model_cfg, paper)) is MVLMTracker


@pytest.mark.parametrize("name", ["global_zoom", "contest_margin", "exit_watch"])
def test_rejected_switches_are_gone(name):
    with pytest.raises(ConfigError, match="unknown key"):
        tracker_config({name: 1})


def test_hysteresis_is_one_in_both_compat_modes_unless_set():
    for compat in ("reference", "corrected"):
        assert resolve_switches(tracker_config({"compat": compat}))["hysteresis"] == 1
        assert resolve_switches(tracker_config({"compat": compat, "hysteresis": 1}))["hysteresis"] == 1
        assert resolve_switches(tracker_config({"compat": compat, "hysteresis": 4}))["hysteresis"] == 4
