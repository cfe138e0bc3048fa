"""The UI in headless Chromium: `mvlm serve` in a subprocess, driven over W3C WebDriver.

chromedriver speaks WebDriver over plain HTTP, so httpx (already a dependency) is the whole
client: no selenium, no driver download. Skipped where Debian's `chromium` and
`chromium-driver` are not installed (scripts/install_browser.sh installs them).

Set MVLM_UI_SCREENSHOT=docs/ui.png to also save a screenshot taken while tracking.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("MVLM_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MVLM_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000"]
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"  # W3C WebDriver element reference

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
                       reason=f"no Chromium at {CHROMIUM} or chromedriver at {CHROMEDRIVER} "
                              "(run scripts/install_browser.sh)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"{what} did not answer at {url} within {timeout} s")


class WebDriver:
    """The few W3C WebDriver commands the test needs, over HTTP to chromedriver."""

    def __init__(self, port: int, user_data_dir: Path):
        self.base = f"http://127.0.0.1:{port}"
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM, "args": [*CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}"]}}}}
        value = self._call("POST", "/session", caps, timeout=60)
        self.session = f"/session/{value['sessionId']}"

    def _call(self, method: str, path: str, body: dict | None = None, timeout: float = 30) -> dict:
        response = httpx.request(method, self.base + path, json=body, timeout=timeout)
        value = response.json().get("value")
        if response.status_code != 200:
            raise RuntimeError(f"WebDriver {method} {path}: {value}")
        return value

    def get(self, url: str) -> None:
        self._call("POST", f"{self.session}/url", {"url": url})

    def js(self, script: str, *args):
        return self._call("POST", f"{self.session}/execute/sync", {"script": script, "args": list(args)})

    def click(self, css: str) -> None:
        element = self._call("POST", f"{self.session}/element", {"using": "css selector", "value": css})
        if ELEMENT_KEY not in element:
            raise RuntimeError(f"WebDriver: no element reference in {element}")
        self._call("POST", f"{self.session}/element/{element[ELEMENT_KEY]}/click", {})

    def text(self, element_id: str) -> str:
        return self.js("return document.getElementById(arguments[0]).textContent", element_id)

    def wait_text(self, element_id: str, predicate, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.text(element_id)
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                message = self.text("message")
                raise TimeoutError(f"#{element_id} stayed {text!r} (page message: {message!r})")
            time.sleep(0.2)

    def screenshot(self) -> bytes:
        return base64.b64decode(self._call("GET", f"{self.session}/screenshot"))

    def quit(self) -> None:
        try:
            self._call("DELETE", self.session, timeout=10)
        except Exception:
            pass


@pytest.fixture()
def server(tmp_path):
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    log = open(tmp_path / "serve.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mvlm", "serve", "--port", str(port), "--data-root", str(tmp_path),
         "--work-dir", str(tmp_path / "work")],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_http(url + "api/status", process, "mvlm serve")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture()
def browser(tmp_path):
    port = free_port()
    driver_process = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
    driver = None
    try:
        wait_http(f"http://127.0.0.1:{port}/status", driver_process, "chromedriver", timeout=30)
        driver = WebDriver(port, tmp_path / "chromium-profile")
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        driver_process.terminate()
        try:
            driver_process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            driver_process.kill()


def frame_number(counter_text: str) -> int:
    """'12 / 120' -> 12; '–' -> 0."""
    head = counter_text.split("/")[0].strip()
    return int(head) if head.isdigit() else 0


def test_ui_tracks_a_sample_and_updates_frame_counter_and_kappa(server, browser):
    browser.get(server)
    browser.wait_text("state", lambda t: t.startswith("idle"))
    browser.click("#btn-load-model")
    assert "RANDOM-INIT" in browser.wait_text("model-info", lambda t: "network" in t)
    browser.js("document.getElementById('sample-frames').value = '90'")
    browser.click("#btn-sample")
    browser.wait_text("video-info", lambda t: "90 frames" in t)
    assert browser.js("return document.getElementById('text').value").strip()  # the sample's sentence
    # drag a box on the first-frame preview: the canvas maps CSS pixels to video pixels
    browser.js("""
        const c = document.getElementById('frame-canvas'), r = c.getBoundingClientRect();
        const ev = (type, fx, fy) => new MouseEvent(type, {bubbles: true,
            clientX: r.left + fx * r.width, clientY: r.top + fy * r.height});
        c.dispatchEvent(ev('mousedown', 0.25, 0.25));
        c.dispatchEvent(ev('mousemove', 0.5, 0.5));
        window.dispatchEvent(ev('mouseup', 0.5, 0.5));""")
    drawn_box = [int(v) for v in browser.text("box-info").removeprefix("box ").split(",")]
    assert all(abs(a - b) <= 1 for a, b in zip(drawn_box, [64, 48, 64, 48]))  # 256x192 sample; ±1 px rounding
    browser.click("#btn-clear-box")  # template-free: the sentence alone
    browser.click("#btn-start")

    first = frame_number(browser.wait_text("frame-counter", lambda t: frame_number(t) >= 2))
    kappa = browser.wait_text("kappa", lambda t: t not in ("", "–"))
    float(kappa)
    assert browser.text("mode") in ("local", "global")
    later = frame_number(browser.wait_text("frame-counter", lambda t: frame_number(t) >= first + 3))
    assert later > first
    assert browser.text("frame-counter").endswith("/ 90")

    shot_path = os.environ.get("MVLM_UI_SCREENSHOT")
    if shot_path:
        browser.wait_text("frame-counter", lambda t: frame_number(t) >= 30, timeout=120)
        Path(shot_path).write_bytes(browser.screenshot())

    browser.click("#btn-pause")
    browser.wait_text("state", lambda t: t.startswith("paused"))
    browser.js("document.getElementById('new-text').value = 'the small blue circle'")
    browser.click("#btn-switch")
    browser.wait_text("message", lambda t: t == "")
    status = httpx.get(server + "api/status").json()
    deadline = time.monotonic() + 30
    while status["text"] != "the small blue circle" and time.monotonic() < deadline:
        time.sleep(0.2)
        status = httpx.get(server + "api/status").json()
    assert status["text"] == "the small blue circle" and status["state"] == "paused"
    browser.click("#btn-resume")
    browser.wait_text("state", lambda t: t.startswith("running") or t.startswith("finished"))
    # the timeline canvas has been drawn on (some non-background pixels)
    drawn = browser.js("""
        const c = document.getElementById('timeline');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;""")
    assert drawn > 100
