"""Hand-made cases for the metric core, the profiles, results I/O and the tables/plots."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from mvlm.data.sequence import Sequence
from mvlm.evaluate import metrics as M
from mvlm.evaluate.profiles import get_profile
from mvlm.evaluate.results import ResultsError, read_box_files, read_results, write_results
from mvlm.evaluate.scoring import attribute_breakdown, score_dataset

BOX = [10.0, 20.0, 40.0, 30.0]


def seq(name, boxes, dataset="tnl2k", visible=None, **meta):
    return Sequence(name=name, frames=[], boxes=np.array(boxes, dtype=float), visible=visible, dataset=dataset, meta=meta)


def score(tmp_path, seqs, preds, profile, **kw):
    for name, boxes in preds.items():
        write_results(tmp_path / "res", name, np.array(boxes, dtype=float))
    return score_dataset(seqs, tmp_path / "res", profile, **kw)


# --------------------------------------------------------------------------- formulas


def test_iou_and_center_errors_exact_values():
    gt = np.array([BOX, BOX])
    pred = np.array([BOX, [30.0, 20.0, 40.0, 30.0]])  # shifted by half the width
    np.testing.assert_allclose(M.iou_inclusive(pred, gt), [1.0, 600 / 1800])
    np.testing.assert_allclose(M.iou_continuous(pred, gt), [1.0, 600 / 1800])
    np.testing.assert_allclose(M.center_error(pred, gt), [0.0, 20.0])
    np.testing.assert_allclose(M.normalized_center_error(pred, gt), [0.0, 0.5])
    np.testing.assert_array_equal(M.box_centers(gt)[0], [29.5, 34.5])


def test_curve_counts_are_the_curves_of_each_sequence():
    """Counts per sequence = N_s x the got10k-style curve of that sequence, with ties on every
    threshold, one ulp around it, NaN, ±inf and the -1 sentinel; sequence 7 has no frame."""
    rng = np.random.default_rng(3)
    for th, cmp in ((M.overlap_thresholds_torch(), ">"), (M.overlap_thresholds_linspace(101), ">"),
                    (M.norm_center_thresholds(), "<="), (M.center_thresholds(), "<="), (M.center_thresholds(400), "<")):
        values = np.concatenate([th, np.nextafter(th, np.inf), np.nextafter(th, -np.inf), rng.uniform(-1, th[-1] + 1, 500),
                                 [np.nan, np.inf, -np.inf, -1.0, -0.0, 0.0]])
        segment = rng.integers(0, 7, size=len(values))
        counts = M.curve_counts(values, segment, 8, th, cmp)
        assert counts.shape == (8, len(th)) and not counts[7].any()
        for s in range(7):
            v = values[segment == s]
            curve = M.success_curve(v, th) if cmp == ">" else M.precision_curve(v, th, cmp)
            np.testing.assert_array_equal(counts[s], np.round(curve * len(v)).astype(int), err_msg=f"{cmp} {s}")


def test_threshold_ties_strict_and_inclusive():
    counts = M.curve_counts(np.array([0.5, 20.0]), np.array([0, 1]), 2, np.array([0.5, 20.0]), ">")
    np.testing.assert_array_equal(counts, [[0, 0], [1, 0]])  # IoU 0.5 is not > 0.5
    counts = M.curve_counts(np.array([20.0]), np.array([0]), 1, M.center_thresholds(), "<=")
    assert counts[0, 20] == 1 and counts[0, 19] == 0  # CLE 20 is a hit at 20 px


# --------------------------------------------------------------------------- profiles


@pytest.mark.parametrize("profile", ["vl_python", "pytracking", "matlab", "got10k"])
def test_perfect_tracker(tmp_path, profile):
    boxes = [[10 + i, 20, 40, 30] for i in range(12)]
    r = score(tmp_path, [seq("a", boxes)], {"a": boxes}, profile)
    s = r.scores()
    assert s["auc"] == pytest.approx(100 * 20 / 21, abs=1e-12)  # 95.238095...
    assert s["pre"] == 100.0
    assert s["npr"] == (None if profile == "got10k" else 100.0)


def test_absent_frames_np_hit_in_python_miss_in_matlab(tmp_path):
    gt = [BOX, BOX, [0, 0, 0, 0], [0, 0, 0, 0]]
    pred = [BOX, BOX, BOX, BOX]
    absent = np.array([0, 0, 1, 1], dtype=bool)
    vl = score(tmp_path, [seq("a", gt, absent=absent)], {"a": pred}, "vl_python").sequence_scores()["a"]
    ml = score(tmp_path, [seq("a", gt, absent=absent)], {"a": pred}, "matlab").sequence_scores()["a"]
    assert vl["npr"] == 100.0 and vl["pre"] == 50.0  # NCLE = -1 hit, CLE = inf miss
    assert ml["npr"] == 50.0 and ml["pre"] == 50.0  # absent removed from the numerator


def test_x_le0_gt_scored_by_vl_python_miss_for_pytracking_and_matlab(tmp_path):
    gt = [BOX, [0.0, 5.0, 40.0, 30.0]]
    pred = [BOX, [0.0, 5.0, 40.0, 30.0]]
    auc = {p: score(tmp_path, [seq("a", gt)], {"a": pred}, p).sequence_scores()["a"] for p in ("vl_python", "pytracking", "matlab")}
    assert auc["vl_python"]["auc"] == pytest.approx(100 * 20 / 21)
    assert auc["pytracking"]["auc"] == pytest.approx(50 * 20 / 21)
    assert auc["pytracking"]["pre"] == 50.0  # CLE = inf
    assert auc["matlab"]["pre"] == 100.0  # MATLAB: invalid non-absent frame has CLE = -1, a hit


def test_lasot_stale_box_on_invisible_frame_is_a_miss_everywhere(tmp_path):
    gt = [BOX, BOX]  # frame 2 keeps a stale box but is flagged invisible
    visible = np.array([True, False])
    for profile in ("vl_python", "pytracking", "matlab"):
        r = score(tmp_path, [seq("a", gt, dataset="lasot", visible=visible)], {"a": gt}, profile).sequence_scores()["a"]
        assert (r["auc"], r["pre"], r["npr"]) == (pytest.approx(50 * 20 / 21), 50.0, 50.0), profile


def test_zero_size_prediction_takes_previous_raw_row(tmp_path):
    gt = [BOX, BOX, BOX]
    raw_first = [100.0, 100.0, 40.0, 30.0]  # frame-1 output is wrong; GT overwrites it for scoring only
    r = score(tmp_path, [seq("a", gt)], {"a": [raw_first, [10, 20, 0, 30], BOX]}, "vl_python")
    assert r.counts[0]["success"][0, 0] == 2  # frame 2 copied the raw (wrong) frame-1 box
    assert r.frame1_iou["a"] == 0.0


def test_length_rules(tmp_path):
    gt = [BOX] * 4
    short = {"a": [BOX] * 2}
    r = score(tmp_path, [seq("a", gt)], short, "vl_python")  # TNL2K: zero-padded, padded rows miss
    assert r.ok and r.sequence_scores()["a"]["pre"] == 50.0
    r = score(tmp_path, [seq("a", gt, dataset="lasot")], short, "vl_python")
    assert not r.ok and "length mismatch" in r.failures["a"] and "a.txt" in r.failures["a"]
    for profile in ("matlab", "got10k"):
        assert not score(tmp_path, [seq("a", gt)], short, profile).ok
    r = score(tmp_path, [seq("a", gt)], {"a": [BOX] * 6}, "vl_python")
    assert r.ok and r.sequence_scores()["a"]["pre"] == 100.0


def test_nan_and_negative_predictions(tmp_path):
    gt = [BOX] * 3
    bad = {"a": [BOX, [np.nan] * 4, BOX]}
    r = score(tmp_path, [seq("a", gt)], bad, "vl_python")
    assert not r.ok and r.scores() is None and "a.txt" in r.failures["a"] and "row 2" in r.failures["a"]
    r = score(tmp_path, [seq("a", gt)], bad, "matlab")  # repaired with the previous row
    assert r.ok and r.sequence_scores()["a"]["pre"] == 100.0
    r = score(tmp_path, [seq("a", gt)], {"a": [BOX, [10, 20, -5, 30], BOX]}, "pytracking")
    assert not r.ok and "negative" in r.failures["a"]


def test_nan_gt_raises_with_sequence_name(tmp_path):
    r = score(tmp_path, [seq("a", [BOX, [np.nan] * 4])], {"a": [BOX, BOX]}, "vl_python")
    assert "NaN in the ground truth" in r.failures["a"]


def test_missing_file_fails_or_is_skipped(tmp_path):
    seqs = [seq("a", [BOX]), seq("b", [BOX])]
    r = score(tmp_path, seqs, {"a": [BOX]}, "vl_python")
    assert not r.ok and "b.txt" in r.failures["b"]
    r = score(tmp_path, seqs, {"a": [BOX]}, "vl_python", skip_missing=True)
    assert r.ok and r.names == ["a"] and r.skipped == ["b"]


def test_mgit_rules(tmp_path):
    gt = [BOX, BOX, BOX, [0, 0, 0, 0]]
    absent = np.array([0, 0, 0, 1], dtype=bool)
    shotcut = np.array([0, 1, 0, 0], dtype=bool)
    pred = [[10.0, 40.0, 40.0, 30.0], BOX, [-100.0, 20.0, 150.0, 30.0], BOX]  # frame 1 NOT overwritten
    s = seq("a", gt, dataset="mgit", absent=absent, shotcut=shotcut, image_size=(100, 100))
    r = score(tmp_path, [s], {"a": pred}, "mgit")
    assert r.n_frames[0] == 2  # absent and shot-cut frames leave the denominator
    # frame 1: CLE 20 -> miss at 20 px with strict "<"; frame 3: clipped to x in [0, 50] -> CLE 5
    assert r.counts[0]["precision"][0, 20] == 1 and r.counts[0]["precision"][0, 21] == 2
    assert r.inside[0] == 0.5  # frame 1 centre (29.5, 54.5) is below the GT box, frame 3 inside
    assert r.success.shape[1] == 101
    with pytest.raises(ValueError, match="unknown scoring profile"):
        get_profile("nope")


def test_attribute_breakdown_and_frame1_from_meta(tmp_path):
    a = seq("a", [BOX, BOX])
    a.attributes = {"FOC": True, "CM": False}
    b = seq("b", [BOX, BOX])
    b.attributes = {"FOC": True, "CM": True}
    write_results(tmp_path / "res", "a", np.array([BOX, BOX]), meta={"frame1_box": [30.0, 20.0, 40.0, 30.0]})
    write_results(tmp_path / "res", "b", np.array([BOX, [500.0, 500.0, 4.0, 4.0]]))
    r = score_dataset([a, b], tmp_path / "res", "vl_python")
    assert r.frame1_iou["a"] == pytest.approx(1 / 3) and r.frame1_iou["b"] == 1.0
    br = attribute_breakdown(r, [a, b])
    assert br["FOC"]["n"] == 2 and br["CM"]["n"] == 1
    assert br["CM"]["auc"] == pytest.approx(50 * 20 / 21)


# --------------------------------------------------------------------------- results I/O


def test_results_round_trip_and_encodings(tmp_path):
    boxes = np.array([[1.25, 2.5, 30.0, 40.75], [-0.7, 0.6, 3.2, 4.0]])
    p = write_results(tmp_path, "s", boxes, meta={"init": "language"})
    np.testing.assert_array_equal(read_results(p), boxes)
    assert json.loads((tmp_path / "s_meta.json").read_text()) == {"init": "language"}
    p = write_results(tmp_path, "t", boxes, truncate=True)
    assert p.read_text() == "1\t2\t30\t40\n0\t0\t3\t4\n"
    (tmp_path / "sp.txt").write_text("1 2 3 4\r\n5 6 7 8\r\n")
    (tmp_path / "cm.txt").write_text("1,2,3,4\n5,6,7,8")
    a, b = read_box_files([tmp_path / "sp.txt", tmp_path / "cm.txt"])
    np.testing.assert_array_equal(a, b)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("text,match", [("1,2,3\n", "expected 4 values"), ("1,2,x,4\n", "not a number")])
def test_corrupt_result_file_names_the_file(tmp_path, text, match):
    (tmp_path / "bad.txt").write_text(text)
    with pytest.raises(ResultsError, match=f"bad.txt.*{match}"):
        read_results(tmp_path / "bad.txt")
    with pytest.raises(ResultsError, match="not found"):
        read_results(tmp_path / "nope.txt")


# --------------------------------------------------------------------------- tables and plots


def test_tables_with_published_rows_and_plots(tmp_path):
    import openpyxl

    from mvlm.evaluate.plots import plot_success_precision
    from mvlm.evaluate.tables import build_tables, entries_from_scores, write_tables

    boxes = [[10 + i, 20, 40, 30] for i in range(5)]
    r = score(tmp_path, [seq("a", boxes)], {"a": boxes}, "vl_python")
    tables = build_tables([entries_from_scores("ours", "tf", "tnl2k", r.profile, r.scores())])
    tf = tables["tracking_by_language"]
    ours = tf[tf.source == "ours"].iloc[0]
    assert ours["TNL2K AUC"] == pytest.approx(100 * 20 / 21) and ours["TNL2K profile"] == "vl_python"
    published = tf[tf.source == "published"]
    assert {"JointNLT", "UVLTrack-B", "MambaVLT", "MVLM"} <= set(published.tracker)
    assert set(tables["bbox_language"].tracker) >= {"SUTrack-B224", "DUTrack-256"}
    written = write_tables(tables, tmp_path / "tables")
    wb = openpyxl.load_workbook(tmp_path / "tables" / "results.xlsx")
    assert wb.sheetnames == ["tracking_by_language", "bbox_language"]
    assert (tmp_path / "tables" / "bbox_language.md").read_text().startswith("| tracker | source |")
    assert len(written) == 5
    figs = plot_success_precision({"ours": r}, tmp_path / "fig" / "tnl2k")
    assert sorted(p.name for p in figs) == ["tnl2k_precision.png", "tnl2k_precision.svg", "tnl2k_success.png", "tnl2k_success.svg"]
    # written again (another second, fresh svg ids): the same bytes, so a rerun leaves reports/ unchanged
    first = {p: p.read_bytes() for p in written + figs}
    time.sleep(1.1)
    again = write_tables(tables, tmp_path / "tables") + plot_success_precision({"ours": r}, tmp_path / "fig" / "tnl2k")
    assert sorted(again) == sorted(first) and all(p.read_bytes() == first[p] for p in again)
    assert openpyxl.load_workbook(tmp_path / "tables" / "results.xlsx").sheetnames == wb.sheetnames
