"""Test-wide settings. Hypothesis runs derandomized (fixed seeds) with no example database,
so CI is reproducible; the "ci" profile (the default) runs at least 200 examples per property."""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.cluster import access, harness

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=30, deadline=None, derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Cluster]:
    """The real control plane of this test process (tests/controlplane), started on first use, with
    our CRDs, Gateway API's, Istio's and deploy/'s RBAC installed."""
    running = harness.Cluster(tmp_path_factory.mktemp("controlplane")).start()
    yield running
    running.stop()


# ---- deploy/'s RBAC against the calls the integration suite recorded (tests/cluster/access.py) ----

TESTS = pathlib.Path(__file__).parent
SUITES = ("cluster",)  # the suite whose controllers run as deploy/'s ServiceAccount


def pytest_configure(config: pytest.Config) -> None:
    # One folder for this run, inherited by pytest-xdist's workers (started after this hook).
    if not hasattr(config, "workerinput") and access.ACCESS_DIR_VARIABLE not in os.environ:
        os.environ[access.ACCESS_DIR_VARIABLE] = tempfile.mkdtemp(prefix="modelrelease-access-")
        config.add_cleanup(
            lambda: shutil.rmtree(os.environ.pop(access.ACCESS_DIR_VARIABLE), ignore_errors=True)
        )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # On the controlling process this sees every worker's reports too.
    if report.when == "call" and report.passed:
        _passed_files.add(report.nodeid.split("::")[0])


_passed_files: set[str] = set()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """When every integration test file ran and passed: each rule deploy/ grants the controller was used."""
    options = session.config.option
    if hasattr(session.config, "workerinput") or exitstatus != 0 or options.keyword or options.markexpr:
        return
    named = os.environ.get(access.ACCESS_DIR_VARIABLE)
    files = {f"tests/{suite}/{p.name}" for suite in SUITES for p in (TESTS / suite).glob("test_*.py")}
    if not named or not pathlib.Path(named).is_dir() or not files <= _passed_files:
        return  # a partial run: some calls may not have been made
    calls = access.recorded_calls(pathlib.Path(named))
    granted = access.controller_rules(
        [*access.rbac_objects(), access.secret_binding()], access.TEST_NAMESPACE
    )
    unused = access.unused_rules(granted, calls)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write("\n")  # after xdist's "[100%]", which leaves the line open
    if unused:
        message = "deploy/base/rbac.yaml grants what the controller never used in the integration suite:\n  "
        if reporter is not None:
            reporter.write_line(message + "\n  ".join(unused), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None:
        reporter.write_line("deploy/base/rbac.yaml: every rule was used by the integration suite")
