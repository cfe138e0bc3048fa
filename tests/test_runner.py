"""The evaluation runner on small on-disk sequences with a random-init tiny network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mvlm.data.sequence import Sequence
from mvlm.evaluate.results import read_results
from mvlm.evaluate.runner import RunOptions, run_dataset, sequences_subset
from mvlm.track.tracker import TrackerSpec

SPEC = TrackerSpec(model_preset="tiny", compat="corrected", seed=0)


def make_sequence(root: Path, name: str, frames: int = 5, h: int = 72, w: int = 96, seed: int = 0) -> Sequence:
    import cv2

    rng = np.random.default_rng(seed)
    folder = root / name / "img"
    folder.mkdir(parents=True)
    boxes = []
    for i in range(frames):
        img = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
        x, y = 10 + 3 * i, 20 + i
        img[y:y + 16, x:x + 20] = (220, 30, 30)
        cv2.imwrite(str(folder / f"{i + 1:08d}.jpg"), img)
        boxes.append([x, y, 20, 16])
    paths = sorted(folder.glob("*.jpg"))
    return Sequence(name=name, frames=paths, boxes=np.array(boxes, float), language="red block", dataset="unit")


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    root = tmp_path_factory.mktemp("seqs")
    return [make_sequence(root, f"seq{i}", seed=i) for i in range(3)]


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("seq*.txt"))}


def test_run_writes_results_meta_and_resumes_identically(sequences, tmp_path):
    out = tmp_path / "run"
    summary = run_dataset(sequences, out, SPEC, options=RunOptions(init="language"))
    assert summary["done"] == ["seq0", "seq1", "seq2"] and not summary["failed"]
    for seq in sequences:
        boxes = read_results(out / f"{seq.name}.txt")
        assert boxes.shape == (5, 4) and np.isfinite(boxes).all() and (boxes[:, 2:] >= 10).all()
        meta = json.loads((out / f"{seq.name}_meta.json").read_text())
        assert meta["init"] == "language" and meta["frame1_source"] == "global_pass"
        assert meta["mode"][0] == "global" and len(meta["kappa"]) == 5 and meta["complete"]
        assert meta["shot_cut"] == [False] * 5 and len(meta["contested"]) == 5
        assert meta["refined"] == [False] * 5  # refine_global is off in the config default
        assert meta["config"]["random_init"] and meta["config"]["tracker"]["compat"] == "corrected"
        assert np.allclose(meta["frame1_box"], boxes[0], atol=1e-4)
    first = snapshot(out)
    # simulate a kill: one result gone, one meta truncated mid-write
    (out / "seq0.txt").unlink()
    meta1 = out / "seq1_meta.json"
    meta1.write_text(meta1.read_text()[:40])
    again = run_dataset(sequences, out, SPEC, resume=True, options=RunOptions(init="language"))
    assert sorted(again["done"]) == ["seq0", "seq1"] and again["skipped"] == ["seq2"]
    assert snapshot(out) == first
    assert json.loads((out / "summary.json").read_text())["skipped"] == ["seq2"]


def test_resume_tracks_again_what_other_settings_made(sequences, tmp_path):
    out = tmp_path / "run"
    options = RunOptions(init="language", max_frames=3)
    first = run_dataset(sequences, out, SPEC, options=options)
    assert first["stale"] == []
    first_files = snapshot(out)
    other = TrackerSpec(model_preset="tiny", compat="corrected", seed=0, overrides=("gate=always_global",))
    resumed = run_dataset(sequences, out, other, resume=True, options=options)
    assert resumed["stale"] == ["seq0", "seq1", "seq2"] and resumed["skipped"] == []
    assert sorted(resumed["done"]) == ["seq0", "seq1", "seq2"]
    (kept,) = (out / "stale").iterdir()  # the earlier results are set aside, not deleted
    assert snapshot(kept) == first_files and len(list(kept.glob("seq*_meta.json"))) == 3
    fresh = tmp_path / "fresh"
    run_dataset(sequences, fresh, other, options=options)
    assert snapshot(out) == snapshot(fresh)
    for seq in sequences:
        meta = json.loads((out / f"{seq.name}_meta.json").read_text())
        assert meta["config"]["tracker"]["gate"] == "always_global" and meta["mode"] == ["global"] * 3
    again = run_dataset(sequences, out, other, resume=True, options=options)
    assert again["skipped"] == ["seq0", "seq1", "seq2"] and again["stale"] == [] and again["done"] == []
    # another sentence for one sequence: only that one is tracked again
    renamed = [sequences[0], Sequence(name="seq1", frames=sequences[1].frames, boxes=sequences[1].boxes,
                                      language="blue block", dataset="unit"), sequences[2]]
    changed = run_dataset(renamed, out, other, resume=True, options=options)
    assert changed["stale"] == ["seq1"] and changed["done"] == ["seq1"] and changed["skipped"] == ["seq0", "seq2"]
    assert json.loads((out / "seq1_meta.json").read_text())["language"] == "blue block"


def test_meta_records_which_frames_were_refined(sequences, tmp_path):
    spec = TrackerSpec(model_preset="tiny", compat="corrected", seed=0,
                       overrides=("refine_global=true", "gate=always_global"))
    run_dataset(sequences[:1], tmp_path / "out", spec, options=RunOptions(init="language"))
    meta = json.loads((tmp_path / "out" / "seq0_meta.json").read_text())
    assert meta["config"]["tracker"]["refine_global"] is True
    assert meta["refined"] == [True] * 5 and meta["mode"] == ["global"] * 5


def test_failed_sequence_is_recorded_and_the_rest_go_on(sequences, tmp_path):
    broken = Sequence(name="broken", frames=[tmp_path / "missing.jpg"], boxes=np.array([[1, 1, 5, 5]]),
                      language="x")
    summary = run_dataset([broken, sequences[0]], tmp_path / "out", SPEC, options=RunOptions(init="box"))
    assert summary["failed"] == ["broken"] and summary["done"] == ["seq0"]
    failures = json.loads((tmp_path / "out" / "failures.json").read_text())
    assert failures[0]["sequence"] == "broken" and "missing.jpg" in failures[0]["error"]
    meta = json.loads((tmp_path / "out" / "seq0_meta.json").read_text())
    assert meta["init"] == "box" and meta["frame1_box"] == [10.0, 20.0, 20.0, 16.0]


def test_results_only_runs_track_sequences_whose_gt_is_hidden(sequences, tmp_path):
    """A split whose GT is withheld (MGIT test): refused when GT is required (a scored run),
    tracked on every frame in a results-only run; a box start still needs its first box."""
    import dataclasses

    hidden = dataclasses.replace(sequences[0], name="hidden", boxes=np.zeros((0, 4)))
    scored = run_dataset([hidden], tmp_path / "scored", SPEC, options=RunOptions(init="language"))
    assert scored["failed"] == ["hidden"]
    assert "no GT boxes" in json.loads((tmp_path / "scored" / "failures.json").read_text())[0]["error"]
    only = run_dataset([hidden], tmp_path / "only", SPEC, options=RunOptions(init="language", require_gt=False))
    assert only["done"] == ["hidden"] and read_results(tmp_path / "only" / "hidden.txt").shape == (5, 4)
    box = run_dataset([hidden], tmp_path / "box", SPEC, options=RunOptions(init="box", require_gt=False))
    assert box["failed"] == ["hidden"]
    assert "no GT box for the first frame" in json.loads((tmp_path / "box" / "failures.json").read_text())[0]["error"]


def test_box_mode_is_required_for_template_presets(sequences, tmp_path):
    spec = TrackerSpec(model_preset="tiny", tracker_preset="bbox", compat="reference")
    summary = run_dataset(sequences[:1], tmp_path, spec, options=RunOptions(init="language"))
    assert summary["failed"] == ["seq0"]
    assert "needs --init box" in json.loads((tmp_path / "failures.json").read_text())[0]["error"]


def test_torchrun_rank_takes_its_share(sequences, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    summary = run_dataset(sequences, tmp_path, SPEC, options=RunOptions(max_frames=2))
    assert summary["done"] == ["seq1"] and summary["world_size"] == 2
    assert (tmp_path / "summary.rank1.json").is_file() and not (tmp_path / "seq0.txt").exists()


def test_sequence_subset_names_unknown_ones(sequences):
    assert [s.name for s in sequences_subset(sequences, ["seq2", "seq0"])] == ["seq2", "seq0"]
    with pytest.raises(ValueError, match="nope"):
        sequences_subset(sequences, ["nope"])


@pytest.mark.slow
def test_two_workers_give_the_same_files(sequences, tmp_path):
    one = run_dataset(sequences, tmp_path / "one", SPEC, workers=1, options=RunOptions(max_frames=3))
    two = run_dataset(sequences, tmp_path / "two", SPEC, workers=2, options=RunOptions(max_frames=3))
    assert sorted(two["done"]) == one["done"] and two["workers"] == 2
    for name in one["done"]:
        np.testing.assert_allclose(read_results(tmp_path / "two" / f"{name}.txt"),
                                   read_results(tmp_path / "one" / f"{name}.txt"), atol=1e-3)


@pytest.mark.slow
def test_cli_synth_evaluate_resume_score(tmp_path):
    """`mvlm synth` -> `mvlm evaluate` -> kill simulation -> `--resume` -> identical files -> `mvlm score`."""
    from mvlm.cli import main

    data, out = tmp_path / "synth", tmp_path / "results"
    assert main(["synth", "--out", str(data), "--sequences", "3", "--seed", "5", "--frames", "16",
                 "--size", "128x96", "--workers", "1"]) == 0
    args = ["evaluate", "--dataset", "lasot", "--root", str(data), "--out", str(out), "--quiet",
            "--compat", "corrected", "--set", "hysteresis=2"]
    assert main(args) == 0
    first = {p.name: p.read_bytes() for p in sorted(out.glob("*.txt"))}
    assert len(first) == 3
    victims = sorted(first)[:2]
    (out / victims[0]).unlink()
    (out / victims[1]).write_text("1,2,3,4\n")  # truncated by the "kill"
    assert main(args + ["--resume"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["done"]) == sorted(v[:-4] for v in victims) and len(summary["skipped"]) == 1
    assert {p.name: p.read_bytes() for p in sorted(out.glob("*.txt"))} == first
    meta = json.loads((out / f"{victims[0][:-4]}_meta.json").read_text())
    assert meta["config"]["tracker"]["hysteresis"] == 2 and meta["config"]["random_init"]
    assert main(["score", "--dataset", "lasot", "--root", str(data), "--results", str(out),
                 "--json", str(tmp_path / "scores.json")]) == 0
    assert (tmp_path / "scores.json").is_file()


def test_prefetched_keeps_order_and_raises_at_the_failing_item():
    from mvlm.data.image import prefetched

    assert list(prefetched(range(7), lambda k: k * k, depth=2)) == [k * k for k in range(7)]
    assert list(prefetched(range(3), lambda k: -k, depth=0)) == [0, -1, -2]

    def load(k):
        if k == 3:
            raise ValueError(f"frame {k} is broken")
        return k

    got = []
    with pytest.raises(ValueError, match="frame 3 is broken"):
        for value in prefetched(range(6), load, depth=2):
            got.append(value)
    assert got == [0, 1, 2]  # everything before the broken frame was delivered


def test_prefetch_gives_the_same_files_as_reading_in_the_loop(sequences, tmp_path):
    a = run_dataset(sequences[:2], tmp_path / "a", SPEC, options=RunOptions(init="box", prefetch=0))
    b = run_dataset(sequences[:2], tmp_path / "b", SPEC, options=RunOptions(init="box", prefetch=2))
    assert a["done"] == b["done"] == ["seq0", "seq1"]
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")


def test_decode_rgb_names_the_source_of_bad_bytes(tmp_path):
    import cv2

    from mvlm.data.image import decode_rgb, read_rgb
    from mvlm.data.sequence import DataError

    bgr = np.zeros((4, 6, 3), np.uint8)
    bgr[..., 2] = 255  # red in OpenCV's BGR order
    ok, png = cv2.imencode(".png", bgr)
    rgb = decode_rgb(png.tobytes())
    assert rgb.shape == (4, 6, 3) and rgb[0, 0].tolist() == [255, 0, 0]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="bad.jpg: cannot decode"):
        read_rgb(bad)
    with pytest.raises(DataError, match="clip-7: cannot decode"):
        decode_rgb(b"", "clip-7")


def test_fill_missing_language_keeps_own_sentences():
    from mvlm.data.sequence import fill_missing_language

    own = Sequence(name="a", frames=[], boxes=np.ones((1, 4)), language="the red car")
    bare = Sequence(name="b", frames=[], boxes=np.ones((1, 4)), language="  ")
    fill_missing_language([own, bare], None)
    assert bare.language == "  "
    fill_missing_language([own, bare], "the tracked object")
    assert own.language == "the red car" and bare.language == "the tracked object"


def test_cli_evaluate_default_text_for_a_benchmark_without_sentences(tmp_path):
    """Plain OTB carries no sentence: the sequence fails by name unless --default-text gives one."""
    import cv2

    from mvlm.cli import main

    folder = tmp_path / "otb" / "Block"
    (folder / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        img = rng.integers(0, 80, (72, 96, 3), dtype=np.uint8)
        img[20 + i:36 + i, 10 + 2 * i:30 + 2 * i] = (30, 30, 220)
        cv2.imwrite(str(folder / "img" / f"{i + 1:04d}.jpg"), img)
    (folder / "groundtruth_rect.txt").write_text("".join(f"{11 + 2 * i}\t{21 + i}\t20\t16\n" for i in range(4)))
    args = ["evaluate", "--dataset", "otb99_lang", "--root", str(tmp_path / "otb"), "--out", str(tmp_path / "r"),
            "--quiet", "--preset", "bbox", "--compat", "corrected"]
    assert main(args) == 1
    failures = json.loads((tmp_path / "r" / "failures.json").read_text())
    assert failures[0]["sequence"] == "Block" and "no sentence" in failures[0]["error"]
    assert main(args + ["--default-text", "the tracked object", "--resume"]) == 0
    meta = json.loads((tmp_path / "r" / "Block_meta.json").read_text())
    assert meta["language"] == "the tracked object"
    assert len(read_results(tmp_path / "r" / "Block.txt")) == 4


def _tiny_checkpoint(path: Path, seed: int) -> str:
    import torch

    from mvlm.config import model_config
    from mvlm.model import save_checkpoint
    from mvlm.model.net import build_model

    torch.manual_seed(seed)
    return str(save_checkpoint(build_model(model_config(preset="tiny")), path, mode="tf"))


def test_results_of_the_same_tracker_and_weights_are_copied_not_rerun(sequences, tmp_path):
    from mvlm.evaluate.runner import reuse_identical_results

    checkpoint = _tiny_checkpoint(tmp_path / "net.safetensors", seed=0)
    spec = TrackerSpec(checkpoint=checkpoint, compat="corrected", overrides=("tau=0.5",))
    options = RunOptions(init="language")
    source = tmp_path / "evaluated"
    run_dataset(sequences[:2], source, spec, options=options)
    same = TrackerSpec(checkpoint=checkpoint, compat="corrected", overrides=("tau=0.5", "alpha=1.0"))  # α 1 = tf preset
    copied = reuse_identical_results(source, tmp_path / "variant", sequences, same, options)
    assert copied == ["seq0", "seq1"]  # seq2 was never evaluated
    assert snapshot(tmp_path / "variant") == snapshot(source)
    rerun = run_dataset(sequences, tmp_path / "variant", same, resume=True, options=options)
    assert rerun["skipped"] == ["seq0", "seq1"] and rerun["done"] == ["seq2"]
    assert reuse_identical_results(source, tmp_path / "variant", sequences, same, options) == []  # complete already

    other = TrackerSpec(checkpoint=checkpoint, compat="corrected", overrides=("tau=0.2",))
    assert reuse_identical_results(source, tmp_path / "other", sequences, other, options) == []
    _tiny_checkpoint(tmp_path / "net.safetensors", seed=1)  # same path, other weights
    assert reuse_identical_results(source, tmp_path / "retrained", sequences, spec, options) == []
    assert reuse_identical_results(tmp_path / "missing", tmp_path / "x", sequences, spec, options) == []


def test_describing_a_tracker_gives_the_description_its_build_records(tmp_path):
    import torch

    from mvlm.config import ConfigError
    from mvlm.track.spec import TrackerError, describe_tracker
    from mvlm.track.tracker import build_tracker

    checkpoint = _tiny_checkpoint(tmp_path / "net.safetensors", seed=0)
    specs = [
        TrackerSpec(checkpoint=checkpoint, compat="corrected", overrides=("tau=0.5", "size_damping=0.1")),
        TrackerSpec(checkpoint=checkpoint, compat="reference", tracker_preset="tf_tnl2k"),
        TrackerSpec(checkpoint=checkpoint, compat="corrected", checkpoint_model={"preset": "tiny"}),
        TrackerSpec(model_preset="tiny", compat="corrected", seed=3),
    ]
    for spec in specs:
        described = describe_tracker(spec)
        assert described.info == build_tracker(spec).info
    assert describe_tracker(specs[0]).info["checkpoint_sha256"] == build_tracker(specs[0]).info["checkpoint_sha256"]
    assert describe_tracker(specs[1]).tracker_cfg.preset == "tf_tnl2k"

    # a torch file's metadata sits inside its pickle: only a build reads it
    zipped = tmp_path / "net.pth.tar"
    torch.save({"net": build_tracker(specs[3]).tracker.net.state_dict()}, zipped)
    assert describe_tracker(TrackerSpec(checkpoint=str(zipped), checkpoint_model={"preset": "tiny"})) is None
    with pytest.raises(ConfigError, match="size_damping"):
        describe_tracker(TrackerSpec(checkpoint=checkpoint, overrides=("size_damping=0",)))
    with pytest.raises(TrackerError, match="missing.safetensors"):
        describe_tracker(TrackerSpec(checkpoint=str(tmp_path / "missing.safetensors")))


def test_the_process_that_hands_out_sequences_never_imports_torch(tmp_path):
    import subprocess
    import sys

    checkpoint = _tiny_checkpoint(tmp_path / "net.safetensors", seed=0)
    script = f"""
import sys
from mvlm import pipeline
from mvlm.evaluate import runner, scoring
from mvlm.track.spec import TrackerSpec
spec = TrackerSpec(checkpoint={checkpoint!r}, compat="corrected", overrides=("tau=0.5",))
assert runner._identity(spec, runner.RunOptions(init="language"))[1] == "language"
print(sorted(m for m in ("torch", "timm", "torchvision", "cv2") if m in sys.modules))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_a_broken_checkpoint_is_one_clear_error_before_any_worker_starts(sequences, tmp_path):
    from mvlm.model.metadata import CheckpointError

    checkpoint = Path(_tiny_checkpoint(tmp_path / "net.safetensors", seed=0))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(checkpoint.read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="truncated.safetensors"):
        run_dataset(sequences, tmp_path / "out", TrackerSpec(checkpoint=str(truncated)), workers=2,
                    options=RunOptions(max_frames=2))
    assert not (tmp_path / "out" / "seq0.txt").exists()


@pytest.mark.slow
def test_workers_that_cannot_build_the_tracker_report_every_sequence(sequences, tmp_path):
    """A readable header whose tensors do not fit the network: the workers fail to build it.
    Each sequence is reported failed with the file named, and the run ends (a raising pool
    initializer would be restarted forever)."""
    import subprocess
    import sys

    from safetensors.numpy import load_file, save_file
    from safetensors import safe_open

    good = _tiny_checkpoint(tmp_path / "net.safetensors", seed=0)
    with safe_open(good, framework="numpy") as fh:
        metadata = fh.metadata()
    tensors = load_file(good)
    tensors.pop(sorted(tensors)[0])
    misfit = tmp_path / "misfit.safetensors"
    save_file(tensors, str(misfit), metadata=metadata)
    root = sequences[0].frames[0].parents[2]
    script = f"""
import json, sys
from pathlib import Path
import numpy as np
from mvlm.data.sequence import Sequence
from mvlm.evaluate.runner import RunOptions, run_dataset
from mvlm.track.spec import TrackerSpec
if __name__ == "__main__":
    seqs = [Sequence(name=n, frames=sorted(Path({str(root)!r}, n, "img").glob("*.jpg")),
                     boxes=np.array([[10, 20, 20, 16]] * 5, float), language="red block") for n in ("seq0", "seq1")]
    s = run_dataset(seqs, {str(tmp_path / "out")!r}, TrackerSpec(checkpoint={str(misfit)!r}), workers=2,
                    options=RunOptions(init="language", max_frames=2))
    print(json.dumps(s["failed"]))
"""
    (tmp_path / "run.py").write_text(script)
    run = subprocess.run([sys.executable, str(tmp_path / "run.py")], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    assert sorted(json.loads(run.stdout)) == ["seq0", "seq1"]
    failures = json.loads((tmp_path / "out" / "failures.json").read_text())
    assert all("could not be built" in f["error"] and "misfit.safetensors" in f["error"] for f in failures)
