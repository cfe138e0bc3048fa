"""`mvlm demo` windows: `--select` (drag the first box), the live display (box, κ, mode, the gate's
decision; Space pauses, q / Esc stops), `--no-display` and the headless default.

Two levels: the seam (`mvlm.demo.open_window` returns any `Window`; a scripted one drives the
same CLI code path with no desktop), and the real Tk window under Xvfb with synthetic mouse
and keys from xdotool (skipped, with the reason, where Xvfb / xdotool / tkinter are absent;
scripts/install_browser.sh installs them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mvlm import demo
from mvlm.cli import main

from test_demo import generated_sequence, read_results

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


@pytest.fixture(scope="module")
def seq(tmp_path_factory):
    return generated_sequence(tmp_path_factory.mktemp("seq") / "s", frames=16, width=128, height=96)


class ScriptedWindow(demo.Window):
    """A window whose user drags `box` and presses q after `quit_after` frames."""

    def __init__(self, box=None, quit_after=None):
        self.box, self.quit_after, self.shown, self.closed = box, quit_after, [], False

    def select_box(self, frame_rgb):
        self.selected_on = frame_rgb.shape
        return None if self.box is None else np.array(self.box, float)

    def show(self, frame_rgb):
        self.shown.append(frame_rgb)
        return "quit" if self.quit_after and len(self.shown) >= self.quit_after else None

    def close(self):
        self.closed = True


def test_photo_data_is_a_binary_ppm():
    data = demo._photo_data(np.zeros((2, 3, 3), np.uint8))
    assert data.startswith(b"P6 3 2 255 ") and len(data) == len(b"P6 3 2 255 ") + 18


def test_no_display_means_headless_and_select_needs_a_window(seq, tmp_path, capsys):
    folder, text = seq
    with pytest.raises(demo.DemoError, match=r"no display: \$DISPLAY is not set"):
        demo.open_window()
    out = tmp_path / "r.txt"
    assert main(["demo", "--frames", str(folder), "--text", text, "--results", str(out), "--max-frames", "3"]) == 0
    assert len(read_results(out)) == 3  # no $DISPLAY: headless by default, no window asked for
    assert main(["demo", "--frames", str(folder), "--text", text, "--select", "--max-frames", "2"]) == 2
    assert "--select needs a window: no display" in capsys.readouterr().err
    assert main(["demo", "--frames", str(folder), "--text", text, "--display", "--max-frames", "2"]) == 2
    assert "no display" in capsys.readouterr().err
    assert main(["demo", "--frames", str(folder), "--text", text, "--select", "--init-box", "1,1,5,5"]) == 2
    assert "not both" in capsys.readouterr().err


def test_select_and_live_display_through_the_window_seam(seq, tmp_path, monkeypatch, capsys):
    folder, text = seq
    window = ScriptedWindow(box=[20, 30, 40, 24], quit_after=5)
    monkeypatch.setattr("mvlm.commands.demo.has_display", lambda: True)
    monkeypatch.setattr("mvlm.commands.demo.open_window", lambda backend="auto": window)
    out = tmp_path / "r.txt"
    assert main(["demo", "--frames", str(folder), "--text", text, "--select", "--results", str(out)]) == 0
    err = capsys.readouterr().err
    assert "box from selection: 20,30,40,24" in err
    assert window.selected_on == (96, 128, 3) and window.closed
    assert len(window.shown) == 5 and len(read_results(out)) == 5  # q ended the run: a finished file
    assert window.shown[0].shape == (96, 128, 3)
    # --no-display with a display: no window at all; a cancelled selection: the sentence alone
    opened = []
    monkeypatch.setattr("mvlm.commands.demo.open_window", lambda backend="auto": opened.append(1) or window)
    assert main(["demo", "--frames", str(folder), "--text", text, "--no-display", "--max-frames", "2"]) == 0
    assert opened == []
    window.box, window.quit_after = None, None
    assert main(["demo", "--frames", str(folder), "--text", text, "--select", "--no-display", "--max-frames", "2"]) == 0
    assert "selection cancelled: template-free" in capsys.readouterr().err


# ------------------------------------------------------------------------------ Xvfb + xdotool


def _tk_ok() -> bool:
    try:
        import tkinter  # noqa: F401
    except ImportError:
        return False
    return True


XVFB, XDOTOOL = shutil.which("Xvfb"), shutil.which("xdotool")
needs_x = pytest.mark.skipif(not (XVFB and XDOTOOL and _tk_ok()),
                             reason="needs Xvfb, xdotool and tkinter (scripts/install_browser.sh installs them)")


@pytest.fixture()
def xdisplay(tmp_path):
    for number in range(90, 140):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            break
    display = f":{number}"
    server = subprocess.Popen([XVFB, display, "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        assert server.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.1)
    try:
        yield display
    finally:
        server.terminate()
        server.wait(timeout=10)


def snapshot(display: str, wid: str, tmp_path: Path, name: str) -> None:
    """The window's pixels on the virtual display, as <name>.png in the test's tmp dir (and in
    $MVLM_UI_SCREENSHOTS when set: docs/demo.md shows them)."""
    from PIL import ImageGrab

    geometry = dict(line.split("=") for line in xdo(display, "getwindowgeometry", "--shell", wid).splitlines())
    x, y, w, h = (int(geometry[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
    image = ImageGrab.grab(bbox=(x, y, x + w, y + h), xdisplay=display)
    for folder in filter(None, (tmp_path, os.environ.get("MVLM_UI_SCREENSHOTS"))):
        Path(folder).mkdir(parents=True, exist_ok=True)
        image.save(Path(folder) / f"{name}.png")


def xdo(display: str, *args: str, timeout: float = 600) -> str:  # a model load: minutes on a busy machine
    return subprocess.run([XDOTOOL, *args], env={**os.environ, "DISPLAY": display}, capture_output=True,
                          text=True, timeout=timeout, check=True).stdout.strip()


@needs_x
@pytest.mark.slow
def test_select_box_and_pause_quit_in_a_real_tk_window_under_xvfb(xdisplay, tmp_path):
    folder, text = generated_sequence(tmp_path / "s", frames=400, width=256, height=192, seed=1)
    out = tmp_path / "r.txt"
    env = {**os.environ, "DISPLAY": xdisplay, "PYTHONPATH": str(REPO)}
    log = open(tmp_path / "demo.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "mvlm", "demo", "--frames", str(folder), "--text", text,
                             "--select", "--window", "tk", "--results", str(out)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        wid = xdo(xdisplay, "search", "--sync", "--name", "drag the target").splitlines()[0]
        time.sleep(0.5)
        xdo(xdisplay, "mousemove", "--window", wid, "50", "40")
        xdo(xdisplay, "mousedown", "1")
        for x, y in ((70, 60), (100, 90), (130, 110)):
            xdo(xdisplay, "mousemove", "--window", wid, str(x), str(y))
            time.sleep(0.1)
        xdo(xdisplay, "mouseup", "1")
        time.sleep(0.3)
        snapshot(xdisplay, wid, tmp_path, "demo-select")
        xdo(xdisplay, "key", "Return")
        # the live window: same window, title back to "mvlm demo"; pause, then quit
        xdo(xdisplay, "search", "--sync", "--name", "^mvlm demo$")
        time.sleep(1.0)
        xdo(xdisplay, "key", "space")
        paused = xdo(xdisplay, "search", "--sync", "--name", "paused").splitlines()[0]
        time.sleep(1.0)
        snapshot(xdisplay, paused, tmp_path, "demo-paused")
        xdo(xdisplay, "key", "q")
        assert proc.wait(timeout=600) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.seek(0)
        output = log.read()
        log.close()
    assert "box from selection: 50,40,80,70" in output, output
    lines = read_results(out)
    assert 1 <= len(lines) < 400  # q ended the run before the last frame
