"""`mvlm demo`: annotated video + results on a generated sequence; clear errors on bad input."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from mvlm import demo
from mvlm.cli import main

W, H, N = 128, 96, 20


@pytest.fixture(autouse=True)
def headless(monkeypatch):
    """These runs are headless even on a desktop (a live window opens whenever $DISPLAY is set)."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def generated_sequence(out: Path, frames: int = N, width: int = W, height: int = H, seed: int = 0) -> tuple[Path, str]:
    """One sequence from the embedded generator (LaSOT layout): (folder, sentence)."""
    from mvlm.serve.app import make_sample

    return make_sample(out, frames, width, height, seed)


@pytest.fixture(scope="module")
def sequence(tmp_path_factory) -> tuple[Path, str]:
    return generated_sequence(tmp_path_factory.mktemp("seq") / "sample")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_results(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)


@pytest.mark.slow  # first model build + torch/open_clip import: ~10-40 s on a shared 2-core box
def test_demo_on_generated_sequence_writes_playable_video_and_results(sequence, tmp_path, capsys):
    seq_dir, sentence = sequence
    video, results = tmp_path / "annotated.mp4", tmp_path / "results.txt"
    rc = main(["demo", "--frames", str(seq_dir), "--text", sentence, "--out", str(video),
               "--results", str(results), "--quiet"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "RANDOM-INIT" in err and "no --checkpoint" in err
    cap = cv2.VideoCapture(str(video))
    assert cap.isOpened()
    decoded = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (H, W, 3)
        decoded += 1
    cap.release()
    assert decoded == N
    boxes = read_results(results)
    assert boxes.shape == (N, 4)  # frame 0 is predicted too (template-free global pass)
    assert np.isfinite(boxes).all() and (boxes[:, 2] > 0).all() and (boxes[:, 3] > 0).all()
    assert not (tmp_path / "results.txt.tmp").exists()


def test_demo_reads_a_video_file_with_init_box_and_max_frames(sequence, tmp_path):
    seq_dir, sentence = sequence
    video = tmp_path / "in.mp4"
    writer = demo.VideoWriterMP4(video, fps=25)
    for frame in demo.ImageFolderSource(seq_dir).frames():
        writer.write(frame)
    writer.close()
    results = tmp_path / "r.txt"
    rc = main(["demo", "--video", str(video), "--text", sentence, "--init-box", "10,20,30,40",
               "--max-frames", "5", "--results", str(results), "--quiet"])
    assert rc == 0
    boxes = read_results(results)
    assert boxes.shape == (5, 4)
    np.testing.assert_allclose(boxes[0], [10, 20, 30, 40])  # the given box is frame 0's result


@pytest.mark.parametrize("argv, needle", [
    (["--video", "{tmp}/missing.mp4"], "missing.mp4: video file not found"),
    (["--video", "{tmp}/corrupt.mp4"], "corrupt.mp4: cannot"),
    (["--frames", "{tmp}/nowhere"], "nowhere: frame folder not found"),
    (["--frames", "{tmp}", "--init-box", "1,2,3"], "expected four numbers"),
    (["--frames", "{tmp}", "--init-box", "1,2,nan,4"], "NaN"),
    (["--frames", "{tmp}", "--init-box", "1,2,0,4"], "width and height must be > 0"),
    (["--frames", "{tmp}", "--checkpoint", "{tmp}/none.safetensors"], "none.safetensors: checkpoint file not found"),
])
def test_demo_bad_input_is_a_clear_error(tmp_path, capsys, argv, needle):
    (tmp_path / "corrupt.mp4").write_bytes(b"this is not a video" * 50)
    cv2.imwrite(str(tmp_path / "00000001.jpg"), np.zeros((H, W, 3), np.uint8))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    rc = main(["demo", *argv, "--text", "a cat"])
    assert rc == 2
    assert needle in capsys.readouterr().err


def test_empty_sentence_and_corrupt_frame_are_clear_errors(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "00000001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(demo.DemoError, match="sentence is empty"):
        demo.check_text("   ")
    with pytest.raises(demo.DemoError, match="00000001.jpg: cannot decode"):
        demo.ImageFolderSource(folder).first_frame()
    with pytest.raises(demo.DemoError, match="outside the 128x96 frame"):
        demo.check_box([200, 10, 5, 5], "init box", (H, W, 3))


def test_frame_folder_order_is_natural(tmp_path):
    for name in ["img10.png", "img2.png", "img1.png"]:
        cv2.imwrite(str(tmp_path / name), np.zeros((4, 4, 3), np.uint8))
    assert [p.name for p in demo.ImageFolderSource(tmp_path).paths] == ["img1.png", "img2.png", "img10.png"]


def test_annotate_draws_box_in_mode_colour_and_keeps_the_input():
    frame = np.zeros((H, W, 3), np.uint8)
    res = demo.FrameResult(3, np.array([40.0, 50.0, 30.0, 20.0]), 0.25, "global", "local", 0.01)
    out = demo.annotate(frame, res, "the red ball", fps=12.0)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert frame.max() == 0  # input untouched
    b, g, r = demo.MODE_COLOURS["global"]
    np.testing.assert_array_equal(out[70, 55], [r, g, b])  # bottom edge of the box, in RGB
    assert out[:12, :40].max() == 255  # white label text at the top left


def test_mjpeg_parts_yield_each_new_frame_then_stop():
    source = demo.FrameBroadcaster()
    jpeg = demo.encode_jpeg(np.full((H, W, 3), 128, np.uint8))
    source.publish(jpeg, {"frame": 0})

    async def collect():
        parts = []
        async for part in demo.mjpeg_parts(source, interval=0.001):
            parts.append(part)
            if len(parts) == 1:
                source.publish(jpeg, {"frame": 1})
                source.close()
        return parts

    parts = asyncio.run(collect())
    assert len(parts) == 2
    assert parts[0].startswith(b"--frame\r\nContent-Type: image/jpeg\r\n")
    assert jpeg in parts[0] and parts[0].endswith(b"\xff\xd9\r\n")


def test_stream_server_serves_mjpeg_on_loopback():
    import httpx

    source = demo.FrameBroadcaster()
    jpeg = demo.encode_jpeg(np.full((H, W, 3), 200, np.uint8))
    source.publish(jpeg, {"frame": 7, "kappa": 0.5})
    server = demo.BackgroundServer(demo.stream_app(source), "127.0.0.1", free_port()).start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert httpx.get(server.url + "status").json()["frame"] == 7
        with httpx.stream("GET", server.url + "stream", timeout=5) as response:
            assert response.headers["content-type"].startswith("multipart/x-mixed-replace")
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if b"\xff\xd9" in data:
                    break
        assert data.startswith(b"--frame") and jpeg in data
    finally:
        source.close()
        server.stop()
    assert not server.thread.is_alive()
