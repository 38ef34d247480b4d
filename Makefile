# Two entry points: `make run` (prepare, train, score on the bundled data) and `make test`.
# Both create .venv and install the pinned dependencies on first use.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel of torch 2.13.0; on a CUDA machine use for example
#   make setup TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= torch==2.13.0
CONFIG ?= configs/lstm.yaml

.PHONY: setup run test clean-outputs

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found; install Python 3.11 or pass PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: a loose requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: setup
	$(BIN)/python jobs/prepare.py --config configs/data.yaml
	$(BIN)/python jobs/train.py --config $(CONFIG)
	$(BIN)/python jobs/score.py --config $(CONFIG)

test: setup
	$(BIN)/python -m pytest

clean-outputs:
	rm -rf outputs
