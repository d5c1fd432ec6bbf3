# cnnkit — the two commands are `make demo` and `make test`; `make help` lists the rest.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CNNKIT := $(BIN)/cnnkit

.DEFAULT_GOAL := help
.PHONY: help demo test lint pytest soak bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files: reinstall only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps 'keras-hub>=0.32,<0.33'  # without TensorFlow: see pyproject's [kerashub]
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed ## train the embedded default (digits, a small CNN) into runs/
	$(CNNKIT) train

lint: $(VENV)/.installed-dev ## ruff on the sources and tests
	$(BIN)/ruff check .

pytest: $(VENV)/.installed-dev ## the test suite only
	$(BIN)/python -m pytest

test: lint pytest ## lint, then the whole test suite (what CI runs)

soak: $(VENV)/.installed-dev ## the short kill -9 soak (3 kills, ~40 s); the full one: python benchmarks/faults.py
	$(BIN)/python -m pytest -m soak

bench: $(VENV)/.installed-dev ## the benchmarks of benchmarks/ (minutes; results go to docs/benchmarks.md)
	$(BIN)/python benchmarks/run_all.py

clean: ## remove the virtual environment and caches (runs/ is kept)
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis src/*.egg-info
