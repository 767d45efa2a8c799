# `make test` is the whole check a newcomer and CI run: it builds .venv from the package
# registries, then runs ruff, mypy --strict, the import contracts and pytest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck contracts pytest crds crds-check prometheus chromium benchmark clean

test: lint typecheck contracts crds-check pytest

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# `make demo`: the emulated cluster, the fleet, a real Prometheus and the controller; model 2 promoted,
# model 3 rolled back by the judge. `make demo KEEP=1` keeps it all running to explore, until Ctrl-C.
demo: $(STAMP) prometheus
	$(BIN)/python -m controller.tooling.demo $(if $(KEEP),--keep)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

# The real-Prometheus tests need the server and promtool: Debian's package, installed once.
prometheus:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

# The verdict report's page is checked in headless Chromium: Debian's chromium-headless-shell, once.
chromium:
	@command -v chromium-headless-shell >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium-headless-shell >/dev/null; }

# Two workers, each taking whole test files (module fixtures stay shared): every test still runs
# once; most of the suite waits on processes (Prometheus, MLflow, the controller), not on a core.
pytest: $(STAMP) prometheus chromium
	$(BIN)/pytest -q -n 2 --dist loadfile

benchmark: $(STAMP)
	$(BIN)/python -m analysis.tooling.judge_benchmark --out docs/benchmarks.md

crds: $(STAMP)
	$(BIN)/modelrelease crds

crds-check: $(STAMP)
	$(BIN)/modelrelease crds --check

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .demo
