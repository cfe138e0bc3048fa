"""The embedded benchmark generator: determinism, LaSOT layout, event statistics, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mvlm.data.sequence import DataError
from mvlm.data.synthetic import (
    ATTRIBUTE_KEYS, SequenceRenderer, SynthError, attributes_of, dataset_stats, generate_dataset,
    plan_sequence, render_scene,
)
from mvlm.data.synthetic.vocab import SIZE_RANGES

SMALL = dict(sequences=12, seed=7, size=(160, 120), frames=40)
ANNOTATION_FILES = ("groundtruth.txt", "nlp.txt", "full_occlusion.txt", "out_of_view.txt", "attributes.json", "meta.json")


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synth") / "test"
    stats = generate_dataset(root, **SMALL, split="test", workers=1)
    return root, stats


def _seq_dirs(root: Path) -> list[Path]:
    names = (root / "testing_set.txt").read_text().split()
    return [root / n.rsplit("-", 1)[0] / n for n in names]


def _flags(path: Path) -> np.ndarray:
    text = path.read_text()
    assert "\n" not in text.strip(), f"{path}: flags must be one line"
    return np.array([int(v) for v in text.split(",")], dtype=bool)


def _runs_to_mask(events: list[dict], kind: str, n: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    for e in events:
        if e["type"] == kind:
            mask[e["first"] : e["last"] + 1] = True
    return mask


# ---------------------------------------------------------------------------------------------
# layout and consistency


def test_layout_lasot_files(small_set):
    root, stats = small_set
    dirs = _seq_dirs(root)
    assert len(dirs) == 12 and stats["sequences"] == 12 and stats["frames"] == 12 * 40
    for d in dirs:
        assert d.parent.name == d.name.rsplit("-", 1)[0]  # <class>/<class>-<n>
        images = sorted((d / "img").glob("*.jpg"))
        assert [p.name for p in images] == [f"{i:08d}.jpg" for i in range(1, 41)]
        rows = (d / "groundtruth.txt").read_text().splitlines()
        assert len(rows) == 40 and all(len(r.split(",")) == 4 for r in rows)
        sentence = (d / "nlp.txt").read_text()
        assert sentence and not sentence.endswith("\n") and sentence.startswith("the ")
        assert len(_flags(d / "full_occlusion.txt")) == len(_flags(d / "out_of_view.txt")) == 40
        assert set(json.loads((d / "attributes.json").read_text())) == set(ATTRIBUTE_KEYS)
    info = json.loads((root / "dataset.json").read_text())
    assert (info["width"], info["height"], info["frames"], info["seed"]) == (160, 120, 40, 7)


def test_boxes_and_flags_consistent_with_meta(small_set):
    root, _ = small_set
    for d in _seq_dirs(root):
        meta = json.loads((d / "meta.json").read_text())
        boxes = np.loadtxt(d / "groundtruth.txt", delimiter=",", ndmin=2)
        occluded, out = _flags(d / "full_occlusion.txt"), _flags(d / "out_of_view.txt")
        visible = ~(occluded | out)
        n = len(boxes)
        # flags are exactly the union of the meta events of that kind
        np.testing.assert_array_equal(occluded, _runs_to_mask(meta["events"], "full_occlusion", n))
        np.testing.assert_array_equal(out, _runs_to_mask(meta["events"], "out_of_view", n))
        assert not (occluded & out).any()
        # absent frames are written 0,0,0,0; visible boxes are positive and inside the frame
        assert (boxes[~visible] == 0).all()
        vis = boxes[visible]
        assert (vis[:, 2:] >= 1).all() and (vis[:, :2] >= 0).all()
        assert (vis[:, 0] + vis[:, 2] <= meta["width"]).all() and (vis[:, 1] + vis[:, 3] <= meta["height"]).all()
        assert visible[0] and meta["visible_fraction"][0] >= 0.95  # frame 1 shows the whole target
        np.testing.assert_array_equal(boxes, boxes.round())  # integer boxes


def test_files_match_the_plan(small_set):
    """Sequence i depends on (seed, i) only: planning it alone reproduces the written files."""
    root, _ = small_set
    d = _seq_dirs(root)[5]
    plan = plan_sequence(SMALL["seed"], 5, *SMALL["size"], SMALL["frames"])
    assert plan.name == d.name
    np.testing.assert_array_equal(np.loadtxt(d / "groundtruth.txt", delimiter=","), plan.boxes)
    assert (d / "nlp.txt").read_text() == plan.sentence


def test_distractors_share_attributes_and_target_triple_unique(small_set):
    root, stats = small_set
    for d in _seq_dirs(root):
        meta = json.loads((d / "meta.json").read_text())
        target, others = meta["objects"][0], meta["objects"][1:]
        assert target["role"] == "target" and meta["target"]["shape"] == d.parent.name
        triple = lambda o: (o["shape"], o["colour"], o["size"])  # noqa: E731
        assert triple(target) not in [triple(o) for o in others]
        sharing = [o for o in others if o["shares"]]
        assert len(sharing) == meta["distractors_sharing"] >= 2
        for o in sharing:
            for attr in o["shares"]:
                assert o[attr] == target[attr]
        # the attribute words of the sentence match the target and no other object
        words = meta["sentence_parts"]["attribute_words"]
        assert all(target[w] in meta["sentence"] for w in words)
        assert not any(all(o[w] == target[w] for w in words) for o in others)
    assert stats["distractors_sharing"]["mean"] >= 2.0


def test_event_statistics_of_small_set(small_set):
    _, stats = small_set
    share = stats["event_share"]
    assert share["full_occlusion"] >= 0.3
    assert share["cut_or_out_of_view"] >= 0.3
    assert share["partial_occlusion"] > 0 and share["scale_change"] > 0
    assert stats["target_size"]["min"] < 0.08 and stats["target_size"]["max"] > 0.2
    assert stats["sentence_kinds"].get("relational", 0) <= 0.3 * stats["sequences"]
    assert 0 < stats["absent_frame_share"] < 0.4
    assert stats["problems"] == []


@pytest.mark.parametrize("ceiling", ["perfect", "lost_at_first_cut_or_exit"])
def test_success_ceilings_equal_the_scorer_on_idealized_predictions(small_set, tmp_path, ceiling):
    """Exact GT up to the break, then a 1x1 box outside the target: the scorer's AUC is the ceiling."""
    from mvlm.data.benchmarks import load_dataset
    from mvlm.evaluate.results import write_results
    from mvlm.evaluate.scoring import score_dataset

    root, stats = small_set
    kinds = {"perfect": (), "lost_at_first_cut_or_exit": ("cut", "out_of_view")}[ceiling]
    sequences = load_dataset("lasot", root)
    for seq in sequences:
        meta = json.loads((Path(seq.meta["path"]) / "meta.json").read_text())
        stop = min([e["first"] for e in meta["events"] if e["type"] in kinds] + [len(seq)])
        pred = seq.boxes.copy()
        for t in range(len(seq)):
            x, y, w, h = seq.boxes[t]
            if t >= stop or w <= 0:  # a pixel the target box does not cover: IoU exactly 0
                px = 0.0 if x > 0 or y > 0 else meta["width"] - 1.0
                pred[t] = (px, 0.0, 1.0, 1.0)
        write_results(tmp_path, seq.name, pred)
    result = score_dataset(sequences, tmp_path, "vl_python", dataset="lasot")
    assert result.scores()["auc"] == pytest.approx(stats["success_auc_ceiling"][ceiling], abs=0.006)
    ceilings = list(stats["success_auc_ceiling"].values())
    assert ceilings == sorted(ceilings, reverse=True) and ceilings[0] < 100 * 20 / 21


def test_lasot_loader_reads_the_output(small_set):
    lasot = pytest.importorskip("mvlm.data.benchmarks")
    root, _ = small_set
    sequences = lasot.load_dataset("lasot", root, split="test")
    assert [s.name for s in sequences] == [d.name for d in _seq_dirs(root)]
    for seq, d in zip(sequences, _seq_dirs(root)):
        assert not [p for p in seq.problems if p.startswith("error")]
        assert len(seq.frames) == len(seq) == 40
        assert seq.language == (d / "nlp.txt").read_text()
        written = ~(_flags(d / "full_occlusion.txt") | _flags(d / "out_of_view.txt"))
        np.testing.assert_array_equal(seq.visible, written)
        np.testing.assert_array_equal(seq.valid_mask(), seq.visible)  # absent rows are 0,0,0,0
    image = sequences[0].read_frame(0)
    assert image.shape == (120, 160, 3) and image.dtype == np.uint8


def test_first_frame_shows_the_target_colour(small_set):
    root, _ = small_set
    import cv2

    checked = 0
    for d in _seq_dirs(root):
        meta = json.loads((d / "meta.json").read_text())
        target = meta["target"]
        if target["texture"] != "plain" or target["diameter_px"] < 8 or target["shape"] in ("cross", "star"):
            continue
        x, y, w, h = np.loadtxt(d / "groundtruth.txt", delimiter=",")[0].astype(int)
        bgr = cv2.imread(str(d / "img" / "00000001.jpg"))
        centre = bgr[y + h // 2 - 1 : y + h // 2 + 2, x + w // 2 - 1 : x + w // 2 + 2].reshape(-1, 3).mean(0)
        assert np.abs(centre - np.array(target["tint_bgr"])).max() < 45, (d.name, centre, target["tint_bgr"])
        checked += 1
    assert checked >= 1


# ---------------------------------------------------------------------------------------------
# determinism


def test_byte_identical_across_runs_and_workers(tmp_path):
    args = dict(sequences=3, seed=11, size=(96, 72), frames=20)
    a = generate_dataset(tmp_path / "a", **args, workers=1)
    b = generate_dataset(tmp_path / "b", **args, workers=2)
    assert a["generation"]["frames_per_second"] > 0
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 2 + 3 * (20 + len(ANNOTATION_FILES))
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_seed_changes_content():
    a, b = plan_sequence(1, 0, 128, 96, 20), plan_sequence(2, 0, 128, 96, 20)
    assert a.sentence != b.sentence or not np.array_equal(a.boxes, b.boxes)


def test_render_scene_and_rgb_frames():
    image, box, sentence = render_scene(4, 2, size=(128, 96))
    assert image.shape == (96, 128, 3) and image.dtype == np.uint8
    assert box[2] > 0 and box[3] > 0 and sentence.startswith("the ")
    plan = plan_sequence(4, 2, 128, 96, 16)
    np.testing.assert_array_equal(SequenceRenderer(plan).frame_rgb(0), image)


# ---------------------------------------------------------------------------------------------
# the default test split (planned only: geometry and flags need no pixels)


def test_default_split_statistics():
    plans = [plan_sequence(3, i, 256, 192, 120) for i in range(30)]
    attrs = [attributes_of(p) for p in plans]
    share = lambda key: np.mean([a[key] for a in attrs])  # noqa: E731
    assert share("full_occlusion") >= 0.3
    assert np.mean([a["cut"] or a["out_of_view"] for a in attrs]) >= 0.3
    assert 0.1 <= share("relational_sentence") <= 0.25
    sides = np.concatenate([np.sqrt(p.boxes[p.visible, 2] * p.boxes[p.visible, 3]) / 192 for p in plans])
    assert sides.min() < 0.04 and sides.max() > 0.27
    assert all(p.visible_fraction[0] >= 0.95 for p in plans)
    for p in plans:  # size words stay true through scale changes
        lo, hi = SIZE_RANGES[p.target.size]
        assert lo * 192 - 1 <= p.diameters[:, 0].min() and p.diameters[:, 0].max() <= hi * 192 + 1


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sequences=0), "sequences must be a positive integer"),
        (dict(size=(32, 32)), "too small"),
        (dict(frames=5), "at least 16 frames"),
        (dict(split="holdout"), "unknown split"),
        (dict(seed=-1), "seed must be"),
        (dict(size="256x192"), "size must be"),
    ],
)
def test_bad_arguments_raise_clear_errors(tmp_path, kwargs, message):
    args = dict(sequences=1, seed=0, size=(96, 72), frames=16) | kwargs
    with pytest.raises(SynthError, match=message):
        generate_dataset(tmp_path / "out", **args)


def test_refuses_foreign_nonempty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("user data")
    with pytest.raises(SynthError, match="not empty"):
        generate_dataset(tmp_path, sequences=1, seed=0, size=(96, 72), frames=16)
    with pytest.raises(SynthError, match="not written by mvlm synth"):
        generate_dataset(tmp_path, sequences=1, seed=0, size=(96, 72), frames=16, overwrite=True)
    assert (tmp_path / "keep.txt").read_text() == "user data"


def test_overwrite_replaces_own_output(tmp_path):
    generate_dataset(tmp_path / "d", sequences=2, seed=0, size=(96, 72), frames=16)
    stats = generate_dataset(tmp_path / "d", sequences=1, seed=1, size=(96, 72), frames=16, overwrite=True)
    assert stats["sequences"] == 1 and stats["seed"] == 1
    assert len(list((tmp_path / "d").glob("*/*/meta.json"))) == 1


def test_stats_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        dataset_stats(tmp_path / "missing")
    generate_dataset(tmp_path / "d", sequences=1, seed=0, size=(96, 72), frames=16)
    meta = next((tmp_path / "d").glob("*/*/meta.json"))
    meta.write_text("{broken")
    with pytest.raises(DataError, match="meta.json: not valid JSON"):
        dataset_stats(tmp_path / "d")


def test_cli(tmp_path, capsys):
    from mvlm.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["synth", "--out", str(tmp_path / "x"), "--size", "abc"])
    assert exc.value.code == 2 and "expected WIDTHxHEIGHT" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path / "x"), "--frames", "5"]) == 2
    assert "at least 16 frames" in capsys.readouterr().err
    assert main(["synth", "--stats", str(tmp_path / "nowhere")]) == 2
    assert "not found" in capsys.readouterr().err

    out = tmp_path / "cli"
    code = main(["synth", "--out", str(out), "--sequences", "2", "--seed", "5", "--size", "96x72",
                 "--frames", "16", "--split", "train", "--workers", "1", "--json",
                 "--stats-out", str(tmp_path / "stats.json")])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["sequences"] == 2 and printed["generation"]["frames"] == 32
    assert (out / "training_set.txt").read_text().count("\n") == 2
    assert json.loads((tmp_path / "stats.json").read_text())["generation"]["frames_per_second"] > 0
    assert main(["synth", "--stats", str(out)]) == 0
    assert "2 sequences, 32 frames" in capsys.readouterr().out
