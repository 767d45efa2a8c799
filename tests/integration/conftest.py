from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from controller.sandbox import cluster
from tests.integration import harness


@pytest.fixture
def sandbox() -> Iterator[cluster.SandboxCluster]:
    with harness.prepared_sandbox(seed=7) as running:
        yield running


@pytest.fixture
def world(sandbox: cluster.SandboxCluster) -> harness.World:
    return harness.World(sandbox)


@pytest.fixture
def kubeconfig(sandbox: cluster.SandboxCluster, tmp_path: pathlib.Path) -> pathlib.Path:
    return sandbox.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def controller(kubeconfig: pathlib.Path, tmp_path: pathlib.Path) -> Iterator[harness.Controller]:
    running = harness.Controller(kubeconfig, tmp_path / "controller.log").start()
    yield running
    running.stop()
