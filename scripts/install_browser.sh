#!/usr/bin/env bash
# Headless Chromium + its WebDriver for tests/test_browser.py and the docs/ui.png screenshot.
# Debian packages: /usr/bin/chromium and /usr/bin/chromedriver (versions always match).
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "chromium and chromedriver already installed"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium chromium-driver
/usr/bin/chromium --version
/usr/bin/chromedriver --version
