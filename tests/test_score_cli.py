"""`mvlm score` / `mvlm report` end to end: toolkit packs and dataset layouts, int-tab and
comma-float predictions, golden numbers, failures reported by name without a traceback."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest

from mvlm.cli import main


@pytest.fixture(scope="module")
def packs(golden_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("cli")
    with tarfile.open(golden_dir / "gt" / "tnl2k" / "annos.tar.gz") as tar:
        tar.extractall(work / "tnl2k_gt", filter="data")
    for ds in ("tnl2k", "lasot"):
        with tarfile.open(golden_dir / "predictions" / f"{ds}.tar.gz") as tar:
            tar.extractall(work / ds, filter="data")
    spec = json.loads((golden_dir / "golden.json").read_text())
    return work, {e["id"]: e for e in spec["evaluations"]}


def _lasot_root():
    from conftest import FIXTURES

    return FIXTURES / "metrics-golden" / "gt" / "lasot"


def _names(ev, k=12):
    return ",".join(ev["sequences"][:k])


def test_score_tnl2k_toolkit_int_and_float_files(packs, tmp_path, capsys):
    work, evs = packs
    for tracker in ("int_boxes", "float_boxes"):
        out = tmp_path / f"{tracker}.json"
        names = tmp_path / f"{tracker}.txt"
        names.write_text("\n".join(evs[f"tnl2k/{tracker}"]["sequences"]) + "\n")
        rc = main(["score", "--dataset", "tnl2k", "--root", str(work / "tnl2k_gt"), "--results", str(work / "tnl2k" / tracker),
                   "--profile", "ostrack_fork", "--json", str(out), "--sequences", str(names)])
        assert rc == 0
        doc = json.loads(out.read_text())
        exact = evs[f"tnl2k/{tracker}"]["results"]["ostrack_fork"]["exact_float64"]["scores"]
        assert doc["profile"] == "vl_python" and doc["dataset"] == "tnl2k"
        assert doc["mean"]["auc"] == pytest.approx(exact["auc"], abs=1e-9)
        assert doc["mean"]["pre"] == pytest.approx(exact["pre20"], abs=1e-9)
        assert doc["mean"]["npr"] == pytest.approx(exact["npr20"], abs=1e-9)
        assert set(doc["sequences"]) == set(evs[f"tnl2k/{tracker}"]["sequences"])
    assert "vl_python" in capsys.readouterr().out


def test_score_lasot_folders_matlab_and_comparison_table(packs, golden_dir, tmp_path, capsys):
    work, evs = packs
    rc = main(["score", "--dataset", "lasot", "--root", str(golden_dir / "gt" / "lasot"), "--profile", "matlab",
               "--results", str(work / "lasot" / "realistic"), "--results", str(work / "lasot" / "drifting"),
               "--json", str(tmp_path / "cmp.json"), "--table-out", str(tmp_path / "cmp")])
    assert rc == 0
    doc = json.loads((tmp_path / "cmp.json").read_text())
    for tracker in ("realistic", "drifting"):
        exact = evs[f"lasot/{tracker}"]["results"]["matlab_toolkit_octave"]["exact_float64"]["scores"]
        assert doc["trackers"][tracker]["mean"]["auc"] == pytest.approx(exact["auc"], abs=1e-9)
        assert doc["trackers"][tracker]["mean"]["npr_area"] == pytest.approx(exact["npr_area"], abs=1e-9)
    assert "realistic" in (tmp_path / "cmp.csv").read_text()
    assert (tmp_path / "cmp.md").read_text().startswith("| tracker | AUC |")


def test_score_reports_failures_by_name(packs, tmp_path, capsys):
    work, evs = packs
    ev = evs["lasot/short"]
    rc = main(["score", "--dataset", "lasot", "--root", str(_lasot_root()),
               "--results", str(work / "lasot" / "short")])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    for name in ev["results"]["ostrack_fork"]["failing_sequences"]:
        assert f"FAILED short/{name}: " in err and "length mismatch" in err
    # missing files: reported by name, or skipped with --skip-missing
    work_missing = work / "tnl2k" / "missing"
    names = _names(evs["tnl2k/missing"], 39)
    rc = main(["score", "--dataset", "tnl2k", "--root", str(work / "tnl2k_gt"), "--results", str(work_missing), "--sequences", names])
    err = capsys.readouterr().err
    assert rc == 1 and all(f"FAILED missing/{n}" in err for n in evs["tnl2k/missing"]["missing_files"])
    out = tmp_path / "skip.json"
    rc = main(["score", "--dataset", "tnl2k", "--root", str(work / "tnl2k_gt"), "--results", str(work_missing),
               "--sequences", names, "--skip-missing", "--json", str(out)])
    exact = evs["tnl2k/missing"]["results"]["ostrack_fork+skip_missing_seq"]["exact_float64"]["scores"]
    assert rc == 0 and json.loads(out.read_text())["mean"]["auc"] == pytest.approx(exact["auc"], abs=1e-9)


def test_score_dataset_layout(tmp_path):
    root = tmp_path / "tnl2k" / "test"
    boxes = np.array([[10, 20, 40, 30]] * 5, dtype=float)
    for name in ("seqA", "seqB"):
        (root / name / "imgs").mkdir(parents=True)
        np.savetxt(root / name / "groundtruth.txt", boxes, fmt="%d", delimiter=",")
        (root / name / "language.txt").write_text("the thing")
    from mvlm.evaluate.results import write_results

    write_results(tmp_path / "res", "seqA", boxes)
    write_results(tmp_path / "res", "seqB", boxes, truncate=True)
    out = tmp_path / "s.json"
    rc = main(["score", "--dataset", "tnl2k", "--root", str(tmp_path / "tnl2k"), "--gt-layout", "dataset",
               "--results", str(tmp_path / "res"), "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["mean"]["auc"] == pytest.approx(100 * 20 / 21) and set(doc["sequences"]) == {"seqA", "seqB"}


def test_score_bad_inputs_are_clear(tmp_path, capsys):
    rc = main(["score", "--dataset", "tnl2k", "--root", str(tmp_path / "nope"), "--results", str(tmp_path)])
    assert rc == 2 and "nope" in capsys.readouterr().err
    rc = main(["score", "--dataset", "tnl2k", "--root", str(tmp_path), "--results", str(tmp_path), "--profile", "bogus"])
    assert rc == 2 and "unknown scoring profile" in capsys.readouterr().err


def test_report_builds_tables_and_plots(packs, tmp_path):
    work, _ = packs
    score_json = tmp_path / "scores" / "tnl2k.json"
    assert main(["score", "--dataset", "tnl2k", "--root", str(work / "tnl2k_gt"), "--results", str(work / "tnl2k" / "ties"),
                 "--sequences", _names(packs[1]["tnl2k/ties"], 39), "--json", str(score_json), "--setting", "bbox"]) == 0
    assert main(["report", str(tmp_path / "scores"), "--out", str(tmp_path / "tables")]) == 0
    assert (tmp_path / "tables" / "results.xlsx").is_file()
    assert "ties" in (tmp_path / "tables" / "bbox_language.csv").read_text()
    assert (tmp_path / "tables" / "figures" / "tnl2k_success.svg").is_file()
