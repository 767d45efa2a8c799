# `make test` is the whole check a newcomer and CI run: it builds .venv from the package
# registries, then runs ruff, mypy --strict, the import contracts and pytest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck contracts pytest crds crds-check prometheus chromium controlplane peers peers-benchmark scale-benchmark benchmark clean

test: lint typecheck contracts crds-check pytest

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# `make demo`: a real Kubernetes control plane (built once, `make controlplane`), the fleet, a real
# Prometheus and the controller; model 2 promoted, model 3 rolled back by the judge.
# `make demo KEEP=1` keeps it all running to explore, until Ctrl-C.
demo: $(STAMP) prometheus controlplane
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

# The real Kubernetes control plane the integration suite runs on (tests/controlplane: kube-apiserver,
# kube-controller-manager, kube-scheduler, etcd and KWOK in one binary), built from the Go module
# proxy. The first build on a machine compiles Kubernetes (see docs/testing.md for how long); later
# ones reuse Go's build cache and take seconds. The binary is git-ignored.
GO ?= go
K8S_VERSION := v1.36.3
CONTROLPLANE := tests/controlplane/bin/controlplane
VERSION_FLAGS := $(foreach v,gitVersion=$(K8S_VERSION) gitMajor=1 gitMinor=36 gitTreeState=clean,-X k8s.io/component-base/version.$(v))

controlplane: $(CONTROLPLANE)

$(CONTROLPLANE): tests/controlplane/go.mod tests/controlplane/go.sum tests/controlplane/main.go
	@command -v $(GO) >/dev/null || { echo "make: the control plane needs Go 1.26 (go not found on PATH)"; exit 1; }
	@test -f $@ || echo "building the Kubernetes $(K8S_VERSION) control plane from Go modules: the first build on a machine takes several minutes (docs/testing.md)"
	$(PYTHON) tests/controlplane/build.py $(GO) bin/controlplane "-s -w $(VERSION_FLAGS)"

# The peers the side-by-side benchmark runs beside modelrelease on the same control plane: Flagger and
# Argo Rollouts, each built from the Go module proxy in its own wrapper module (tests/peers/; Argo
# Rollouts' copies its replace block). Binaries git-ignored; docs/testing.md says how long a first build takes.
FLAGGER := tests/peers/bin/flagger
ARGO_ROLLOUTS := tests/peers/bin/rollouts-controller

peers: $(FLAGGER) $(ARGO_ROLLOUTS)

$(FLAGGER): tests/peers/flagger/go.mod tests/peers/flagger/go.sum
	$(PYTHON) tests/controlplane/build.py $(GO) ../bin/flagger "-s -w" tests/peers/flagger github.com/fluxcd/flagger/cmd/flagger "Flagger v1.44.0"

$(ARGO_ROLLOUTS): tests/peers/argorollouts/go.mod tests/peers/argorollouts/go.sum
	$(PYTHON) tests/controlplane/build.py $(GO) ../bin/rollouts-controller "-s -w" tests/peers/argorollouts github.com/argoproj/argo-rollouts/cmd/rollouts-controller "Argo Rollouts v1.9.2"

# Two workers, each taking whole test files (module fixtures stay shared): every test still runs
# once; most of the suite waits on processes (Prometheus, MLflow, the controller), not on a core.
pytest: $(STAMP) prometheus chromium controlplane peers
	$(BIN)/pytest -q -n 2 --dist loadfile

benchmark: $(STAMP)
	$(BIN)/python -m analysis.tooling.judge_benchmark --out docs/benchmarks.md

# modelrelease, Flagger and Argo Rollouts side by side on the same releases, cluster, fleet and
# Prometheus (issue 28): builds the peers, runs 20 releases per tool and scenario (about 50 minutes
# here), prints the table and writes it into docs/benchmarks.md.
peers-benchmark: $(STAMP) prometheus controlplane peers
	$(BIN)/python -m controller.tooling.peers --out docs/benchmarks.md

# One controller, 1,000 releases in 20 namespaces rolling out at once (issue 28).
scale-benchmark: $(STAMP) prometheus controlplane
	$(BIN)/python -m controller.tooling.scale_benchmark --out docs/benchmarks.md

crds: $(STAMP)
	$(BIN)/modelrelease crds

crds-check: $(STAMP)
	$(BIN)/modelrelease crds --check

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .demo
