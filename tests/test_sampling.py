"""Training samples: geometry of local/global/absent views, flips, templates, determinism, splits."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mvlm.config import SamplingConfig
from mvlm.data.crops import global_view
from mvlm.data.sampling import (
    StepBatches,
    TrainingSampler,
    collate,
    swap_left_right,
)
from mvlm.data.sequence import DataError, Sequence

W, H = 96, 64


def make_sequence(root: Path, name: str, boxes, visible=None, sentence="the red box on the left") -> Sequence:
    """Grey frames with a pure red rectangle at each box (x, y, w, h in pixels)."""
    folder = root / name
    folder.mkdir(parents=True)
    frames = []
    for i, (x, y, w, h) in enumerate(boxes):
        img = np.full((H, W, 3), 90, np.uint8)
        if visible is None or visible[i]:
            img[int(y):int(y + h), int(x):int(x + w)] = (255, 0, 0)
        path = folder / f"{i:08d}.png"
        cv2.imwrite(str(path), img[:, :, ::-1])
        frames.append(path)
    return Sequence(name, frames, np.asarray(boxes, float), sentence,
                    None if visible is None else np.asarray(visible, bool), dataset="toy")


def cfg(**kw) -> SamplingConfig:
    base = dict(center_jitter=0.0, scale_jitter=0.0, hflip=0.0, brightness_jitter=0.0, frame_cache_mb=8)
    base.update(kw)
    return SamplingConfig(**base)


@pytest.fixture()
def seq(tmp_path):
    boxes = [[20 + 4 * i, 16, 8, 8] for i in range(6)]
    return make_sequence(tmp_path, "toy-1", boxes)


def test_swap_left_right_words_and_case():
    assert swap_left_right("the car left of the bus, moving right") == "the car right of the bus, moving left"
    assert swap_left_right("Left hand; RIGHTMOST cup; leftwards") == "Right hand; LEFTMOST cup; rightwards"
    assert swap_left_right("copyright alright bright") == "copyright alright bright"


def test_local_view_without_jitter_centres_the_box(seq):
    sampler = TrainingSampler({"toy": [seq]}, cfg(local_share=1.0, global_share=0.0), 64, 32)
    s = sampler.sample(0, 0, 3)
    # 8x8 box, factor 4: side 32 px -> 64 px view, scale 2: box 16 px = 0.25 of the view
    assert s.kind == "local" and s.present and s.search.shape == (64, 64, 3) and s.templates == []
    np.testing.assert_allclose(s.box, [0.5, 0.5, 0.25, 0.25], atol=1e-6)
    assert tuple(s.search[32, 32]) == (255, 0, 0) and tuple(s.search[5, 5]) == (90, 90, 90)
    assert s.sentence == "the red box on the left"


def test_local_jitter_keeps_box_consistent_with_pixels(seq):
    sampler = TrainingSampler({"toy": [seq]}, cfg(local_share=1.0, global_share=0.0, center_jitter=3.0,
                                                   scale_jitter=0.25), 64, 32)
    for i in range(20):
        s = sampler.sample(1, 0, i)
        if not s.present:
            continue
        cx, cy = int(s.box[0] * 64), int(s.box[1] * 64)
        assert tuple(s.search[cy, cx]) == (255, 0, 0), (i, s.box)


@pytest.mark.parametrize("letterbox", [0.0, 1.0])
def test_global_view_box_matches_view_transform(seq, letterbox):
    sampler = TrainingSampler({"toy": [seq]}, cfg(local_share=0.0, global_share=1.0, absent_share=0.0,
                                                   letterbox_share=letterbox), 64, 32)
    s = sampler.sample(0, 0, 0)
    idx = int(s.source.rsplit("#", 1)[1])
    view, t = global_view(seq.read_frame(idx), 64, letterbox=bool(letterbox))
    x, y, w, h = t.to_view(seq.boxes[idx])
    assert s.kind == "global" and s.present
    np.testing.assert_allclose(s.box, [(x + w / 2) / 64, (y + h / 2) / 64, w / 64, h / 64], atol=1e-6)
    np.testing.assert_array_equal(s.search, view)
    if not letterbox:  # stretched: the box is just the frame fraction
        np.testing.assert_allclose(s.box[2:], [8 / W, 8 / H], atol=1e-6)


def test_absent_uses_invisible_frames_when_the_sequence_has_them(tmp_path):
    seq = make_sequence(tmp_path, "occ-1", [[30, 20, 10, 10]] * 4, visible=[1, 0, 1, 0])
    sampler = TrainingSampler({"toy": [seq]}, cfg(local_share=0.0, global_share=1.0, absent_share=1.0), 64, 32)
    for i in range(6):
        s = sampler.sample(0, 0, i)
        assert s.kind == "absent" and not s.present and not s.box.any()
        assert int(s.source.rsplit("#", 1)[1]) in (1, 3)
        assert not (s.search == (255, 0, 0)).all(axis=2).any()


def test_absent_crop_away_never_shows_the_target(seq):
    sampler = TrainingSampler({"toy": [seq]}, cfg(local_share=0.0, global_share=1.0, absent_share=1.0), 64, 32)
    kinds = set()
    for i in range(10):
        s = sampler.sample(0, 0, i)
        kinds.add(s.kind)
        if s.kind == "absent":
            assert not s.present and not (s.search[..., 0] > 200).any()
    assert "absent" in kinds


def test_hflip_mirrors_image_box_and_sentence(seq):
    plain = TrainingSampler({"toy": [seq]}, cfg(local_share=0.0, global_share=1.0, absent_share=0.0,
                                                 letterbox_share=0.0), 64, 32)
    flip = TrainingSampler({"toy": [seq]}, cfg(local_share=0.0, global_share=1.0, absent_share=0.0,
                                                letterbox_share=0.0, hflip=1.0), 64, 32)
    a, b = plain.sample(5, 1, 2), flip.sample(5, 1, 2)
    np.testing.assert_array_equal(b.search, a.search[:, ::-1])
    assert b.box[0] == pytest.approx(1 - a.box[0]) and np.allclose(b.box[1:], a.box[1:])
    assert b.sentence == "the red box on the right"


def test_templates_in_bbox_mode_are_box_crops(seq):
    sampler = TrainingSampler({"toy": [seq]}, cfg(max_gap=1), 64, 32, num_templates=2)
    s = sampler.sample(0, 0, 0)
    assert len(s.templates) == 2 and all(t.shape == (32, 32, 3) for t in s.templates)
    for t in s.templates:  # factor 2 around an 8 px box: the box fills the central half
        assert tuple(t[16, 16]) == (255, 0, 0) and tuple(t[2, 2]) == (90, 90, 90)
    batch = collate([sampler.sample(0, 0, i) for i in range(3)])
    assert batch.search.shape == (3, 6, 64, 64) and [t.shape for t in batch.templates] == [(3, 6, 32, 32)] * 2
    assert batch.boxes.shape == (3, 4) and batch.present.dtype.is_floating_point is False


def test_samples_are_a_function_of_seed_epoch_index(seq):
    sampler = TrainingSampler({"toy": [seq]}, SamplingConfig(frame_cache_mb=0), 64, 32)
    a, b = sampler.sample(3, 2, 7), sampler.sample(3, 2, 7)
    np.testing.assert_array_equal(a.search, b.search)
    assert a.source == b.source and np.array_equal(a.box, b.box)
    others = [sampler.sample(3, e, i) for e, i in [(2, 8), (3, 7)]]
    assert any(not np.array_equal(a.search, o.search) for o in others)


def test_kind_shares_follow_config(seq):
    sampler = TrainingSampler({"toy": [seq]}, cfg(local_share=0.5, global_share=0.5, absent_share=0.5), 64, 32)
    kinds = [sampler.sample(0, 0, i).kind for i in range(400)]
    share = {k: kinds.count(k) / len(kinds) for k in ("local", "global", "absent")}
    assert share["local"] == pytest.approx(0.5, abs=0.08)
    assert share["absent"] == pytest.approx(0.25, abs=0.08)


def test_dataset_ratios(tmp_path):
    a = make_sequence(tmp_path, "a-1", [[10, 10, 8, 8]] * 2, sentence="a")
    b = make_sequence(tmp_path, "b-1", [[10, 10, 8, 8]] * 2, sentence="b")
    sampler = TrainingSampler({"a": [a], "b": [b]}, cfg(dataset_ratios={"a": 3.0, "b": 1.0}), 64, 32)
    sentences = [sampler.sample(0, 0, i).sentence for i in range(400)]
    assert sentences.count("a") / 400 == pytest.approx(0.75, abs=0.07)
    with pytest.raises(ValueError, match="unknown dataset 'c'"):
        TrainingSampler({"a": [a]}, cfg(dataset_ratios={"c": 1.0}), 64, 32)


def test_step_batches_split_ranks_like_one_process(seq):
    sampler = TrainingSampler({"toy": [seq]}, SamplingConfig(), 64, 32)
    one = StepBatches(sampler, 0, 8, steps_per_epoch=3, total_steps=6)
    ranks = [StepBatches(sampler, 0, 8, 3, 6, rank=r, world_size=2) for r in range(2)]
    for step in (0, 4):
        epoch, idx = one.indices(step)
        parts = [r.indices(step) for r in ranks]
        assert [p[0] for p in parts] == [epoch, epoch]
        assert list(parts[0][1]) + list(parts[1][1]) == list(idx)
    assert one.indices(4) == (1, range(8, 16))
    b0 = ranks[1][4]
    assert len(b0) == 4 and b0.search.shape == (4, 6, 64, 64)
    with pytest.raises(ValueError, match="not divisible"):
        StepBatches(sampler, 0, 9, 3, 6, rank=0, world_size=2)


def test_bad_sequences_give_clear_errors(tmp_path):
    silent = make_sequence(tmp_path, "s-1", [[10, 10, 8, 8]] * 2, sentence="  ")
    with pytest.raises(DataError, match="no usable training sequence.*s-1: no sentence"):
        TrainingSampler({"toy": [silent]}, SamplingConfig(), 64, 32)
    broken = make_sequence(tmp_path, "c-1", [[10, 10, 8, 8]], sentence="x")
    broken.frames[0].write_bytes(b"not an image")
    sampler = TrainingSampler({"toy": [broken]}, SamplingConfig(), 64, 32)
    with pytest.raises(DataError, match="00000000.png: cannot decode"):
        sampler.sample(0, 0, 0)


def test_tile_starts_cover_the_frame_at_half_window_stride():
    from mvlm.data.crops import tile_starts

    assert tile_starts(256, 128) == [0.0, 64.0, 128.0]
    assert tile_starts(192, 128) == [0.0, 64.0]
    assert tile_starts(200, 64) == pytest.approx([0.0, 27.2, 54.4, 81.6, 108.8, 136.0])  # stride ≤ 32
    assert tile_starts(100, 128) == [-14.0]  # a frame smaller than the window: one centred window


def test_tile_views_show_the_frame_at_the_zoom(seq):
    from mvlm.data.crops import tile_views

    image = seq.read_frame(0)  # 96x64, red 8x8 box at (20, 16)
    tiles = tile_views(image, 64, zoom=2.0)  # windows of 32 frame px
    assert len(tiles) == 5 * 3 and all(v.shape == (64, 64, 3) for v, _ in tiles)
    first, t = tiles[0]
    assert (t.origin_x, t.origin_y, t.scale_x) == (0.0, 0.0, 2.0)
    x, y, w, h = t.to_view(seq.boxes[0])
    assert (x, y, w, h) == (40.0, 32.0, 16.0, 16.0)
    assert (first[33:47, 41:55] == (255, 0, 0)).all()  # the box, twice as large
    with pytest.raises(ValueError, match="zoom"):
        tile_views(image, 64, zoom=0.0)


def test_neutral_sentence_share(seq):
    never = TrainingSampler({"toy": [seq]}, cfg(), 64, 32, num_templates=2)
    always = TrainingSampler({"toy": [seq]}, cfg(neutral_sentence_share=1.0, neutral_sentence="the target"),
                             64, 32, num_templates=2)
    half = TrainingSampler({"toy": [seq]}, cfg(neutral_sentence_share=0.5), 64, 32, num_templates=2)
    assert {never.sample(0, 0, i).sentence for i in range(20)} == {"the red box on the left"}
    assert {always.sample(0, 0, i).sentence for i in range(20)} == {"the target"}
    neutral = sum(half.sample(0, 0, i).sentence == "the target" for i in range(200))
    assert 70 <= neutral <= 130
    # images, boxes and templates are the ones the sentence-only sampler draws
    a, b = never.sample(0, 0, 3), always.sample(0, 0, 3)
    np.testing.assert_array_equal(a.search, b.search)
    np.testing.assert_array_equal(a.box, b.box)
    np.testing.assert_array_equal(a.templates[0], b.templates[0])


@pytest.mark.parametrize("key,value", [("neutral_sentence_share", 1.5), ("neutral_sentence_share", -0.1)])
def test_bad_view_options_name_the_key(seq, key, value):
    with pytest.raises(ValueError, match=f"sampling.{key}"):
        TrainingSampler({"toy": [seq]}, cfg(**{key: value}), 64, 32)
