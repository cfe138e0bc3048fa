"""Reading result files: every encoding the field writes, correct rounding, and errors that name
the broken file and line even when it is read together with many good ones."""

from __future__ import annotations

import numpy as np
import pytest

from mvlm.evaluate.results import ResultsError, read_box_files, write_results


def test_many_files_read_together_equal_each_read_alone(tmp_path):
    files = {
        "tab_int.txt": "1\t2\t3\t4\n-5\t6\t7\t8\n",
        "comma_float.txt": "1.2500,2.5000,30.0000,40.7500\n-0.7000,0.6000,3.2000,4.0000\n",
        "crlf.txt": "1,2,3,4\r\n5,6,7,8\r\n",
        "no_final_newline.txt": "9,10,11,12",
        "empty.txt": "",
        "spaces.txt": "1 2 3 4\n5 6 7 8\n",
        "nan.txt": "1,2,3,4\nnan,nan,nan,nan\n",
        "blank_line.txt": "1,2,3,4\n\n5,6,7,8\n",
        "semicolon.txt": "1;2;3;4\n",
        "exponent.txt": "1e1,2,3,4\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    paths = [tmp_path / n for n in files]
    together = read_box_files(paths)
    one_by_one = [read_box_files([p])[0] for p in paths]
    for name, a, b in zip(files, together, one_by_one):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert [len(a) for a in together] == [2, 2, 2, 1, 0, 2, 2, 2, 1, 1]
    np.testing.assert_array_equal(together[1][1], [-0.7, 0.6, 3.2, 4.0])
    assert np.isnan(together[6][1]).all()
    np.testing.assert_array_equal(together[9][0], [10, 2, 3, 4])
    # without the files pandas declines, the joined call itself gives the same arrays
    clean = read_box_files(paths[:4])
    for a, b in zip(clean, one_by_one[:4]):
        np.testing.assert_array_equal(a, b)


def test_parse_is_correctly_rounded_like_python_float(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.uniform(-2000, 2000, (3000, 4))
    values[:3] = [[0.5, -0.0, 2.675, 1.005], [0.1, 0.2, 0.3, 1e-7], [20.0, 19.999999999999996, 0.19999999999999998, 0.2]]
    for i, fmt in enumerate(("%.4f", "%.17g", "%.6e", "%d")):
        np.savetxt(tmp_path / f"{i}.txt", values, fmt=fmt, delimiter="\t" if fmt == "%d" else ",")
    arrays = read_box_files([tmp_path / f"{i}.txt" for i in range(4)])
    for i, arr in enumerate(arrays):
        text = (tmp_path / f"{i}.txt").read_text().replace(",", " ").split()
        expected = np.array([float(t) for t in text])
        np.testing.assert_array_equal(arr.ravel(), expected)
        np.testing.assert_array_equal(np.signbit(arr.ravel()), np.signbit(expected))


@pytest.mark.parametrize("text,match", [
    ("1,2,3,4,5\n6,7,8,9,10\n", "expected 4 values"),  # pandas alone would drop the 5th column
    ("1,2,3,4\n1,2,3\n", "expected 4 values"),
    ("1,2,3,4\n,\n", "expected 4 values"),  # a line of commas is not a blank line
    ("1,2,3,4\n1,2,\"3\",4\n", "not a number"),
    ("1,2,3,4\n1,2,3,x\n", "not a number"),
    ("1,2,3,4\n1,2,3,4e\n", "not a number"),
])
def test_one_broken_file_among_many_is_named(tmp_path, text, match):
    good = np.arange(40, dtype=float).reshape(10, 4)
    paths = [write_results(tmp_path, f"s{i}", good, truncate=True) for i in range(9)]
    (tmp_path / "broken.txt").write_text(text)
    paths.insert(4, tmp_path / "broken.txt")
    with pytest.raises(ResultsError, match=f"broken.txt:\\d+: {match}"):
        read_box_files(paths)


def test_unreadable_files_are_named(tmp_path):
    (tmp_path / "dir.txt").mkdir()
    (tmp_path / "latin1.txt").write_bytes(b"1,2,3,\xe9\n")
    with pytest.raises(ResultsError, match="dir.txt: is a directory"):
        read_box_files([tmp_path / "dir.txt"])
    with pytest.raises(ResultsError, match="latin1.txt: not UTF-8"):
        read_box_files([tmp_path / "latin1.txt"])
    with pytest.raises(ResultsError, match="nope.txt: file not found"):
        read_box_files([tmp_path / "nope.txt"])
