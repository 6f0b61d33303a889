# rzs: `make reproduce` regenerates the paper's figures and tables, `make test` runs the tests.
# Both create the virtual environment in $(VENV) from pyproject.toml on first use.
# `make reproduce DRY_RUN=1` prints what a run would compute, and for how long, and computes nothing.

PYTHON ?= python3
VENV ?= .venv
PROFILE ?= quick
ARGS ?=
DRY_RUN ?=
PYTEST_ARGS ?=

BIN := $(VENV)/bin
# Besides data/, a sibling ../shared/data (the project's CI layout) is searched for datasets.
SHARED_DATA := $(wildcard $(CURDIR)/../shared/data)
export RZS_DATA_DIR ?= $(CURDIR)/data$(if $(SHARED_DATA),:$(abspath $(SHARED_DATA)))
export TF_CPP_MIN_LOG_LEVEL ?= 2
export KERAS_BACKEND ?= tensorflow

.PHONY: install test test-all reproduce clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

test: install
	$(BIN)/ruff check rzs tests bench .ci
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

reproduce: install
	$(BIN)/python -m rzs.reproduce --profile $(PROFILE) $(if $(DRY_RUN),--dry-run) $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
