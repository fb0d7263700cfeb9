# Vesalius — one command per task, the same locally and in CI.
#   make run    set up .venv, then serve on the embedded default (SQLite + files) with demo data
#   make test   set up .venv with test extras and system peers, then run the whole suite
#   make ui     build the web app into src/vesalius/web/ui/dist when missing or stale
#   make lint   ruff, mypy (strict on src/), import-linter layer contracts
#   make bench  side-by-side benchmark against Orthanc; writes docs/performance.md

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DATA_DIR ?= ./data
HOST ?= 127.0.0.1
HTTP_PORT ?= 8080
FHIR_EXAMPLES := tests/fhir/node_modules/.package-lock.json

.PHONY: run test lint bench ui system-deps clean

run: $(STAMP) ui
	$(BIN)/vesalius serve --data-dir $(DATA_DIR) --host $(HOST) --http-port $(HTTP_PORT) --demo

test: $(TEST_STAMP) system-deps $(FHIR_EXAMPLES) ui
	$(BIN)/pytest -q

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(TEST_STAMP) system-deps $(FHIR_EXAMPLES)
	$(BIN)/python -m bench.run

ui:
	@sh scripts/build-ui.sh

system-deps:
	@sh scripts/system-deps.sh

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP) $@

# Official FHIR R4 examples (CC0) for the record tests, pinned by tests/fhir/package-lock.json
$(FHIR_EXAMPLES): tests/fhir/package.json tests/fhir/package-lock.json
	npm ci --prefix tests/fhir --no-audit --no-fund --silent

clean:
	rm -rf $(VENV) tests/fhir/node_modules web/node_modules src/vesalius/web/ui/dist build *.egg-info .pytest_cache .mypy_cache .ruff_cache
