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


# --------------------------------------------------------------------------------------------
# loaders and mvlm evaluate

SPEC_KW = dict(model_preset="tiny", compat="corrected", seed=0)


def _load(root):
    from mvlm.data.benchmarks import load_dataset

    return {s.name: s for s in load_dataset("lasot", root)}


def test_loader_reports_a_non_ascii_frame_name_and_an_unreadable_gt(data, monkeypatch):
    dirs = _seq_dirs(data)
    odd, locked = list(dirs)[:2]
    (dirs[odd] / "img" / "².jpg").write_bytes((dirs[odd] / "img" / "00000001.jpg").read_bytes())
    locked_gt = dirs[locked] / "groundtruth.txt"
    real_read = Path.read_bytes

    def read_bytes(self):  # root reads any file, so the permission error is simulated
        if self == locked_gt:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    from mvlm.data.benchmarks.common import usability_reasons

    seqs = _load(data)
    assert any("².jpg" in r and "not frame numbers" in r for r in usability_reasons(seqs[odd]))
    assert any(str(locked_gt) in r and "cannot read" in r for r in usability_reasons(seqs[locked]))


def test_evaluate_never_tracks_an_unusable_sequence(data, tmp_path):
    """Missing middle frame, too few frames, no GT: failed with the loader's problems, not tracked."""
    from mvlm.evaluate.runner import RunOptions, run_dataset
    from mvlm.track.tracker import TrackerSpec

    dirs = _seq_dirs(data)
    gap, short, no_gt = dirs
    (dirs[gap] / "img" / "00000010.jpg").unlink()
    for i in range(15, 21):
        (dirs[short] / "img" / f"{i:08d}.jpg").unlink()
    (dirs[no_gt] / "groundtruth.txt").unlink()
    out = tmp_path / "out"
    summary = run_dataset(list(_load(data).values()), out, TrackerSpec(**SPEC_KW), options=RunOptions(init="box"))
    assert sorted(summary["failed"]) == sorted(dirs) and summary["done"] == []
    errors = {f["sequence"]: f["error"] for f in json.loads((out / "failures.json").read_text())}
    assert "missing frame files (first: 00000010.jpg)" in errors[gap]
    assert "14 frames for 20 GT rows" in errors[short]
    assert "groundtruth.txt: file not found" in errors[no_gt]
    assert not list(out.glob("*.txt"))  # nothing tracked


def test_worker_device_spreads_workers_over_gpus():
    from mvlm.evaluate.runner import worker_device

    assert [worker_device("cuda", i, 2) for i in range(4)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert worker_device("cpu", 3, 2) == "cpu" and worker_device("cuda:1", 0, 4) == "cuda:1"
    assert worker_device("cuda", 5, 8, local_rank=3) == "cuda:3"  # torchrun: the rank's GPU
    assert worker_device("cuda", 1, 0) == "cuda"  # no GPU visible: the build reports it


def test_resume_tracks_again_what_other_inputs_made(data, tmp_path, capsys):
    import cv2

    from mvlm.evaluate.runner import RunOptions, run_dataset
    from mvlm.track.tracker import TrackerSpec

    spec, options, out = TrackerSpec(**SPEC_KW), RunOptions(init="box", max_frames=3), tmp_path / "out"
    first = run_dataset(list(_load(data).values()), out, spec, options=options)
    assert len(first["done"]) == 3
    meta = json.loads((out / f"{first['done'][0]}_meta.json").read_text())
    assert len(meta["frame_seconds"]) == 3 and all(t > 0 for t in meta["frame_seconds"])
    assert set(meta["inputs"]) == {"frames", "frames_sha256", "sentence_sha256", "gt_sha256"}
    dirs = _seq_dirs(data)
    moved_box, new_frame, same = dirs
    gt = np.loadtxt(dirs[moved_box] / "groundtruth.txt", delimiter=",")
    gt[0, 0] += 3
    np.savetxt(dirs[moved_box] / "groundtruth.txt", gt, fmt="%d", delimiter=",")
    frame = dirs[new_frame] / "img" / "00000002.jpg"
    cv2.imwrite(str(frame), np.zeros((72, 96, 3), np.uint8))
    old_boxes = (out / f"{moved_box}.txt").read_bytes()
    again = run_dataset(list(_load(data).values()), out, spec, resume=True, options=options)
    assert sorted(again["stale"]) == sorted([moved_box, new_frame]) and again["skipped"] == [same]
    assert again["stale_reasons"] == {moved_box: "ground truth changed", new_frame: "frame files (names or sizes) changed"}
    assert "ground truth changed" in capsys.readouterr().err
    assert [p.read_bytes() for p in out.glob(f"stale/*/{moved_box}.txt")] == [old_boxes]
    assert json.loads((out / f"{moved_box}_meta.json").read_text())["frame1_box"][0] == gt[0, 0]


# --------------------------------------------------------------------------------------------
# real processes: a worker killed by SIGKILL, a parent killed by SIGKILL


def _evaluate_cmd(data, out, *extra):
    import sys

    return [sys.executable, "-m", "mvlm", "evaluate", "--dataset", "lasot", "--root", str(data), "--out", str(out),
            "--compat", "corrected", "--quiet", *extra]


@pytest.mark.slow
def test_a_worker_killed_by_sigkill_fails_its_sequence_and_the_run_finishes(synth, tmp_path):
    import os
    import subprocess

    from mvlm.evaluate.runner import KILL_HOOK_ENV

    victim = sorted(_seq_dirs(synth))[1]
    out = tmp_path / "out"
    proc = subprocess.run(_evaluate_cmd(synth, out, "--workers", "2", "--max-frames", "4"),
                          env={**os.environ, KILL_HOOK_ENV: victim}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == [victim] and sorted(summary["done"]) == sorted(set(_seq_dirs(synth)) - {victim})
    failures = json.loads((out / "failures.json").read_text())
    assert failures[0]["error"] == "worker died (signal SIGKILL)"


def _children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (from /proc: no psutil needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_workers_die_with_a_parent_killed_by_sigkill(synth, tmp_path):
    import signal
    import subprocess
    import time

    parent = subprocess.Popen(_evaluate_cmd(synth, tmp_path / "out", "--workers", "2"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        workers: list[int] = []
        while len(workers) < 2 and time.time() < deadline:
            # spawn starts a resource tracker too; the workers are the children that run mvlm-eval-worker
            workers = [p for p in _children(parent.pid)
                       if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
            time.sleep(0.2)
        assert len(workers) == 2
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.time() + 5
        while any(_alive(p) for p in workers) and time.time() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers)
    finally:
        parent.kill()
