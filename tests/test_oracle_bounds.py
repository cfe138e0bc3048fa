"""scripts/oracle_bounds.py: tracking with ground-truth handovers, on embedded-benchmark sequences
with absences and a camera cut, random-init tiny networks."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mvlm.data.benchmarks import load_dataset
from mvlm.data.sequence import Sequence
from mvlm.data.synthetic.dataset import generate_dataset
from mvlm.evaluate.results import read_results
from mvlm.evaluate.runner import RunOptions, track_sequence
from mvlm.track.tracker import TrackerSpec, build_tracker

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "oracle_bounds.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("oracle_bounds", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


oracle = _load_script()


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    # seed 11 at 30 frames: every sequence loses its target for a while, one has a camera cut
    root = tmp_path_factory.mktemp("oracle") / "split"
    generate_dataset(root, sequences=3, seed=11, size=(128, 96), frames=30, split="test")
    return load_dataset("lasot", root)


def _tracker(mode: str):
    spec = TrackerSpec(model_preset="tiny", tracker_preset=mode, compat="corrected", seed=0)
    return build_tracker(spec).tracker


def _flags(seq, name: str) -> np.ndarray:
    text = (Path(seq.meta["path"]) / name).read_text()
    return np.array([int(v) for v in text.replace("\n", ",").split(",") if v.strip()], bool)


def _reappearances(seq, kinds=("cut", "occlusion", "exit")) -> list[int]:
    shots = json.loads((Path(seq.meta["path"]) / "meta.json").read_text())["shots"]
    cuts = {s["first"] for s in shots[1:]} if "cut" in kinds else set()
    occluded, out = _flags(seq, "full_occlusion.txt"), _flags(seq, "out_of_view.txt")
    vis = seq.visible
    return [i for i in range(1, len(vis)) if vis[i] and (
        i in cuts or ("occlusion" in kinds and occluded[i - 1]) or ("exit" in kinds and out[i - 1]))]


def test_the_fixture_has_the_events_the_oracle_reacts_to(sequences):
    assert all((~s.visible).any() for s in sequences)
    assert sum(len(oracle.shot_starts(s)) for s in sequences) >= 1
    # a sequence of another benchmark has no meta.json: no cuts known
    assert oracle.shot_starts(Sequence(name="real", frames=[], boxes=np.zeros((0, 4)))) == set()


@pytest.mark.parametrize("mode", ["tf", "bbox"])
def test_no_oracle_is_the_evaluated_tracker(sequences, mode):
    seq = sequences[0]
    boxes, handovers = oracle.track_with_oracle(_tracker(mode), seq, "none")
    expected, _ = track_sequence(_tracker(mode), seq, RunOptions(prefetch=0), {})
    assert handovers == 0
    np.testing.assert_allclose(boxes, expected, atol=1e-9)


@pytest.mark.parametrize("mode", ["tf", "bbox"])
def test_events_hand_over_once_per_reappearance(sequences, mode):
    tracker = _tracker(mode)
    for seq in sequences:
        _, handovers = oracle.track_with_oracle(tracker, seq, "events")
        # the template-free tracker also starts from the first GT box
        assert handovers == len(_reappearances(seq)) + (mode == "tf")


@pytest.mark.parametrize("kinds", [("cut",), ("occlusion",), ("exit",), ("occlusion", "exit")])
def test_events_of_one_kind_hand_over_only_there(sequences, kinds):
    tracker = _tracker("bbox")
    counts = [oracle.track_with_oracle(tracker, seq, "events", events=kinds)[1] for seq in sequences]
    assert counts == [len(_reappearances(seq, kinds)) for seq in sequences]


def test_no_event_kind_leaves_only_the_template_free_first_frame(sequences):
    tracker = _tracker("tf")
    assert [oracle.track_with_oracle(tracker, seq, "events", events=())[1] for seq in sequences] == [1, 1, 1]


def test_absence_causes_read_from_the_lasot_flag_files(sequences):
    for seq in sequences:
        causes = oracle.absences(seq)
        np.testing.assert_array_equal(causes["occlusion"], _flags(seq, "full_occlusion.txt"))
        np.testing.assert_array_equal(causes["occlusion"] | causes["exit"], ~seq.visible)
    # without the flag files every absence counts as both causes
    bare = Sequence(name="bare", frames=[Path("a.jpg")] * 3, boxes=np.zeros((3, 4)),
                    visible=np.array([True, False, True]))
    assert oracle.absences(bare)["exit"].tolist() == [False, True, False]


def test_lost_hands_over_after_every_frame_under_the_iou_and_moves_the_tracker(sequences):
    tracker = _tracker("bbox")
    seq = sequences[1]
    boxes, handovers = oracle.track_with_oracle(tracker, seq, "lost", lost_iou=1.01)
    assert handovers == int(seq.visible[1:].sum())
    last_visible = int(np.flatnonzero(seq.visible)[-1])
    if last_visible == len(seq.frames) - 1:
        np.testing.assert_allclose(tracker.state, seq.boxes[-1])
        assert tracker.mode == "local" and tracker.memory is None
    # under a threshold that no IoU is below, nothing is handed over: the evaluated tracker
    boxes_none, _ = oracle.track_with_oracle(_tracker("bbox"), seq, "lost", lost_iou=0.0)
    expected, _ = track_sequence(_tracker("bbox"), seq, RunOptions(prefetch=0), {})
    np.testing.assert_allclose(boxes_none, expected, atol=1e-9)


def test_oracle_bounds_writes_results_and_a_scored_summary(sequences, tmp_path):
    spec = TrackerSpec(model_preset="tiny", tracker_preset="bbox", compat="corrected", seed=0,
                       overrides=("tau=-1.0",))
    summary = oracle.oracle_bounds(spec, sequences, tmp_path, "events")
    assert summary["mode"] == "bbox" and summary["oracle"] == "events"
    assert summary["frames"] == sum(len(s.frames) for s in sequences)
    assert summary["handovers"] == sum(len(_reappearances(s)) for s in sequences)
    assert 0.0 <= summary["auc"] <= 100.0
    assert json.loads((tmp_path / "oracle_summary.json").read_text()) == summary
    for seq in sequences:
        assert read_results(tmp_path / f"{seq.name}.txt").shape == (len(seq.frames), 4)


def test_a_broken_sequence_is_reported_and_the_others_are_scored(sequences, tmp_path):
    broken = Sequence(name="broken", frames=[tmp_path / "missing.jpg"], boxes=np.array([[1.0, 1.0, 8.0, 8.0]]),
                      language="the red block", visible=np.array([True]))
    spec = TrackerSpec(model_preset="tiny", tracker_preset="bbox", compat="corrected", seed=0)
    summary = oracle.oracle_bounds(spec, [broken, *sequences], tmp_path / "out", "none")
    assert list(summary["failures"]) == ["broken"] and "missing.jpg" in summary["failures"]["broken"]
    assert summary["sequences"] == len(sequences)
    assert summary["frames"] == sum(len(s.frames) for s in sequences)
    assert not (tmp_path / "out" / "broken.txt").exists()
