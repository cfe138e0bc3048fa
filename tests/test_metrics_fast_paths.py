"""The fast paths of scoring (one joined parse, arithmetic threshold bins, block-wise maths,
zero-copy GT stacking) against their plain definitions, on inputs built to hit every branch."""

from __future__ import annotations

import numpy as np
import pytest

from mvlm.data.sequence import Sequence
from mvlm.evaluate import metrics as M
from mvlm.evaluate import scoring as S
from mvlm.evaluate.results import ResultsError, read_box_block, read_box_files, write_results

REFERENCE_THRESHOLDS = [
    M.overlap_thresholds_torch(), M.overlap_thresholds_linspace(21), M.overlap_thresholds_linspace(101),
    M.center_thresholds(50), M.center_thresholds(400), M.norm_center_thresholds(),
    np.array([0.1, 0.3, 0.35, 2.0]),  # uneven: falls back to searchsorted
]


@pytest.mark.parametrize("index", range(len(REFERENCE_THRESHOLDS)))
@pytest.mark.parametrize("compare", [">", "<=", "<"])
def test_threshold_bins_equal_searchsorted_on_ties_and_specials(index, compare):
    th = REFERENCE_THRESHOLDS[index]
    rng = np.random.default_rng(index)
    values = np.concatenate([
        th, np.nextafter(th, np.inf), np.nextafter(th, -np.inf),  # exactly on and one ulp around each threshold
        rng.uniform(th[0] - 1, th[-1] + 1, 20000),
        [np.nan, np.inf, -np.inf, -1e-17, 1e-17, -0.0, 0.0, 1e300, -1e300, -1.0],
    ])
    expected = np.searchsorted(th, values, side="right" if compare == "<" else "left")
    if compare == ">":
        expected[np.isnan(values)] = 0
    np.testing.assert_array_equal(M.threshold_bins(values, th, compare), expected)


def test_joined_parse_matches_per_file_parse_for_mixed_encodings(tmp_path):
    files = {
        "tab_int.txt": "1\t2\t3\t4\n-5\t6\t7\t8\n",
        "comma_float.txt": "1.2500,2.5000,30.0000,40.7500\n-0.7000,0.6000,3.2000,4.0000\n",
        "crlf.txt": "1,2,3,4\r\n5,6,7,8\r\n",
        "no_final_newline.txt": "9,10,11,12",
        "empty.txt": "",
        "spaces.txt": "1 2 3 4\n5 6 7 8\n",
        "nan.txt": "1,2,3,4\nnan,nan,nan,nan\n",
        "blank_line.txt": "1,2,3,4\n\n5,6,7,8\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    paths = [tmp_path / n for n in files]
    together = read_box_files(paths)
    one_by_one = [read_box_files([p])[0] for p in paths]
    for name, a, b in zip(files, together, one_by_one):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert [len(a) for a in together] == [2, 2, 2, 1, 0, 2, 2, 2]
    np.testing.assert_array_equal(together[1][1], [-0.7, 0.6, 3.2, 4.0])
    assert np.isnan(together[6][1]).all()
    block = read_box_block(paths)
    assert block.values.flags.f_contiguous and block.offsets.tolist() == [0, 2, 4, 6, 7, 7, 9, 11, 13]


def test_joined_parse_is_correctly_rounded_like_python_float(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.uniform(-2000, 2000, (3000, 4))
    for i, fmt in enumerate(("%.4f", "%.17g", "%.6e")):
        np.savetxt(tmp_path / f"{i}.txt", values, fmt=fmt, delimiter=",")
    arrays = read_box_files([tmp_path / f"{i}.txt" for i in range(3)])
    for i, arr in enumerate(arrays):
        text = (tmp_path / f"{i}.txt").read_text().replace(",", " ").split()
        np.testing.assert_array_equal(arr.ravel(), np.array([float(t) for t in text]))


@pytest.mark.parametrize("text,match", [
    ("1,2,3,4,5\n6,7,8,9,10\n", "expected 4 values"),  # pandas alone would drop the 5th column
    ("1,2,3,4\n1,2,3\n", "expected 4 values"),
    ("1,2,3,4\n1,2,\"3\",4\n", "not a number"),
])
def test_one_broken_file_among_many_is_named(tmp_path, text, match):
    good = np.arange(40, dtype=float).reshape(10, 4)
    paths = [write_results(tmp_path, f"s{i}", good, truncate=True) for i in range(9)]
    (tmp_path / "broken.txt").write_text(text)
    paths.insert(4, tmp_path / "broken.txt")
    with pytest.raises(ResultsError, match=f"broken.txt:\\d+: {match}"):
        read_box_files(paths)


def test_gt_rows_from_one_block_are_stacked_without_copy(tmp_path):
    for i, n in enumerate((3, 0, 5)):
        write_results(tmp_path, f"g{i}", np.arange(n * 4, dtype=float).reshape(n, 4) + 1, truncate=True)
    parts = read_box_files([tmp_path / f"g{i}.txt" for i in range(3)])
    stacked = S._consecutive_rows(parts)
    assert stacked is not None and stacked.shape == (8, 4) and np.shares_memory(stacked, parts[0])
    np.testing.assert_array_equal(stacked, np.concatenate(parts))
    assert S._consecutive_rows([parts[2], parts[0]]) is None  # out of order: copied instead
    np.testing.assert_array_equal(S._stack_rows([parts[2], parts[0]]), np.concatenate([parts[2], parts[0]]))


@pytest.mark.parametrize("profile", ["vl_python", "pytracking", "matlab", "got10k", "mgit"])
def test_blockwise_vectorized_scoring_equals_loop_across_block_edges(tmp_path, monkeypatch, profile):
    """Frames split into blocks of 7 so sequences straddle block edges; random boxes with
    invalid GT, zero-size and short/long predictions; counts must equal the per-sequence loop."""
    monkeypatch.setattr(S, "_BLOCK_FRAMES", 7)
    rng = np.random.default_rng(5)
    seqs, gt_dir = [], tmp_path / "gt"
    for i in range(6):
        n = int(rng.integers(1, 30))
        gt = np.column_stack([rng.integers(-3, 50, (n, 2)), rng.integers(0, 30, (n, 2))]).astype(float)
        pred = gt + rng.normal(0, 4, gt.shape)
        pred[:, 2:] = np.abs(pred[:, 2:])
        pred[rng.random(n) < 0.2, 2] = 0.0  # zero-size rows: repaired from the previous row
        if i == 2:
            pred = pred[: max(1, n - 4)]  # short: zero-padded (python profiles) or rejected
        if i == 3:
            pred = np.vstack([pred, pred[:3]])  # long: truncated
        write_results(gt_dir, f"s{i}", gt, truncate=True)
        write_results(tmp_path / "res", f"s{i}", pred, truncate=True)
        absent = rng.random(n) < 0.1
        seqs.append((f"s{i}", absent))
    parts = read_box_files([gt_dir / f"{name}.txt" for name, _ in seqs])  # one block, as the loaders give
    sequences = [Sequence(name=name, frames=[], boxes=b, dataset="tnl2k", meta={"absent": a, "image_size": (60.0, 50.0)})
                 for (name, a), b in zip(seqs, parts)]
    fast = S.score_dataset(sequences, tmp_path / "res", profile)
    slow = S.score_dataset_loop(sequences, tmp_path / "res", profile)
    assert fast.names == slow.names and fast.failures == slow.failures and fast.names
    for a, b in zip(fast.counts, slow.counts):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.testing.assert_array_equal(fast.n_frames, slow.n_frames)
    assert fast.frame1_iou == pytest.approx(slow.frame1_iou, nan_ok=True)
