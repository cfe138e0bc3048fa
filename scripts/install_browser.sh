#!/usr/bin/env bash
# System packages for the UI tests (tests/test_browser.py, tests/test_widget_lab.py,
# tests/test_demo_window.py) and the docs/img screenshots:
#   chromium + chromium-driver  headless browser and its WebDriver (Debian: versions always match)
#   xvfb + xdotool              a virtual X display and synthetic mouse/keys for the demo window
#   python3-tk                  Tk for the demo window where OpenCV is headless (a system Python)
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
command -v Xvfb >/dev/null || need+=(xvfb)
command -v xdotool >/dev/null || need+=(xdotool)
python3 -c "import tkinter" 2>/dev/null || need+=(python3-tk)
if [ ${#need[@]} -eq 0 ]; then
    echo "chromium, chromedriver, Xvfb, xdotool and tkinter already installed"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${need[@]}"
/usr/bin/chromium --version
/usr/bin/chromedriver --version
