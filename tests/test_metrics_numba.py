"""The compiled (numba) scoring paths against the numpy ones they replace: the parser against
Python's float() and the tolerant per-file parser, the per-frame kernel against `_frame_errors`
+ `threshold_bins`, and whole `score_dataset` runs with and without ``MVLM_NO_NUMBA=1``."""

from __future__ import annotations

import numpy as np
import pytest

from mvlm.data.benchmarks.common import parse_rows
from mvlm.data.sequence import DataError, Sequence
from mvlm.evaluate import metrics as M
from mvlm.evaluate import results as R
from mvlm.evaluate import scoring as S
from mvlm.evaluate.profiles import PROFILES

pytest.importorskip("numba")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the numpy side meets NaN/inf on purpose

PIECES = ["1", "-2", "+3", "0.5", ".5", "5.", "-0", "-0.0", "12345678", "1234567.1234567", "633", "0.0001",
          "1e3", "nan", "inf", "7", "-.25", "00012", "999999999999999", "9999999999999999", "--1", "1-", "x", ""]
SEPARATORS = [",", "\t", " ", ";", ",,", " ,", "\t\t"]
LINE_ENDS = ["\n", "\r\n", "\r", "\n\n", "  \n", ",\n", "\t\r\n"]


@pytest.fixture
def numba_on(monkeypatch):
    monkeypatch.delenv("MVLM_NO_NUMBA", raising=False)
    assert M.numba_enabled()


def _random_text(rng) -> str:
    lines = []
    for _ in range(rng.integers(0, 5)):
        n_tokens = rng.choice([4, 4, 4, 3, 5, 0])
        tokens = [PIECES[rng.integers(0, 11 if rng.random() < 0.7 else len(PIECES))] for _ in range(n_tokens)]
        line = "".join(tok + (SEPARATORS[rng.integers(0, len(SEPARATORS))] if rng.random() < 0.3 else ",")
                       for tok in tokens[:-1]) + (tokens[-1] if tokens else "")
        lines.append(line + (LINE_ENDS[rng.integers(0, len(LINE_ENDS))] if rng.random() < 0.9 else ""))
    return "".join(lines)


def test_compiled_parser_equals_tolerant_parser_on_random_text(numba_on):
    """Every file the compiled parser accepts reads exactly (sign of zero included) as the
    tolerant parser; the files it declines are the careful path's, so the block still matches."""
    rng = np.random.default_rng(11)
    kernel = M.compiled(R._parse_decimals_kernel)
    accepted = declined = 0
    for _ in range(3000):
        text = _random_text(rng)
        raws = [b"1,2,3,4\n", text.encode(), b"5\t6\t7\t8"]  # neighbours must not bleed into it
        starts = np.cumsum([0] + [len(r) for r in raws])
        block, bad = R._parse_decimals(kernel, np.frombuffer(b"".join(raws), dtype=np.uint8), starts, 4)
        try:
            expected = parse_rows(text, "x", ncols=4)
        except DataError:
            expected = None
        if 1 in bad:
            declined += 1
            continue
        accepted += 1
        assert expected is not None, repr(text)
        got = block.parts()[1]
        assert got.shape == expected.shape, repr(text)
        np.testing.assert_array_equal(got, expected, err_msg=repr(text))
        np.testing.assert_array_equal(np.signbit(got), np.signbit(expected), err_msg=repr(text))
        np.testing.assert_array_equal(block.parts()[0], [[1, 2, 3, 4]])
        np.testing.assert_array_equal(block.parts()[2], [[5, 6, 7, 8]])
    assert accepted > 500 and declined > 500  # both sides of the fast path were exercised


@pytest.mark.parametrize("fmt", ["%.4f", "%.7f", "%.2f", "%d", "%.10f", "%.15g", "%.6e"])
def test_compiled_parse_is_float_of_each_token(tmp_path, numba_on, fmt):
    """Correct rounding: mantissa / 10^k is one IEEE division of exact numbers."""
    rng = np.random.default_rng(len(fmt))
    values = rng.uniform(-5000, 5000, (2000, 4)) * rng.choice([1e-6, 1e-3, 1.0, 1e3], (2000, 1))
    values[:5] = [[0.5, -0.0, 2.675, 1.005], [0.1, 0.2, 0.3, 1e-7], [-1.5, 1234567.1234567, 9.999999999, 0.0],
                  [20.0, 19.999999999999996, 0.19999999999999998, 0.2], [1.0, 2.0, 3.0, 4.0]]
    path = tmp_path / "a.txt"
    np.savetxt(path, values, fmt=fmt, delimiter="\t" if fmt == "%d" else ",")
    got = R.read_box_files([path])[0]
    tokens = path.read_text().replace(",", " ").split()
    np.testing.assert_array_equal(got.ravel(), np.array([float(t) for t in tokens]))
    np.testing.assert_array_equal(np.signbit(got.ravel()), np.signbit([float(t) for t in tokens]))


@pytest.mark.parametrize("text,match", [
    ("1,2,3,4,5\n6,7,8,9,10\n", "expected 4 values"),
    ("1,2,3,4\n,\n", "expected 4 values"),  # a line of commas is not blank for the tolerant parser
    ("1,2,3,4\n1,2,3,x\n", "not a number"),
    ("1,2,3,4\n1,2,3,4e\n", "not a number"),
])
def test_declined_broken_file_among_many_is_named(tmp_path, numba_on, text, match):
    good = np.arange(40, dtype=float).reshape(10, 4)
    paths = [R.write_results(tmp_path, f"s{i}", good, truncate=True) for i in range(5)]
    (tmp_path / "broken.txt").write_text(text)
    paths.insert(2, tmp_path / "broken.txt")
    with pytest.raises(R.ResultsError, match=f"broken.txt:\\d+: {match}"):
        R.read_box_files(paths)


def test_declined_files_keep_their_place_in_the_block(tmp_path, numba_on):
    files = {"a.txt": "1,2,3,4\n", "nan.txt": "nan,1,2,3\n4,5,6,7\n", "exp.txt": "1e1,2,3,4\n", "b.txt": "9\t8\t7\t6"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    block = R.read_box_block([tmp_path / n for n in files])
    assert block.offsets.tolist() == [0, 1, 3, 4, 5]
    np.testing.assert_array_equal(block.values[0], [1, 2, 3, 4])
    assert np.isnan(block.values[1, 0]) and block.values[1, 1:].tolist() == [1, 2, 3]
    np.testing.assert_array_equal(block.values[2:], [[4, 5, 6, 7], [10, 2, 3, 4], [9, 8, 7, 6]])


def test_read_files_grows_its_buffer_and_keeps_file_bounds(tmp_path, monkeypatch, numba_on):
    monkeypatch.setattr(R, "_READ_GUESS_PER_FILE", 3)
    monkeypatch.setattr(R, "_READ_MIN_BUFFER", 10)
    rng = np.random.default_rng(4)
    paths = [R.write_results(tmp_path, f"s{i}", rng.uniform(0, 99, (int(rng.integers(0, 40)), 4))) for i in range(25)]
    data, starts = R._read_files([str(p) for p in paths])
    assert [data[a:b].tobytes() for a, b in zip(starts[:-1], starts[1:])] == [p.read_bytes() for p in paths]
    block = R.read_box_block(paths)
    for part, path in zip(block.parts(), paths):
        np.testing.assert_array_equal(part, parse_rows(path.read_text(), path, ncols=4))
    with pytest.raises(R.ResultsError, match="is a directory"):
        R.read_box_block([tmp_path])
    with pytest.raises(R.ResultsError, match="missing.txt: file not found"):
        R.read_box_block([paths[0], tmp_path / "missing.txt"])


def test_env_switch_turns_numba_off(monkeypatch):
    monkeypatch.setenv("MVLM_NO_NUMBA", "1")
    assert not M.numba_enabled() and M.compiled(R._parse_decimals_kernel) is None
    monkeypatch.delenv("MVLM_NO_NUMBA")
    assert M.numba_enabled() and M.compiled(R._parse_decimals_kernel) is not None


def _special_frames(rng, f: int):
    """GT and predictions with ties, zeros, negatives, NaN and inf, in (F, 4) column-major."""
    gt = np.column_stack([rng.integers(-5, 60, (f, 2)), rng.integers(0, 40, (f, 2))]).astype(float)
    pred = gt + rng.choice([0.0, 0.5, 1.0, -3.0, 20.0], (f, 4)) * rng.integers(-2, 3, (f, 4))
    specials = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-300, 1e300])
    for arr in (pred, gt):
        hit = rng.random((f, 4)) < 0.02
        arr[hit] = rng.choice(specials, hit.sum())
    return np.asfortranarray(pred), np.asfortranarray(gt)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_frame_kernel_equals_numpy_on_special_values(numba_on, profile):
    """Counts of the compiled kernel = `_frame_errors` + `threshold_bins` + bincount, with
    flags, empty sequences and sequences straddling the kernel's block edges."""
    prof = PROFILES[profile]
    rng = np.random.default_rng(sorted(PROFILES).index(profile))
    lengths = rng.integers(400, 1200, 12)
    lengths[[2, 7]] = 0
    f = int(lengths.sum())
    assert f > 2 * S._KERNEL_BLOCK
    pred, gt = _special_frames(rng, f)
    visible, absent, lasot = rng.random(f) < 0.9, rng.random(f) < 0.1, rng.random(f) < 0.5
    image_wh = np.repeat(rng.uniform(20, 80, (len(lengths), 2)), lengths, axis=0)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    kernel = M.compiled(S._frame_hits_kernel)
    for flags in ((None, None, None), (visible, absent, lasot)):
        fast = S._frame_counts_compiled(kernel, pred, gt, *flags, image_wh, prof, offsets)
        slow = S._frame_counts_numpy(pred, gt, *flags, image_wh, prof, offsets)
        for a, b in zip(fast, slow):
            if b is None:
                assert a is None
            else:
                np.testing.assert_array_equal(a, b)


def _write_run(tmp_path, rng, n_seq=9):
    seqs, gt_dir = [], tmp_path / "gt"
    for i in range(n_seq):
        n = int(rng.integers(1, 700))
        gt = np.column_stack([rng.integers(-3, 500, (n, 2)), rng.integers(0, 80, (n, 2))]).astype(float)
        pred = gt + rng.normal(0, 6, gt.shape)
        pred[:, 2:] = np.abs(pred[:, 2:])
        pred[rng.random(n) < 0.05, 3] = 0.0
        if i == 2:
            pred = pred[: max(1, n - 5)]
        if i == 3:
            pred = np.vstack([pred, pred[:4]])
        R.write_results(gt_dir, f"s{i}", gt, truncate=True)
        R.write_results(tmp_path / "res", f"s{i}", pred, truncate=bool(i % 2))  # int tab and %.4f comma
        seqs.append((f"s{i}", rng.random(n) < 0.1, rng.random(n) < 0.9))
    parts = R.read_box_files([gt_dir / f"{name}.txt" for name, _, _ in seqs])
    return [Sequence(name=name, frames=[], boxes=b, visible=v, dataset="lasot" if k % 3 == 0 else "tnl2k",
                     meta={"absent": a, "image_size": (600.0, 500.0)})
            for k, ((name, a, v), b) in enumerate(zip(seqs, parts))]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_score_dataset_identical_with_and_without_numba(tmp_path, monkeypatch, profile):
    sequences = _write_run(tmp_path, np.random.default_rng(3))
    monkeypatch.delenv("MVLM_NO_NUMBA", raising=False)
    fast = S.score_dataset(sequences, tmp_path / "res", profile)
    monkeypatch.setenv("MVLM_NO_NUMBA", "1")
    plain = S.score_dataset(sequences, tmp_path / "res", profile)
    loop = S.score_dataset_loop(sequences, tmp_path / "res", profile)
    assert fast.names == plain.names == loop.names and fast.failures == plain.failures == loop.failures
    for a, b, c in zip(fast.counts, plain.counts, loop.counts):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
            np.testing.assert_array_equal(a[key], c[key], err_msg=key)
    np.testing.assert_array_equal(fast.n_frames, plain.n_frames)
    assert fast.scores() == plain.scores()
