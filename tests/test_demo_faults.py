"""`mvlm demo` when its input breaks part-way: results are written atomically and only on
success; a partial run goes to `.partial` and exits non-zero; a failed start creates nothing;
a truncated video is flagged. Runs the real command in a subprocess.

docs/reliability.md ("Demo") lists each case with the test that covers it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mvlm import demo

W, H = 128, 96
GOOD = "1.0000,2.0000,3.0000,4.0000\n"  # an earlier run's results: must survive a failed run


def run_demo(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "mvlm", "demo", "--text", "the bright square", "--quiet", "--no-display",
                           *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def frames(folder: Path, count: int, corrupt: int | None = None) -> Path:
    folder.mkdir()
    for i in range(count):
        img = np.full((H, W, 3), 20, np.uint8)
        cv2.rectangle(img, (10 + 4 * i, 30), (30 + 4 * i, 50), (255, 255, 255), -1)
        cv2.imwrite(str(folder / f"{i + 1:08d}.jpg"), img)
    if corrupt is not None:
        (folder / f"{corrupt + 1:08d}.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return folder


def avi(path: Path, count: int) -> Path:
    """MJPG in AVI: the header states the frame count, so a cut file still opens."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for i in range(count):
        img = np.random.default_rng(i).integers(0, 255, (H, W, 3), dtype=np.uint8)
        writer.write(img)
    writer.release()
    return path


@pytest.mark.slow  # one `mvlm demo` subprocess (torch import + tiny network): ~10-20 s
def test_corrupt_frame_keeps_the_good_results_and_writes_partial(tmp_path):
    folder = frames(tmp_path / "seq", 8, corrupt=5)
    results, video = tmp_path / "results.txt", tmp_path / "annotated.mp4"
    results.write_text(GOOD)
    video.write_bytes(b"an earlier video")
    run = run_demo("--frames", str(folder), "--results", str(results), "--out", str(video), cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert results.read_text() == GOOD and video.read_bytes() == b"an earlier video"
    partial = tmp_path / "results.txt.partial"
    assert np.loadtxt(partial, delimiter=",", ndmin=2).shape == (5, 4)  # frames 0..4, then the bad one
    assert (tmp_path / "annotated.partial.mp4").stat().st_size > 0
    assert "00000006.jpg" in run.stderr and "stopped after 5 frames" in run.stderr
    assert str(partial) in run.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp") or ".tmp." in p.name]


@pytest.mark.slow
def test_failed_start_creates_no_file_and_keeps_the_old_one(tmp_path):
    folder = frames(tmp_path / "seq", 4)
    kept, fresh = tmp_path / "kept.txt", tmp_path / "fresh.txt"
    kept.write_text(GOOD)
    # the box lies outside the frame: the tracker refuses frame 0, after the model was built
    for target in (kept, fresh):
        run = run_demo("--frames", str(folder), "--init-box", "500,500,10,10", "--results", str(target),
                       cwd=tmp_path)
        assert run.returncode == 2 and "outside the 128x96 frame" in run.stderr
    assert kept.read_text() == GOOD
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt", "seq"]


@pytest.mark.slow
def test_truncated_video_warns_with_the_frames_read(tmp_path):
    whole = avi(tmp_path / "whole.avi", 20)
    cut = tmp_path / "cut.avi"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    results = tmp_path / "r.txt"
    run = run_demo("--video", str(cut), "--results", str(results), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    read = np.loadtxt(results, delimiter=",", ndmin=2).shape[0]
    assert 0 < read < 20
    assert f"read {read} frames, but the file reports 20" in run.stderr


def test_results_writer_is_all_or_partial(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text(GOOD)
    writer = demo.ResultsWriter(path)
    assert writer.close(ok=False) is None and not (tmp_path / "r.txt.partial").exists()  # nothing tracked
    writer.write(np.array([5.0, 6, 7, 8]))
    assert path.read_text() == GOOD  # nothing appears while running
    assert writer.close(ok=False) == tmp_path / "r.txt.partial"
    assert path.read_text() == GOOD
    writer = demo.ResultsWriter(path)
    writer.write(np.array([5.0, 6, 7, 8]))
    assert writer.close(ok=True) == path and path.read_text() == "5.0000,6.0000,7.0000,8.0000\n"


def test_summary_flags_truncation_but_not_max_frames():
    assert demo.DemoSummary(frames=10, expected_frames=20).truncated
    assert not demo.DemoSummary(frames=20, expected_frames=20).truncated
    assert not demo.DemoSummary(frames=5, expected_frames=20, stopped_early=True).truncated
    assert not demo.DemoSummary(frames=5, expected_frames=-1).truncated  # webcam: unknown length
