# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export MLFLOW_DISABLE_TELEMETRY ?= true

.PHONY: setup demo test lint services ui clean package-test docs

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch lies on this machine's disk; a plain `torch` would pull a CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/orchestra demo

test: setup lint docs services
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest --nbmake notebooks
	$(MAKE) package-test

# Build the wheel and sdist, twine-check them, install the wheel in a fresh venv outside the
# repository and run `orchestra --help`, `check` and a short offline demo from there.
package-test: setup
	PYTHON=$(BIN)/python scripts/package-test.sh

# The documentation site (MkDocs Material + mkdocstrings) into site/; --strict fails on a broken
# link or API reference. `$(BIN)/mkdocs serve` previews it.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

services:
	scripts/install-test-services.sh

lint: setup
	$(BIN)/ruff check orchestra tests benchmarks
	$(BIN)/ruff format --check orchestra tests benchmarks

ui: setup
	$(BIN)/orchestra ui

clean:
	rm -rf $(VENV) mlruns .orchestra .pytest_cache
