"""The UI in headless Chromium: `mvlm serve` in a subprocess, driven over W3C WebDriver.

chromedriver speaks WebDriver over plain HTTP, so httpx (already a dependency) is the whole
client: no selenium, no driver download. Skipped where Debian's `chromium` and
`chromium-driver` are not installed (scripts/install_browser.sh installs them).

Every test saves screenshots of the states it reaches under its pytest tmp dir (``shots/``);
set MVLM_UI_SCREENSHOTS=docs/img to also copy them there (what docs/demo.md shows). Chromium runs
with a fake camera (--use-fake-device-for-media-stream, --use-fake-ui-for-media-stream) so the
webcam source is exercised through the page's real getUserMedia.
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
                  "--window-size=1400,1000", "--use-fake-device-for-media-stream",
                  "--use-fake-ui-for-media-stream"]
# a model load is ~5 s of CPU, but minutes of wall time on a busy 2-core machine
LOAD_S = float(os.environ.get("MVLM_UI_LOAD_TIMEOUT", "600"))
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
        value = self._call("POST", "/session", caps, timeout=180)
        self.session = f"/session/{value['sessionId']}"

    def _call(self, method: str, path: str, body: dict | None = None, timeout: float = 120) -> dict:
        response = httpx.request(method, self.base + path, json=body, timeout=timeout)
        value = response.json().get("value")
        if response.status_code != 200:
            raise RuntimeError(f"WebDriver {method} {path}: {value}")
        return value

    def get(self, url: str) -> None:
        self._call("POST", f"{self.session}/url", {"url": url}, timeout=LOAD_S)

    def js(self, script: str, *args):
        return self._call("POST", f"{self.session}/execute/sync", {"script": script, "args": list(args)})

    def click(self, css: str) -> None:
        element = self._call("POST", f"{self.session}/element", {"using": "css selector", "value": css})
        if ELEMENT_KEY not in element:
            raise RuntimeError(f"WebDriver: no element reference in {element}")
        self._call("POST", f"{self.session}/element/{element[ELEMENT_KEY]}/click", {})

    def text(self, element_id: str) -> str:
        return self.js("return document.getElementById(arguments[0]).textContent", element_id)

    def wait_text(self, element_id: str, predicate, timeout: float = 0) -> str:
        timeout = timeout or LOAD_S / 2  # a busy machine: generous by default
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

    def element(self, css: str) -> str:
        found = self._call("POST", f"{self.session}/element", {"using": "css selector", "value": css})
        return found[ELEMENT_KEY]

    def send_keys(self, css: str, text: str) -> None:
        """Type into an element; for <input type=file>, `text` is the file's path."""
        self._call("POST", f"{self.session}/element/{self.element(css)}/value", {"text": text})

    def drag(self, css: str, start: tuple[float, float], end: tuple[float, float]) -> None:
        """A real mouse drag (W3C actions) between two points given as fractions of the element."""
        element = self.element(css)
        w, h = self.js("const r = document.querySelector(arguments[0]).getBoundingClientRect();"
                       "return [r.width, r.height]", css)
        at = lambda f: {"type": "pointerMove", "duration": 50, "origin": {ELEMENT_KEY: element},  # noqa: E731
                        "x": int((f[0] - 0.5) * w), "y": int((f[1] - 0.5) * h)}
        self._call("POST", f"{self.session}/actions", {"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [at(start), {"type": "pointerDown", "button": 0}, at(((start[0] + end[0]) / 2,
                        (start[1] + end[1]) / 2)), at(end), {"type": "pointerUp", "button": 0}]}]})
        self._call("DELETE", f"{self.session}/actions")

    def select(self, css: str, value: str) -> None:
        self.js("const s = document.querySelector(arguments[0]); s.value = arguments[1];"
                "s.dispatchEvent(new Event('change'));", css, value)

    def value(self, element_id: str) -> str:
        return self.js("return document.getElementById(arguments[0]).value", element_id)

    def quit(self) -> None:
        try:
            self._call("DELETE", self.session, timeout=10)
        except Exception:
            pass


@pytest.fixture()
def shots(tmp_path, request):
    """save(name): a screenshot into the test's tmp dir (and $MVLM_UI_SCREENSHOTS when set)."""
    folder = tmp_path / "shots"
    folder.mkdir()
    extra = os.environ.get("MVLM_UI_SCREENSHOTS")

    def save(browser: "WebDriver", name: str) -> Path:
        png = browser.screenshot()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        path = folder / f"{name}.png"
        path.write_bytes(png)
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            (Path(extra) / f"{name}.png").write_bytes(png)
        return path

    return save


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
        wait_http(url + "api/status", process, "mvlm serve", timeout=LOAD_S)
        yield url
    except BaseException:
        print((tmp_path / "serve.log").read_text()[-3000:])
        raise
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


def status(server: str) -> dict:
    return httpx.get(server + "api/status", timeout=LOAD_S / 4).json()


def wait_status(server: str, predicate, timeout: float = 0) -> dict:
    timeout = timeout or LOAD_S / 2
    deadline = time.monotonic() + timeout
    while True:
        s = status(server)
        if predicate(s):
            return s
        assert s["state"] != "error", s["error"]
        assert time.monotonic() < deadline, f"timed out; last status {s}"
        time.sleep(0.2)


def history(server: str) -> list[dict]:
    return httpx.get(server + "api/history", timeout=LOAD_S / 4).json()["items"]


def tab(browser, name: str) -> None:
    browser.click(f"#tab-{name}")
    assert browser.js(f"return document.getElementById('panel-{name}').hidden") is False


def load_random_model(browser) -> None:
    tab(browser, "model")
    browser.click("#btn-load-model")
    assert "RANDOM-INIT" in browser.wait_text("model-info", lambda t: "network" in t, timeout=LOAD_S)


def test_sample_draw_to_start_pause_draw_to_switch_resume(server, browser, shots):
    browser.get(server)
    browser.wait_text("state", lambda t: t.startswith("idle"))
    load_random_model(browser)
    shots(browser, "ui-model")
    tab(browser, "video")
    browser.js("document.getElementById('sample-frames').value = '150'")
    browser.click("#btn-sample")
    browser.wait_text("video-info", lambda t: "150 frames" in t)
    tab(browser, "track")
    assert browser.value("text").strip()  # the sample's sentence
    # a real mouse drag on the first-frame preview: CSS pixels map to video pixels
    browser.drag("#frame-canvas", (0.25, 0.25), (0.5, 0.5))
    drawn_box = [int(v) for v in browser.text("box-info").removeprefix("box ").split(",")]
    assert all(abs(a - b) <= 2 for a, b in zip(drawn_box, [64, 48, 64, 48]))  # 256x192 sample
    shots(browser, "ui-draw-to-start")
    browser.click("#btn-start")

    first = frame_number(browser.wait_text("frame-counter", lambda t: frame_number(t) >= 2))
    float(browser.wait_text("kappa", lambda t: t not in ("", "–")))
    assert browser.text("mode") in ("local", "global")
    items = history(server)
    assert items[0]["event"] == "init" and items[0]["mode"] == "init"  # the drawn box started it
    later = frame_number(browser.wait_text("frame-counter", lambda t: frame_number(t) >= first + 3))
    assert later > first and browser.text("frame-counter").endswith("/ 150")
    shots(browser, "ui-tracking")

    browser.click("#btn-pause")
    browser.wait_text("state", lambda t: t.startswith("paused"))
    paused_at = status(server)["frames_done"]
    time.sleep(0.6)
    assert status(server)["frames_done"] == paused_at  # nothing advances while paused
    # draw a new box on the (paused) live frame and switch with the sentence unchanged
    sentence = status(server)["text"]
    browser.drag("#frame-canvas", (0.55, 0.5), (0.8, 0.8))
    assert browser.text("switch-box-info").startswith("new box")
    shots(browser, "ui-draw-to-switch")
    browser.click("#btn-switch")
    browser.wait_text("message", lambda t: t.startswith("switched: box"))
    switch = next(it for it in reversed(history(server)) if it["event"] == "switch")
    s = status(server)
    assert s["state"] == "paused" and s["text"] == sentence and switch["mode"] == "init"
    assert s["box"][0] == pytest.approx(0.55 * 256, abs=3) and s["box"][1] == pytest.approx(0.5 * 192, abs=3)
    # and a new sentence alone
    browser.js("document.getElementById('new-text').value = 'the small blue circle'")
    browser.click("#btn-switch")
    wait_status(server, lambda s: s["text"] == "the small blue circle")
    shots(browser, "ui-paused")
    browser.click("#btn-resume")
    browser.wait_text("state", lambda t: t.startswith("running") or t.startswith("finished"))
    wait_status(server, lambda s: s["frames_done"] > paused_at + 2)
    # the timeline canvas has been drawn on (some non-background pixels)
    drawn = browser.js("""
        const c = document.getElementById('timeline');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;""")
    assert drawn > 100
    browser.click("#btn-stop")
    browser.wait_text("state", lambda t: t.startswith("stopped") or t.startswith("finished"))


def test_webcam_source_through_getusermedia(server, browser, shots):
    browser.get(server)
    load_random_model(browser)
    tab(browser, "video")
    browser.click("#btn-webcam")
    info = browser.wait_text("video-info", lambda t: t.startswith("webcam"))
    assert "640×480" in info and browser.text("webcam-info").startswith("on")
    shots(browser, "ui-webcam")
    tab(browser, "track")
    browser.js("document.getElementById('text').value = 'the moving pattern'")
    browser.drag("#frame-canvas", (0.3, 0.3), (0.6, 0.6))
    browser.click("#btn-start")
    # frames keep arriving from the fake camera: the counter passes the first snapshot
    try:
        browser.wait_text("frame-counter", lambda t: frame_number(t) >= 5)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; server status {status(server)}") from exc
    assert browser.text("frame-counter").endswith("/ ?")
    shots(browser, "ui-webcam-tracking")
    browser.click("#btn-stop")
    browser.wait_text("state", lambda t: t.startswith("stopped"))
    tab(browser, "video")
    browser.click("#btn-webcam-off")
    assert browser.text("webcam-info") == "off"


def test_path_upload_and_url_sources(server, browser, shots, tmp_path):
    from test_serve import small_video

    small_video(tmp_path / "clip.mp4", frames=12)
    browser.get(server)
    tab(browser, "video")
    browser.send_keys("#video-path", "clip.mp4")
    browser.click("#btn-load-path")
    browser.wait_text("video-info", lambda t: t.startswith("clip.mp4") and "12 frames" in t)
    browser.send_keys("#upload-file", str(tmp_path / "clip.mp4"))
    browser.click("#btn-upload")
    browser.wait_text("video-info", lambda t: t.endswith("fps") and "_clip.mp4" in t)
    # a loopback URL (this very server) is refused after resolution; the reason is on the page
    browser.send_keys("#video-url", server + "static/style.css")
    browser.click("#btn-url")
    message = browser.wait_text("message", lambda t: "refused" in t)
    assert "loopback" in message and "_clip.mp4" in browser.text("video-info")
    shots(browser, "ui-url-refused")
    browser.js("document.getElementById('video-url').value = 'ftp://example.org/a.mp4'")
    browser.click("#btn-url")
    browser.wait_text("message", lambda t: "only http and https" in t)


def test_released_checkpoint_from_the_list(server, browser, shots, tmp_path):
    import torch

    from mvlm.config import model_config
    from mvlm.model import MVLMNet
    from test_released_checkpoints import write_released

    models = tmp_path / "models"
    models.mkdir()
    torch.manual_seed(0)
    write_released(models / "MVLM_TF.pth.tar", MVLMNet(model_config(preset="tiny")).state_dict(), 1)
    browser.get(server)
    tab(browser, "model")
    browser.wait_text("checkpoint-list", lambda t: "MVLM_TF.pth.tar" in t)
    assert "mode and preset not stated" in browser.text("checkpoint-list")
    browser.select("#checkpoint-list", "0")
    assert browser.value("checkpoint") == "models/MVLM_TF.pth.tar"
    # without the mode the one loader refuses: the reason is shown in the page
    browser.select("#ckpt-preset", "tiny")
    browser.click("#btn-load-model")
    error = browser.wait_text("model-error", lambda t: t.startswith("load failed"), timeout=LOAD_S)
    assert "pass the mode" in error
    shots(browser, "ui-model-error")
    browser.select("#ckpt-mode", "tf")
    browser.click("#btn-load-model")
    info = browser.wait_text("model-info", lambda t: t.startswith("checkpoint"), timeout=LOAD_S)
    assert "MVLM_TF.pth.tar" in info and browser.text("model-error") == ""
    model = status(server)["model"]
    assert model["preset"] == "tiny" and model["tracker_preset"] == "tf" and model["random_init"] is False
    shots(browser, "ui-model-released")
