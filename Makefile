# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
SHARED := $(abspath ../shared)
export TIKTOKEN_CACHE_DIR ?= $(SHARED)/tiktoken-cache
export ORCA_MATH_BENCHMARKS_DIR ?= $(SHARED)/data/benchmarks

.PHONY: setup demo test lint docs

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/orca-math generate --seeds examples/seeds.jsonl --out runs/demo --model local --limit 4 --rounds 1

test: setup
	@bash scripts/setup.sh --test
	$(VENV)/bin/python -m pytest -q

docs: setup
	$(VENV)/bin/python scripts/gen_docs.py
	$(VENV)/bin/mkdocs build --strict

lint: setup
	$(VENV)/bin/ruff check .
