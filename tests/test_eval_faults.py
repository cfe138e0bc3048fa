"""Faults and bad input in scoring and evaluation: every named sequence is scored or listed as
failed, unusable sequences are never tracked, dead workers fail their sequences, changed inputs
are tracked again under --resume. The table in docs/reliability.md points at these tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mvlm.cli import main
from mvlm.evaluate.results import write_results


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """`mvlm synth --sequences 3 --seed 5 --frames 20` (small frames: fast to track)."""
    root = tmp_path_factory.mktemp("synth") / "D"
    assert main(["synth", "--out", str(root), "--sequences", "3", "--seed", "5", "--frames", "20",
                 "--size", "96x72", "--workers", "1"]) == 0
    return root


def _seq_dirs(root: Path) -> dict[str, Path]:
    return {p.parent.name: p.parent for p in sorted(root.glob("*/*/groundtruth.txt"))}


@pytest.fixture
def data(synth, tmp_path) -> Path:
    """A private copy of the synth dataset that a test may damage."""
    shutil.copytree(synth, tmp_path / "D")
    return tmp_path / "D"


@pytest.fixture
def perfect(synth, tmp_path) -> Path:
    """Result files equal to the GT (AUC 100 per sequence... up to the IoU bins)."""
    out = tmp_path / "perfect"
    for name, folder in _seq_dirs(synth).items():
        write_results(out, name, np.loadtxt(folder / "groundtruth.txt", delimiter=","))
    return out


def _score(root, results, *extra, json_out=None):
    args = ["score", "--dataset", "lasot", "--root", str(root), "--results", str(results), *extra]
    if json_out:
        args += ["--json", str(json_out)]
    return main(args)


# --------------------------------------------------------------------------------------------
# mvlm score


@pytest.mark.parametrize("layout", ["toolkit", "dataset", "auto"])
@pytest.mark.parametrize("damage", ["missing", "unparseable"])
def test_score_lists_a_sequence_with_bad_gt_and_fails_the_run(data, perfect, tmp_path, capsys, layout, damage):
    victim, gt = next(iter(_seq_dirs(data).items()))
    gt = gt / "groundtruth.txt"
    gt.unlink() if damage == "missing" else gt.write_text("10,20,abc,5\n")
    out = tmp_path / "s.json"
    rc = _score(data, perfect, "--gt-layout", layout, json_out=out)
    cap = capsys.readouterr()
    assert rc == 1 and "Traceback" not in cap.err
    assert f"FAILED {victim}: ground truth:" in cap.err and str(gt) in cap.err
    assert "(3 sequences, 1 without usable GT" in cap.out and "mean over 2 of 3 sequences" in cap.out
    doc = json.loads(out.read_text())  # the others are still scored and written
    assert set(doc["sequences"]) == set(_seq_dirs(data)) - {victim}
    assert list(doc["gt_failures"]) == [victim] and doc["averaged"] == 2 and doc["sequences_named"] == 3
    assert doc["mean"]["auc"] > 90


def test_score_one_bad_toolkit_file_does_not_stop_the_others(tmp_path, capsys):
    """TNL2K pack read in one fast pass: a broken file is found and listed, the others scored."""
    gt = tmp_path / "pack" / "annos" / "gt_rect"
    gt.mkdir(parents=True)
    boxes = np.array([[10, 20, 30, 40]] * 4, float)
    for name in ("a", "b", "c"):
        np.savetxt(gt / f"{name}.txt", boxes, fmt="%d", delimiter=",")
        write_results(tmp_path / "res", name, boxes)
    (gt / "b.txt").write_text("1,2,3\n")
    rc = main(["score", "--dataset", "tnl2k", "--root", str(tmp_path / "pack"), "--results", str(tmp_path / "res"),
               "--json", str(tmp_path / "s.json")])
    cap = capsys.readouterr()
    assert rc == 1 and "FAILED b: ground truth:" in cap.err and "b.txt" in cap.err
    doc = json.loads((tmp_path / "s.json").read_text())
    assert set(doc["sequences"]) == {"a", "c"} and doc["averaged"] == 2


def test_score_names_a_sequence_of_the_list_that_has_no_gt(synth, perfect, capsys):
    names = ",".join([*_seq_dirs(synth), "ghost-9"])
    assert _score(synth, perfect, "--sequences", names) == 1
    assert "FAILED ghost-9: ground truth:" in capsys.readouterr().err


def test_score_a_layout_that_finds_no_sequence_is_an_error_naming_the_layouts(tmp_path, perfect, capsys):
    (tmp_path / "empty" / "x").mkdir(parents=True)
    rc = main(["score", "--dataset", "otb99_lang", "--root", str(tmp_path / "empty"), "--results", str(perfect)])
    err = capsys.readouterr().err
    assert rc == 2 and "no otb99_lang sequence found" in err and "toolkit layout" in err and "dataset layout" in err
    rc = main(["score", "--dataset", "otb99_lang", "--root", str(tmp_path / "empty"), "--results", str(perfect),
               "--gt-layout", "toolkit"])
    err = capsys.readouterr().err
    assert rc == 2 and "toolkit layout: no sequence found" in err


def test_score_auto_layout_finds_a_dataset_folder(tmp_path, capsys):
    """An OTB99-Lang dataset folder has no anno files at its top: auto reads the dataset layout."""
    root = tmp_path / "otb"
    (root / "OTB_videos" / "Car1" / "img").mkdir(parents=True)
    (root / "OTB_query_test").mkdir()
    boxes = np.array([[1, 2, 30, 40]] * 3, float)
    np.savetxt(root / "OTB_videos" / "Car1" / "groundtruth_rect.txt", boxes, fmt="%d", delimiter=",")
    (root / "OTB_query_test" / "Car1.txt").write_text("a car\n")
    write_results(tmp_path / "res", "Car1", boxes)
    rc = main(["score", "--dataset", "otb99_lang", "--root", str(root), "--results", str(tmp_path / "res")])
    out = capsys.readouterr().out
    assert rc == 0 and "(1 sequences, 0 without usable GT, dataset layout)" in out
