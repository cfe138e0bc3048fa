"""`mvlm serve` against hostile requests: a real `mvlm serve` subprocess on 127.0.0.1 driven
with httpx (cross-site uploads and POSTs, DNS rebinding, symlinks out of the data root,
oversize bodies, bad seeds, the CDN docs page, temp files after SIGTERM).

docs/reliability.md ("Server") lists each case with the test that covers it.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

W, H = 128, 96
CLIENT = {"X-MVLM-Client": "1"}  # what the page's JS sends
OCTET = {"Content-Type": "application/octet-stream"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def small_video(path: Path, frames: int = 6) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for i in range(frames):
        img = np.full((H, W, 3), 30, np.uint8)
        cv2.rectangle(img, (10 + 5 * i, 30), (30 + 5 * i, 50), (255, 0, 0), -1)
        writer.write(img)
    writer.release()
    return path


def frame_folder(folder: Path, frames: int = 3) -> Path:
    folder.mkdir(parents=True)
    for i in range(frames):
        cv2.imwrite(str(folder / f"{i + 1:08d}.jpg"), np.full((H, W, 3), 40 * i, np.uint8))
    return folder


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    root: Path
    log: Path

    @property
    def origin(self) -> str:
        return self.url.rstrip("/")

    def work_dir(self) -> Path:
        match = re.search(r"work dir (\S+)\)", self.log.read_text())
        assert match, self.log.read_text()
        return Path(match.group(1))

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(self.url + path, timeout=30, **kwargs)


def start_server(tmp_path: Path, *extra: str) -> Server:
    root = tmp_path / "data"
    root.mkdir(exist_ok=True)
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "mvlm", "serve", "--port", str(port), "--data-root", str(root),
         "--upload-limit-mb", "1", *extra],
        stdout=subprocess.DEVNULL, stderr=open(log, "w"), cwd=tmp_path)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, f"mvlm serve exited: {log.read_text()}"
        try:
            httpx.get(url + "api/status", timeout=1)
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    return Server(url, process, root, log)


@pytest.fixture()
def server(tmp_path):
    srv = start_server(tmp_path)
    yield srv
    if srv.process.poll() is None:
        srv.process.send_signal(signal.SIGTERM)
        try:
            srv.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            srv.process.kill()


def detail(response: httpx.Response) -> str:
    """Every refusal is JSON with a `detail`; never a traceback."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert "Traceback" not in json.dumps(body)
    return body["detail"] if isinstance(body["detail"], str) else json.dumps(body["detail"])


def uploads(srv: Server) -> list[Path]:
    return sorted((srv.work_dir() / "uploads").iterdir())


# ---------------------------------------------------------------------------------------------
# cross-site requests


def test_upload_with_a_foreign_origin_is_refused_and_stores_nothing(server, tmp_path):
    data = small_video(tmp_path / "clip.avi").read_bytes()
    for headers in ({"Origin": "http://evil.example", **OCTET},
                    {"Origin": "http://evil.example", **OCTET, **CLIENT},  # the header alone is not enough
                    {"Origin": "null", **OCTET},
                    {"Referer": "http://evil.example/page.html", **OCTET}):
        response = server.post("api/video/upload", params={"filename": "clip.avi"}, content=data, headers=headers)
        assert response.status_code == 403, (headers, response.text)
        assert "not this server" in detail(response)
    assert uploads(server) == []
    assert httpx.get(server.url + "api/status").json()["video"] is None
    # the page's own upload still works
    ok = server.post("api/video/upload", params={"filename": "clip.avi"}, content=data,
                     headers={"Origin": server.origin, **OCTET, **CLIENT})
    assert ok.status_code == 200, ok.text
    assert ok.json()["frame_count"] == 6


def test_text_plain_or_form_upload_is_refused(server, tmp_path):
    data = small_video(tmp_path / "clip.avi").read_bytes()
    # what a cross-site <form> or simple fetch() sends: a safelisted type, foreign Origin
    cross = server.post("api/video/upload", params={"filename": "clip.avi"}, content=data,
                        headers={"Origin": "http://evil.example", "Content-Type": "text/plain"})
    assert cross.status_code == 403
    # even same-origin with the header: only raw octet-stream bodies are uploads
    for ctype in ("text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"):
        response = server.post("api/video/upload", params={"filename": "clip.avi"}, content=data,
                               headers={"Origin": server.origin, "Content-Type": ctype, **CLIENT})
        assert response.status_code == 415, (ctype, response.text)
        assert "application/octet-stream" in detail(response)
    assert uploads(server) == []


def test_body_less_post_needs_the_client_header(server):
    for headers in ({}, {"Origin": server.origin}, {"Content-Type": "text/plain"}):
        response = server.post("api/track/stop", headers=headers)
        assert response.status_code == 403, (headers, response.text)
        assert "X-MVLM-Client" in detail(response)
    assert server.post("api/track/stop", headers=CLIENT).status_code == 200
    assert server.post("api/track/stop", headers={"Origin": server.origin, **CLIENT}).status_code == 200
    # a JSON body is a non-simple request too: accepted without the header
    assert server.post("api/video/path", json={"path": "none.avi"}).status_code == 404


def test_foreign_host_header_is_refused(server):
    port = server.url.split(":")[-1].rstrip("/")
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "", "a b"):
        response = httpx.get(server.url + "api/status", headers={"Host": host})
        assert response.status_code == 400, (host, response.text)
        assert "not served here" in detail(response)
        posted = server.post("api/track/stop", headers={"Host": host, **CLIENT})
        assert posted.status_code == 400
    for host in (f"localhost:{port}", f"LOCALHOST.:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        assert httpx.get(server.url + "api/status", headers={"Host": host}).status_code == 200, host


def test_allow_host_adds_a_name(tmp_path):
    srv = start_server(tmp_path, "--allow-host", "tracker.lan")
    try:
        assert httpx.get(srv.url + "api/status", headers={"Host": "tracker.lan:1"}).status_code == 200
        assert httpx.get(srv.url + "api/status", headers={"Host": "evil.example"}).status_code == 400
    finally:
        srv.process.send_signal(signal.SIGTERM)
        srv.process.wait(timeout=20)


# ---------------------------------------------------------------------------------------------
# paths


def test_symlinked_img_folder_out_of_the_root_is_refused(server, tmp_path):
    outside = frame_folder(tmp_path / "secret_frames")
    seq = server.root / "seq"
    seq.mkdir()
    (seq / "img").symlink_to(outside)
    response = server.post("api/video/path", json={"path": "seq"})
    assert response.status_code == 403, response.text
    assert "outside the allowed roots" in detail(response) and "secret_frames" not in detail(response)
    assert httpx.get(server.url + "api/status").json()["video"] is None


def test_symlinked_frame_file_out_of_the_root_is_refused(server, tmp_path):
    secret = tmp_path / "secret.jpg"
    cv2.imwrite(str(secret), np.full((H, W, 3), 255, np.uint8))
    folder = frame_folder(server.root / "frames", frames=2)
    (folder / "00000003.jpg").symlink_to(secret)
    response = server.post("api/video/path", json={"path": "frames"})
    assert response.status_code == 403, response.text
    assert "00000003.jpg" in detail(response)
    # links that stay inside the root are fine
    (folder / "00000003.jpg").unlink()
    (folder / "00000003.jpg").symlink_to(folder / "00000001.jpg")
    ok = server.post("api/video/path", json={"path": "frames"})
    assert ok.status_code == 200 and ok.json()["frame_count"] == 3


# ---------------------------------------------------------------------------------------------
# sizes, validation, docs


def test_oversize_json_body_is_413(server):
    big = json.dumps({"path": "x" * 300_000})
    response = server.post("api/video/path", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "limit" in detail(response)

    def chunks():  # no Content-Length: counted while reading
        yield b'{"path": "'
        for _ in range(40):
            yield b"x" * 10_000
        yield b'"}'

    chunked = server.post("api/video/path", content=chunks(), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
    assert httpx.get(server.url + "api/status").status_code == 200  # still serving


def test_oversize_upload_is_413_and_leaves_nothing(server):
    response = server.post("api/video/upload", params={"filename": "big.avi"}, content=b"\0" * 1_200_000,
                           headers={**OCTET, **CLIENT})
    assert response.status_code == 413 and "limit" in detail(response)
    assert uploads(server) == []


@pytest.mark.parametrize("path, body", [
    ("api/video/sample", {"seed": -1}),
    ("api/video/sample", {"seed": 2**40}),
    ("api/video/sample", {"seed": "abc"}),
    ("api/model", {"seed": -1}),
    ("api/track/start", {"text": "x", "box": "nope"}),
])
def test_bad_values_are_4xx_json(server, path, body):
    response = server.post(path, json=body)
    assert 400 <= response.status_code < 500, response.text
    assert "seed" in detail(response) or "box" in detail(response)


def test_malformed_requests_are_4xx_json(server):
    broken = server.post("api/video/path", content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and detail(broken)
    assert httpx.get(server.url + "api/history", params={"since": "x"}).status_code == 422
    assert httpx.get(server.url + "api/nothing").status_code == 404
    assert detail(httpx.get(server.url + "static/nothing.js"))


def test_docs_pages_are_off_and_nothing_loads_from_a_cdn(server):
    for path in ("docs", "redoc", "docs/oauth2-redirect"):
        response = httpx.get(server.url + path)
        assert response.status_code == 404, path
        assert "cdn" not in response.text.lower()
    page = httpx.get(server.url).text + httpx.get(server.url + "static/app.js").text
    assert not re.search(r"https?://", page.replace("http://127.0.0.1", ""))


# ---------------------------------------------------------------------------------------------
# files left behind


def test_a_new_upload_replaces_the_last_one(server, tmp_path):
    data = small_video(tmp_path / "clip.avi").read_bytes()
    for _ in range(3):
        ok = server.post("api/video/upload", params={"filename": "clip.avi"}, content=data,
                         headers={**OCTET, **CLIENT})
        assert ok.status_code == 200, ok.text
        assert len(uploads(server)) == 1
    frame_folder(server.root / "frames")
    assert server.post("api/video/path", json={"path": "frames"}).status_code == 200
    assert uploads(server) == []  # the upload is no longer on screen: gone


def test_temp_dir_is_removed_after_sigterm(server, tmp_path):
    work = server.work_dir()
    assert work.is_dir() and work.name.startswith("mvlm-serve-")
    data = small_video(tmp_path / "clip.avi").read_bytes()
    assert server.post("api/video/upload", params={"filename": "clip.avi"}, content=data,
                       headers={**OCTET, **CLIENT}).status_code == 200
    assert len(uploads(server)) == 1
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn may re-raise it
    assert not work.exists(), list(work.rglob("*"))


def test_given_work_dir_keeps_the_folder_but_not_our_files(tmp_path):
    work = tmp_path / "work"
    srv = start_server(tmp_path, "--work-dir", str(work))
    data = small_video(tmp_path / "clip.avi").read_bytes()
    assert srv.post("api/video/upload", params={"filename": "clip.avi"}, content=data,
                    headers={**OCTET, **CLIENT}).status_code == 200
    assert len(list((work / "uploads").iterdir())) == 1
    srv.process.send_signal(signal.SIGTERM)
    assert srv.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert work.is_dir() and list((work / "uploads").iterdir()) == []


# ---------------------------------------------------------------------------------------------
# the page's own JS under the new rules


@pytest.mark.skipif(not shutil.which("node"), reason="Node.js not installed")
def test_the_page_js_uploads_and_posts_under_the_rules(server, tmp_path):
    """app.js in Node with a stub DOM against the live server, with a browser's Origin."""
    from mvlm.serve.app import STATIC_DIR

    video = small_video(tmp_path / "clip.avi")
    run = subprocess.run(["node", str(Path(__file__).with_name("ui_js_harness.js")), str(STATIC_DIR / "app.js"),
                          server.url, str(video)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["upload"] == "ok" and out["stop"] == "ok", out
    assert len(uploads(server)) == 1
    posts = [s for s in out["sent"] if s["method"] == "POST"]
    assert {s["url"].split("?")[0] for s in posts} >= {"api/video/upload", "api/track/stop"}
    assert all(s["headers"].get("X-MVLM-Client") for s in posts), posts
    upload = next(s for s in posts if s["url"].startswith("api/video/upload"))
    assert upload["headers"]["Content-Type"] == "application/octet-stream"
