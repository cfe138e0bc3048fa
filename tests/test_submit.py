"""`mvlm submit mgit`: zip names and layout as the VideoCube toolkit packs them, file formats,
times from the meta files, and the errors for missing, short, NaN and untimed results."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest

from mvlm.cli import main
from mvlm.evaluate.results import write_results

TRACKER = "MVLM"


@pytest.fixture(scope="module")
def test_ids(real_data):
    table = json.loads((real_data / "mgit" / "mgit.json").read_text())
    return table["tiny"]["test"]


def _fake_results(folder, ids, frames=5, seed=0):
    """Float boxes + the runner's meta (per-frame tracker_ms) for each id; returns them."""
    rng = np.random.default_rng(seed)
    made = {}
    for k, seq in enumerate(ids):
        n = frames + k % 3
        boxes = rng.uniform(1, 300, size=(n, 4)).round(4)
        ms = rng.uniform(5, 40, size=n).round(3).tolist()
        write_results(folder, seq, boxes, {"sequence": seq, "frames": n, "tracker_ms": ms,
                                           "decode_ms": [1.0] * n, "complete": True})
        made[seq] = (boxes, ms)
    return made


def _split_json(tmp_path, ids):
    path = tmp_path / "mgit.json"
    path.write_text(json.dumps({"tiny": {"train": [], "val": [], "test": ids}}))
    return path


def _fake_root(tmp_path, made):
    """An MGIT root with the README's data/test/<id>/frame_<id>/ layout, one empty jpg per box."""
    root = tmp_path / "MGIT"
    for seq, (boxes, _) in made.items():
        folder = root / "data" / "test" / seq / f"frame_{seq}"
        folder.mkdir(parents=True)
        for i in range(len(boxes)):
            (folder / f"{i:06d}.jpg").write_bytes(b"")
    root.mkdir(exist_ok=True)
    (root / "mgit.json").write_text(json.dumps({"tiny": {"test": list(made)}}))
    return root


def test_zip_layout_formats_and_times(tmp_path, test_ids, capsys):
    ids = test_ids[:4]
    made = _fake_results(tmp_path / "res", ids)
    _fake_results(tmp_path / "res", ["002"])  # a train sequence: left out, said so
    out = tmp_path / "sub.zip"
    rc = main(["submit", "mgit", "--results", str(tmp_path / "res"), "--out", str(out),
               "--root", str(_fake_root(tmp_path, made))])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert json.loads(captured.out)["sequences"] == 4 and "002" in captured.err

    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert names[:2] == ["result/", "time/"]
        assert sorted(names[2:]) == sorted([f"result/{TRACKER}_{s}.txt" for s in ids]
                                           + [f"time/{TRACKER}_{s}.txt" for s in ids])
        for seq, (boxes, ms) in made.items():
            box_lines = zf.read(f"result/{TRACKER}_{seq}.txt").decode().splitlines()
            time_lines = zf.read(f"time/{TRACKER}_{seq}.txt").decode().splitlines()
            assert len(box_lines) == len(time_lines) == len(boxes)  # first frame included
            # the toolkit reads both with np.loadtxt(..., delimiter=',')
            assert all(len(line.split(",")) == 4 and "e+" in line for line in box_lines)
            assert np.array_equal(np.loadtxt(box_lines, delimiter=","), boxes)  # no rounding
            assert all(len(line.split(".")[1]) == 8 for line in time_lines)
            np.testing.assert_allclose(np.loadtxt(time_lines, delimiter=","), np.array(ms) / 1000, atol=5e-9)


def test_zip_matches_toolkit_compress_layout(tmp_path, test_ids):
    """Same entry names as shutil.make_archive over the toolkit's submission folder."""
    ids = test_ids[:2]
    _fake_results(tmp_path / "res", ids)
    out = tmp_path / "sub.zip"
    assert main(["submit", "mgit", "--results", str(tmp_path / "res"), "--out", str(out),
                 "--split-json", str(_split_json(tmp_path, ids)), "--tracker-name", "my_tracker"]) == 0
    folder = tmp_path / "submission-tiny"
    with zipfile.ZipFile(out) as zf:
        zf.extractall(folder)
        ours = sorted(zf.namelist())
    reference = shutil.make_archive(str(tmp_path / "ref"), "zip", folder)
    with zipfile.ZipFile(reference) as zf:
        assert sorted(zf.namelist()) == ours
    assert f"result/my_tracker_{ids[0]}.txt" in ours


def test_missing_and_short_sequences_listed(tmp_path, test_ids, capsys):
    ids = test_ids[:4]
    made = _fake_results(tmp_path / "res", ids)
    root = _fake_root(tmp_path, made)
    (tmp_path / "res" / f"{ids[1]}.txt").unlink()
    (tmp_path / "res" / f"{ids[2]}.txt").unlink()
    (root / "data" / "test" / ids[3] / f"frame_{ids[3]}" / "999999.jpg").write_bytes(b"")  # one frame more
    out = tmp_path / "sub.zip"
    rc = main(["submit", "mgit", "--results", str(tmp_path / "res"), "--out", str(out), "--root", str(root)])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert f"2 of 4 sequences missing: {ids[1]}, {ids[2]}" in err
    n = len(made[ids[3]][0])
    assert f"{ids[3]}.txt: {n} boxes for {n + 1} frames" in err


def test_nan_box_and_missing_times_are_errors(tmp_path, test_ids, capsys):
    ids = test_ids[:3]
    made = _fake_results(tmp_path / "res", ids)
    boxes = made[ids[0]][0].copy()
    boxes[2, 1] = np.nan
    write_results(tmp_path / "res", ids[0], boxes)  # boxes only: the old meta stays
    (tmp_path / "res" / f"{ids[1]}_meta.json").unlink()
    meta = tmp_path / "res" / f"{ids[2]}_meta.json"
    meta.write_text(json.dumps({k: v for k, v in json.loads(meta.read_text()).items() if k != "tracker_ms"}))
    rc = main(["submit", "mgit", "--results", str(tmp_path / "res"), "--out", str(tmp_path / "sub.zip"),
               "--split-json", str(_split_json(tmp_path, ids))])
    err = capsys.readouterr().err
    assert rc == 2 and not (tmp_path / "sub.zip").exists()
    assert f"{ids[0]}.txt: non-finite box at frame(s) 3" in err
    assert f"{ids[1]}_meta.json: meta file missing" in err
    assert f"{ids[2]}_meta.json: no per-frame 'tracker_ms' list" in err


def test_needs_an_id_source_and_a_plain_tracker_name(tmp_path, test_ids, capsys):
    _fake_results(tmp_path / "res", test_ids[:1])
    args = ["submit", "mgit", "--results", str(tmp_path / "res"), "--out", str(tmp_path / "s.zip")]
    assert main(args) == 2
    assert "--root" in capsys.readouterr().err
    assert main(args + ["--split-json", str(_split_json(tmp_path, test_ids[:1])), "--tracker-name", "a/b"]) == 2
    assert "tracker name" in capsys.readouterr().err
