# Two entry points (see README):
#   make repro  - set up the environment and run the whole pipeline on the embedded default
#   make test   - set up the environment and run the test suite (what CI runs)
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0

.PHONY: setup browser repro test test-fast bench clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements.lock pyproject.toml
	python3 -m venv $(VENV)
	# torch and torchvision are pinned together in requirements.txt; the lock pins the rest
	$(PY) -m pip install -q -r requirements.txt -c requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mvlm)" >/dev/null
	touch $@

repro: setup
	$(BIN)/dvc config --local core.analytics false
	$(BIN)/dvc config --local core.check_update false
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# headless Chromium for the browser test (Debian packages); the test skips with a reason without it
browser:
	bash scripts/install_browser.sh >/dev/null 2>&1 || echo "warning: could not install chromium; tests/test_browser.py will skip"

test: setup browser
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(BIN)/mvlm bench all

clean-venv:
	rm -rf $(VENV)
