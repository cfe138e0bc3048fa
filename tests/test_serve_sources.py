"""`mvlm serve` video sources beside path / upload / sample: a URL (public addresses only, pinned
after one DNS answer, size and time limits) and the page's camera (encoded frames posted as
octet-stream); a sentence or box switch; the text-weights file list. No external address is
ever contacted: refusals use loopback, the accept path patches the resolver and the connect."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from mvlm.serve import fetch
from mvlm.serve.app import ServeConfig, create_app

from test_serve import data_root, small_video, wait_for  # noqa: F401 (data_root: a fixture)

PUBLIC_IP = "93.184.215.14"  # a public address: never contacted, the test's connect redirects it


@pytest.fixture()
def client(data_root, tmp_path):
    app = create_app(ServeConfig(data_root=data_root, upload_limit_mb=0.05, work_dir=tmp_path / "work",
                                 url_time_limit_s=10))
    with TestClient(app, base_url="http://127.0.0.1", headers={"X-MVLM-Client": "1"}) as c:
        yield c


@pytest.fixture()
def local_http(tmp_path):
    """A loopback HTTP server with a small video at /clip.mp4 and a big file at /big.mp4."""
    root = tmp_path / "www"
    root.mkdir()
    small_video(root / "clip.mp4")
    (root / "big.mp4").write_bytes(b"\0" * 200_000)
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

        def do_GET(self):
            hits.append(self.headers.get("Host", ""))
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://127.0.0.1/clip.mp4")
                self.end_headers()
                return
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hits
    finally:
        server.shutdown()
        server.server_close()


def fake_dns(monkeypatch, answers: dict[str, list], port: int | None = None):
    """Patch the resolver (a name -> successive answers) and the connect (public IP -> loopback)."""
    calls: list[str] = []
    connects: list[tuple] = []

    def resolve(host, port_, *args, **kwargs):
        calls.append(host)
        if host not in answers:  # an IP literal (a redirect target): the real resolver
            return socket.getaddrinfo(host, port_, *args, **kwargs)
        ips = answers[host].pop(0) if isinstance(answers[host][0], list) else answers[host]
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port_))
                for ip in ips]

    def connect(address, timeout=None, *args):
        connects.append(address)
        assert address[0] == PUBLIC_IP, f"connected to an unpinned address {address}"
        return socket.create_connection(("127.0.0.1", port), timeout)

    monkeypatch.setattr(fetch, "RESOLVE", resolve)
    monkeypatch.setattr(fetch, "CONNECT", connect)
    return calls, connects


# ---------------------------------------------------------------------------------------- URL

@pytest.mark.parametrize("url, status, words", [
    ("ftp://example.org/v.mp4", 400, "only http and https"),
    ("file:///etc/passwd", 400, "only http and https"),
    ("http://user:pw@example.org/v.mp4", 400, "user name or password"),
    ("http:///v.mp4", 400, "no host"),
    ("http://169.254.169.254/latest/meta-data", 403, "link-local"),
    ("http://[::1]/v.mp4", 403, "loopback"),
    ("http://[::ffff:10.0.0.1]/v.mp4", 403, "private"),
    ("http://0.0.0.0/v.mp4", 403, "unspecified"),
    ("http://100.64.0.1/v.mp4", 403, "not a public address"),
])
def test_url_refusals(client, url, status, words):
    r = client.post("/api/video/url", json={"url": url})
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert client.get("/api/status").json()["video"] is None


def test_url_on_a_loopback_server_is_refused_by_ip_and_by_name(client, local_http):
    port, hits = local_http
    for host in ("127.0.0.1", "localhost"):
        r = client.post("/api/video/url", json={"url": f"http://{host}:{port}/clip.mp4"})
        assert r.status_code == 403, r.text
        assert "loopback" in r.json()["detail"]
    assert hits == []  # refused before any connection
    assert not list((client.app.state.session.upload_dir).iterdir())


def test_url_refused_when_any_resolved_address_is_private(client, monkeypatch, local_http):
    port, hits = local_http
    fake_dns(monkeypatch, {"mixed.example": [PUBLIC_IP, "192.168.1.7"]}, port)
    r = client.post("/api/video/url", json={"url": "http://mixed.example/clip.mp4"})
    assert r.status_code == 403 and "192.168.1.7 is a private address" in r.json()["detail"]
    assert hits == []


def test_url_accepted_pinned_to_the_one_dns_answer(client, monkeypatch, local_http):
    port, hits = local_http
    # a rebinding name: public at the check, loopback on any later lookup
    calls, connects = fake_dns(monkeypatch, {"videos.example": [[PUBLIC_IP], ["127.0.0.1"]]}, port)
    r = client.post("/api/video/url", json={"url": "http://videos.example/clip.mp4"})
    assert r.status_code == 200, r.text
    info = r.json()
    assert (info["width"], info["height"], info["frame_count"]) == (128, 96, 8)
    assert calls == ["videos.example"]  # resolved once
    assert connects == [(PUBLIC_IP, 80)]  # connected to the checked address
    assert hits == ["videos.example"]  # the Host header names the URL's host


def test_url_redirect_to_loopback_is_refused(client, monkeypatch, local_http):
    port, hits = local_http
    fake_dns(monkeypatch, {"videos.example": [PUBLIC_IP]}, port)
    r = client.post("/api/video/url", json={"url": "http://videos.example/redirect"})
    assert r.status_code == 403 and "loopback" in r.json()["detail"]
    assert hits == ["videos.example"]


def test_url_size_limit_and_http_errors(client, monkeypatch, local_http):
    port, _ = local_http
    fake_dns(monkeypatch, {"videos.example": [PUBLIC_IP]}, port)
    r = client.post("/api/video/url", json={"url": "http://videos.example/big.mp4"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    r = client.post("/api/video/url", json={"url": "http://videos.example/missing.mp4"})
    assert r.status_code == 502 and "404" in r.json()["detail"]
    assert not list(client.app.state.session.upload_dir.iterdir())  # nothing left behind


def test_url_time_limit(monkeypatch, tmp_path):
    """A server trickling bytes cannot hold the fetch past its time limit."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def trickle():
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        with pytest.raises(OSError):
            for _ in range(100):
                conn.sendall(b"x")
                time.sleep(0.1)
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    fake_dns(monkeypatch, {"slow.example": [PUBLIC_IP]}, port)
    t0 = time.monotonic()
    with pytest.raises(fetch.FetchError, match="time limit"):
        fetch.fetch_to_file("http://slow.example/v.mp4", tmp_path / "v.mp4", 10**6, time_limit=1.0)
    assert time.monotonic() - t0 < 5
    assert not (tmp_path / "v.mp4").exists()
    listener.close()


# ---------------------------------------------------------------------------------------- webcam

def jpeg(value: int, w: int = 160, h: int = 120) -> bytes:
    img = np.full((h, w, 3), value, np.uint8)
    cv2.rectangle(img, (40, 30), (80, 70), (0, 0, 255), -1)
    return cv2.imencode(".jpg", img)[1].tobytes()


RAW = {"Content-Type": "application/octet-stream"}


def test_webcam_frames_need_octet_stream_an_image_and_a_loaded_webcam(client):
    assert client.post("/api/webcam/frame", content=jpeg(50), headers=RAW).status_code == 409
    r = client.post("/api/video/webcam", content=jpeg(50), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 415
    r = client.post("/api/video/webcam", content=b"not an image", headers=RAW)
    assert r.status_code == 400 and "not a JPEG" in r.json()["detail"]
    r = client.post("/api/video/webcam", content=b"\0" * (5 * 1024 * 1024), headers=RAW)
    assert r.status_code == 413
    r = client.post("/api/video/webcam", content=jpeg(50), headers=RAW)
    assert r.status_code == 200, r.text
    assert r.json()["live"] is True and (r.json()["width"], r.json()["height"]) == (160, 120)
    assert client.get("/api/video/first_frame").content[:2] == b"\xff\xd8"
    r = client.post("/api/webcam/frame", content=jpeg(60, 320, 240), headers=RAW)
    assert r.status_code == 400 and "differs" in r.json()["detail"]
    assert client.post("/api/webcam/frame", content=jpeg(60), headers=RAW).json()["received"] == 1


@pytest.mark.slow  # random-init tiny network on a few camera frames
def test_webcam_tracks_posted_frames_switches_by_box_and_stops(client):
    assert client.post("/api/model", json={"preset": "tiny"}).status_code == 200
    assert client.post("/api/video/webcam", content=jpeg(50), headers=RAW).status_code == 200
    r = client.post("/api/track/start", json={"text": "the red square", "box": [40, 30, 40, 40]})
    assert r.status_code == 200, r.text
    for i in range(6):
        client.post("/api/webcam/frame", content=jpeg(50 + i), headers=RAW)
        time.sleep(0.15)
    status = wait_for(client, lambda s: s["frames_done"] >= 3)
    assert status["total_frames"] == -1 and status["state"] == "running"
    # a drawn box alone: same sentence, re-initialized on the frame on screen
    assert client.post("/api/track/sentence", json={}).status_code == 400
    r = client.post("/api/track/sentence", json={"box": [10, 10, 30, 30]})
    assert r.status_code == 200 and r.json()["text"] == "the red square"
    client.post("/api/webcam/frame", content=jpeg(70), headers=RAW)
    deadline = time.monotonic() + 30
    while not any(h["event"] == "switch" for h in client.get("/api/history").json()["items"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert client.post("/api/track/stop").json()["state"] == "stopped"  # not waiting for a frame


# ---------------------------------------------------------------------------------------- files

def test_weights_file_list_is_confined_to_the_data_root(client, data_root, tmp_path):
    (data_root / "clip").mkdir()
    (data_root / "clip" / "text.safetensors").write_bytes(b"x")
    (data_root / "notes.txt").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.pt").write_bytes(b"x")
    (data_root / "link").symlink_to(outside, target_is_directory=True)
    (data_root / "linked.pt").symlink_to(outside / "secret.pt")
    files = client.get("/api/files", params={"kind": "weights"}).json()["files"]
    assert files == ["clip/text.safetensors"]
    assert client.get("/api/files", params={"kind": "etc"}).status_code == 400
