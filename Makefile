# `make run` and `make test` are the whole quick start; both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench chaos clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/wats-supervisor start

test: $(STAMP)
	$(BIN)/ruff check wats tests bench
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check wats tests bench
	$(BIN)/ruff format --check wats tests bench

# The long chaos runs (docs/benchmarks.md, "Chaos"): 1,000 files through random kills of every
# pipeline worker and of the supervisor. `make test` runs a short version of the same test.
CHAOS_FILES ?= 1000
chaos: $(STAMP)
	WATS_CHAOS_FILES=$(CHAOS_FILES) $(BIN)/python -m pytest -q -s tests/chaos

bench: $(STAMP)
	$(BIN)/python bench/server_ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
