"""Smoke test on real benchmark frames: box + language tracking with a random-init tiny network
writes result files that the metrics code reads (the numbers mean nothing: random weights)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from mvlm.evaluate.results import read_results
from mvlm.evaluate.runner import RunOptions, run_dataset
from mvlm.track.tracker import TrackerSpec

FRAMES = 8


def _first_frames(seq, n=FRAMES, sentence="the target"):
    vis = None if seq.visible is None else seq.visible[:n]
    return dataclasses.replace(seq, frames=seq.frames[:n], boxes=seq.boxes[:n], visible=vis,
                               language=seq.language or sentence, problems=[])


@pytest.mark.slow
@pytest.mark.real_data
def test_box_and_language_tracking_on_real_sequences(real_data, tmp_path):
    from mvlm.data.benchmarks import load_dataset
    from mvlm.evaluate.scoring import score_dataset

    seqs = [_first_frames(s) for s in load_dataset("lasot", real_data / "lasot")]
    seqs += [_first_frames(s, sentence="a bag blown by the wind") for s in load_dataset("vot", real_data / "vot")]
    seqs += [_first_frames(s, sentence="the person walking") for s in load_dataset("otb", real_data / "otb")
             if s.name in ("Couple", "Girl")]
    assert {s.name for s in seqs} == {"airplane-1", "bag", "Couple", "Girl"}
    spec = TrackerSpec(model_preset="tiny", tracker_preset="bbox", compat="reference", seed=0)
    summary = run_dataset(seqs, tmp_path, spec, options=RunOptions(init="box"))
    assert not summary["failed"] and len(summary["done"]) == 4
    for seq in seqs:
        boxes = read_results(tmp_path / f"{seq.name}.txt")
        h, w = seq.read_frame(0).shape[:2]
        assert boxes.shape == (FRAMES, 4)
        np.testing.assert_allclose(boxes[0], seq.boxes[0], atol=1e-4)  # box mode: frame 1 = given box
        assert (boxes[1:, 0] >= 0).all() and (boxes[1:, 0] + boxes[1:, 2] <= w + 1e-3).all()
        assert (boxes[1:, 1] >= 0).all() and (boxes[1:, 1] + boxes[1:, 3] <= h + 1e-3).all()
        meta = json.loads((tmp_path / f"{seq.name}_meta.json").read_text())
        assert meta["mode"][0] == "init" and set(meta["mode"][1:]) <= {"local", "global"}
    scores = score_dataset(seqs, tmp_path, dataset="real-smoke")
    assert not scores.failures and scores.names == [s.name for s in seqs]
    assert scores.success.shape[0] == 4 and np.isfinite(scores.success).all()
