# `make test` is the whole check a newcomer and CI run: it builds .venv from the package
# registries, then runs ruff, mypy --strict, the import contracts and pytest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck contracts pytest crds crds-check clean

test: lint typecheck contracts crds-check pytest

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest -q

crds: $(STAMP)
	$(BIN)/modelrelease crds

crds-check: $(STAMP)
	$(BIN)/modelrelease crds --check

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
