# Two entry points (see README):
#   make repro  - set up the environment and run the whole pipeline on the embedded default
#   make test   - set up the environment and run the test suite (what CI runs)
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0

.PHONY: setup repro test test-fast bench check-repro clean-venv

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

# needs no root: the browser tests run where a Chromium is installed (.ci/run installs one with
# apt before calling this) and skip with the reason elsewhere
test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(BIN)/mvlm bench all

# rerun the whole pipeline in place and compare model hashes and scores with the committed ones
check-repro: setup
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/check_repro.sh

clean-venv:
	rm -rf $(VENV)
