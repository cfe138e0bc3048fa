"""`mvlm serve` API through fastapi.testclient: load, track, pause/resume, switch, safety."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from mvlm.demo import VideoWriterMP4
from mvlm.serve.app import STATIC_DIR, ServeConfig, create_app, safe_upload_name

W, H = 128, 96


def wait_for(client: TestClient, predicate, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get("/api/status").json()
        if predicate(status):
            return status
        assert status["state"] != "error", status["error"]
        assert time.monotonic() < deadline, f"timed out; last status {status}"
        time.sleep(0.05)


@pytest.fixture()
def data_root(tmp_path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture()
def client(data_root, tmp_path):
    app = create_app(ServeConfig(data_root=data_root, upload_limit_mb=0.05, work_dir=tmp_path / "work"))
    # the page's rules: a loopback Host and the client header on every request
    with TestClient(app, base_url="http://127.0.0.1", headers={"X-MVLM-Client": "1"}) as c:
        yield c


def small_video(path: Path, frames: int = 8) -> Path:
    writer = VideoWriterMP4(path, fps=10)
    for i in range(frames):
        img = np.full((H, W, 3), 30, np.uint8)
        cv2.rectangle(img, (10 + 5 * i, 30), (30 + 5 * i, 50), (255, 0, 0), -1)
        writer.write(img)
    writer.close()
    return path


@pytest.mark.slow  # builds the random-init tiny network and tracks ~60 frames (~10-30 s on 2 shared cores)
def test_load_sample_track_pause_resume_switch(client):
    model = client.post("/api/model", json={"preset": "tiny"}).json()
    assert model["random_init"] is True and "RANDOM-INIT" in model["description"]

    video = client.post("/api/video/sample", json={"frames": 60, "width": W, "height": H, "seed": 3})
    assert video.status_code == 200, video.text
    info = video.json()
    assert (info["width"], info["height"], info["frame_count"]) == (W, H, 60)
    assert info["suggested_text"].strip()
    first = client.get("/api/video/first_frame")
    assert first.headers["content-type"] == "image/jpeg" and first.content[:2] == b"\xff\xd8"

    started = client.post("/api/track/start", json={"text": info["suggested_text"]})
    assert started.status_code == 200, started.text
    status = wait_for(client, lambda s: s["frames_done"] >= 3)
    assert status["kappa"] is not None and status["mode"] in ("local", "global")
    assert len(status["box"]) == 4

    assert client.post("/api/track/pause").json()["state"] == "paused"
    frozen = client.get("/api/status").json()["frames_done"]
    time.sleep(0.5)
    assert client.get("/api/status").json()["frames_done"] == frozen  # no progress while paused

    # a new sentence while paused re-initializes on the frame on screen
    switched = client.post("/api/track/sentence", json={"text": "the other object"})
    assert switched.json() == {"queued": True, "text": "the other object", "box": None}
    status = wait_for(client, lambda s: s["text"] == "the other object")
    assert status["state"] == "paused" and status["frames_done"] == frozen + 1
    history = client.get("/api/history").json()["items"]
    assert history[0]["event"] == "init" and history[-1]["event"] == "switch"
    assert history[-1]["frame"] == history[-2]["frame"]

    assert client.post("/api/track/resume").json()["state"] == "running"
    status = wait_for(client, lambda s: s["state"] == "finished", timeout=120)
    assert status["frame"] == 59
    history = client.get("/api/history", params={"since": 0}).json()
    assert [h["frame"] for h in history["items"] if h["event"] != "switch"] == list(range(60))
    tail = client.get("/api/history", params={"since": history["next"] - 2}).json()["items"]
    assert tail == history["items"][-2:]
    latest = client.get("/api/frame.jpg")
    decoded = cv2.imdecode(np.frombuffer(latest.content, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (H, W, 3)


def test_control_errors_are_409_with_reasons(client, data_root):
    assert client.post("/api/track/start", json={"text": "x"}).status_code == 409
    assert "load a model first" in client.post("/api/track/start", json={"text": "x"}).json()["detail"]
    assert client.post("/api/track/pause").status_code == 409
    assert client.post("/api/track/resume").status_code == 409
    assert client.post("/api/track/sentence", json={"text": "y"}).status_code == 409
    assert client.get("/api/frame.jpg").status_code == 404
    assert client.get("/api/video/first_frame").status_code == 404


def test_path_traversal_and_outside_paths_are_rejected(client, data_root, tmp_path):
    outside = small_video(tmp_path / "outside.mp4")
    (data_root / "link.mp4").symlink_to(outside)
    for path in ["../outside.mp4", "sub/../../outside.mp4", str(outside), "/etc/passwd", "link.mp4"]:
        response = client.post("/api/video/path", json={"path": path})
        assert response.status_code == 403, (path, response.text)
    assert client.post("/api/video/path", json={"path": "nothing.mp4"}).status_code == 404
    assert client.post("/api/video/path", json={"path": ""}).status_code == 400
    bad = client.post("/api/model", json={"checkpoint": "../../x.safetensors"})
    assert bad.status_code == 403


def test_video_inside_root_loads_and_corrupt_file_is_named(client, data_root):
    small_video(data_root / "clip.mp4")
    info = client.post("/api/video/path", json={"path": "clip.mp4"}).json()
    assert (info["width"], info["height"], info["frame_count"]) == (W, H, 8)
    (data_root / "broken.mp4").write_bytes(b"garbage" * 100)
    response = client.post("/api/video/path", json={"path": "broken.mp4"})
    assert response.status_code == 400 and "broken.mp4" in response.json()["detail"]


def test_upload_is_sanitized_and_size_limited(client, tmp_path):
    session = client.app.state.session
    data = small_video(tmp_path / "up.mp4").read_bytes()
    assert len(data) < 0.05 * 1024 * 1024
    octet = {"Content-Type": "application/octet-stream"}
    ok = client.post("/api/video/upload", params={"filename": "../../evil name;rm.mp4"}, content=data,
                     headers=octet)
    assert ok.status_code == 200, ok.text
    saved = list(session.upload_dir.iterdir())
    assert len(saved) == 1 and saved[0].parent == session.upload_dir
    assert re.fullmatch(r"[0-9a-f]{8}_evil_name_rm\.mp4", saved[0].name)
    assert ok.json()["frame_count"] == 8 and ok.json()["bytes"] == len(data)

    big = client.post("/api/video/upload", params={"filename": "big.mp4"}, content=b"\0" * 60_000, headers=octet)
    assert big.status_code == 413
    assert len(list(session.upload_dir.iterdir())) == 1  # nothing left behind

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(10):
            yield b"\0" * 10_000

    assert client.post("/api/video/upload", params={"filename": "s.mp4"}, content=chunks(),
                       headers=octet).status_code == 413
    assert client.post("/api/video/upload", params={"filename": "page.html"}, content=data,
                       headers=octet).status_code == 400
    assert len(list(session.upload_dir.iterdir())) == 1


def test_safe_upload_name_keeps_only_the_basename():
    for raw in ["../../etc/x.mp4", "C:\\Users\\me\\x.mp4", "/abs/x.mp4", ".x.mp4"]:
        name = safe_upload_name(raw)
        assert "/" not in name and "\\" not in name and ".." not in name and name.endswith("x.mp4")


def test_ui_assets_come_from_the_package_without_cdn(client):
    page = client.get("/")
    assert page.status_code == 200 and 'src="static/app.js"' in page.text
    for name in ["app.js", "style.css"]:
        assert client.get(f"/static/{name}").status_code == 200
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), f"external URL in {path.name}"
    presets = client.get("/api/presets").json()
    assert "tiny" in presets["model"] and "tf" in presets["tracker"]


def test_serve_command_rejects_a_missing_data_root(tmp_path, capsys):
    from mvlm.cli import main

    assert main(["serve", "--data-root", str(tmp_path / "nope")]) == 2
    assert "nope: data root is not a folder" in capsys.readouterr().err
