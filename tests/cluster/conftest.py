"""Fixtures of the real-control-plane suite: one namespace per test on the test process's cluster
(`real_cluster`, tests/conftest.py)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tests.cluster import harness
from tests.controlplane import faultproxy


@pytest.fixture
def world(real_cluster: harness.Cluster, tmp_path: pathlib.Path) -> Iterator[harness.World]:
    made = harness.World(real_cluster, tmp_path)
    yield made
    made.close()


@pytest.fixture
def kubeconfig(world: harness.World) -> pathlib.Path:
    return world.kubeconfig


@pytest.fixture
def controller(world: harness.World, tmp_path: pathlib.Path) -> Iterator[harness.Controller]:
    running = harness.Controller(world, tmp_path / "controller.log").start()
    yield running
    running.stop()


@pytest.fixture
def fault_proxy(real_cluster: harness.Cluster) -> Iterator[faultproxy.FaultProxy]:
    """A fault-injecting proxy in front of the API server (pass it to the Controller as `proxy=`)."""
    with real_cluster.plane.fault_proxy() as running:
        yield running
