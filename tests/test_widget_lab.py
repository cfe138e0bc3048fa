"""notebooks/explore.ipynb interactively in JupyterLab: a real `jupyter lab` on loopback (token,
temp root), the notebook opened in headless Chromium over WebDriver, all cells run, the widget's
tracker run, then the frame slider moved with the keyboard: the figure must change.

Skipped, with the reason, without Chromium / chromedriver (scripts/install_browser.sh).
Screenshots go to the test's tmp dir (and $MVLM_UI_SCREENSHOTS when set, as widget-*.png).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from test_browser import CHROMEDRIVER, CHROMIUM, LOAD_S, WebDriver, browser, free_port, wait_http  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
TOKEN = "mvlm-widget-test"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
                       reason=f"no Chromium at {CHROMIUM} or chromedriver at {CHROMEDRIVER} "
                              "(run scripts/install_browser.sh)"),
]


def lab_notebook(root: Path) -> None:
    """The project notebook with its parameters pointed at a small generated sequence."""
    from mvlm.serve.app import make_sample

    make_sample(root / "data", 16, 128, 96, 0)
    nb = json.loads((REPO / "notebooks" / "explore.ipynb").read_text())
    params = next(c for c in nb["cells"] if c["cell_type"] == "code")
    params["source"] = ("interactive = True\nloader = \"lasot\"\nroot = \"data\"\nsequence = \"\"\n"
                        "checkpoint = \"\"\nmode = \"tf\"\ncompat = \"corrected\"\nmax_frames = 8\n"
                        "out_png = \"explore.png\"\n")
    (root / "explore.ipynb").write_text(json.dumps(nb))


@pytest.fixture()
def lab(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    lab_notebook(root)
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')  # no news toast
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "JUPYTER_CONFIG_DIR": str(tmp_path / "jcfg"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "jrt"), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    log = open(tmp_path / "lab.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--ServerApp.token={TOKEN}",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={tmp_path / 'lab-settings'}", "--LabApp.news_url=None", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_http(url + f"api/status?token={TOKEN}", process, "jupyter lab", timeout=LOAD_S)
        yield url
    except BaseException:
        print((tmp_path / "lab.log").read_text()[-3000:])
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def wait_js(browser: WebDriver, script: str, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = browser.js(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


def save(browser: WebDriver, tmp_path: Path, name: str) -> None:
    browser.js("const f = document.querySelector('img.widget-image');"
               "if (f) f.closest('.widget-vbox').scrollIntoView({block: 'start'}); return true")
    png = browser.screenshot()
    (tmp_path / f"{name}.png").write_bytes(png)
    extra = os.environ.get("MVLM_UI_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        (Path(extra) / f"{name}.png").write_bytes(png)


# the explorer's figure (an Image widget): a checksum and the size of the PNG it shows, or null
FIGURE = """return (async () => {
    const img = document.querySelector('img.widget-image');
    if (!img || !img.getAttribute('src')) return null;
    const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
    if (bytes[1] !== 0x50) return null;  // not a PNG (yet)
    let h = 0;
    for (const b of bytes) h = (h * 31 + b) >>> 0;
    return `${h}:${bytes.length}`;
})();"""


def test_explore_notebook_runs_in_jupyterlab_and_the_frame_slider_redraws(lab, browser, tmp_path):
    browser.get(lab + f"lab/tree/explore.ipynb?token={TOKEN}")
    wait_js(browser, "return !!(window.jupyterapp && document.querySelector('.jp-Notebook'))", LOAD_S,
            "JupyterLab and the notebook")
    wait_js(browser, "const s = document.querySelector('.jp-Notebook-ExecutionIndicator, #jp-main-statusbar');"
                     "return !!window.jupyterapp.shell.currentWidget && "
                     "window.jupyterapp.shell.currentWidget.sessionContext.session !== null", LOAD_S, "the kernel")
    browser.js("window.jupyterapp.commands.execute('notebook:run-all-cells'); return true")
    button = ("return [...document.querySelectorAll('.jupyter-widgets button')]"
              ".find(b => b.textContent.includes('Run tracker')) || null")
    wait_js(browser, button, LOAD_S, "the explorer widget (all cells run)")
    assert httpx.get(lab + f"api/contents/explore.png?token={TOKEN}&content=0").status_code == 200  # static figure
    browser.js(button[7:].replace(" || null", "") + ".click(); return true")
    first = wait_js(browser, FIGURE, LOAD_S, "the widget's figure after Run tracker")
    save(browser, tmp_path, "widget-run")
    # the frame slider: focus its handle and step with the keyboard, as a user would
    browser.js("const h = [...document.querySelectorAll('.widget-slider')].find(s => "
               "s.querySelector('.widget-label').textContent.trim() === 'frame').querySelector('.noUi-handle');"
               "h.focus(); return true")
    browser._call("POST", f"{browser.session}/actions", {"actions": [{"type": "key", "id": "kbd", "actions": [
        a for _ in range(3) for a in ({"type": "keyDown", "value": "\ue014"}, {"type": "keyUp", "value": "\ue014"})]}]})
    readout = wait_js(browser, "const s = [...document.querySelectorAll('.widget-slider')].find(s => "
                               "s.querySelector('.widget-label').textContent.trim() === 'frame');"
                               "const r = s.querySelector('.widget-readout').textContent.trim();"
                               "return r !== '1' ? r : null", 60, "the slider to move")
    assert int(readout) > 1
    deadline = time.monotonic() + LOAD_S
    while (changed := browser.js(FIGURE)) in (None, first):
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for a new figure after the slider moved")
        time.sleep(0.5)
    save(browser, tmp_path, "widget-scrubbed")
