"""The real Flagger and Argo Rollouts, built from the Go module proxy (`make peers`), run on the same
control plane as modelrelease: the first step of the side-by-side comparison (issue 28) is that each
peer takes its own objects through their first moves here, as it would on a cluster of its own."""

from __future__ import annotations

import contextlib
import math
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from controller.tooling import dataplane, fleet, prometheus_process
from tests.cluster import fleetcounts, harness
from tests.controlplane import cluster
from tests.peers import launch


@pytest.fixture(scope="module")
def peer_crds(real_cluster: harness.Cluster) -> None:
    """Flagger's and Argo Rollouts' CRDs as their modules ship them, installed once."""
    crds = [*launch.flagger_crds(), *launch.argo_rollouts_crds()]
    for crd in crds:
        real_cluster.kube.apply(crd)
    names = [crd["metadata"]["name"] for crd in crds]
    harness.wait_until(
        lambda: all(harness.established(real_cluster.kube, name) for name in names),
        timeout=60,
        what="the peers' CRDs established",
    )


def _deployment(name: str, replicas: int, version: str = "1") -> dict[str, Any]:
    # The fleet serves pods that carry a release label and reads the model version from the env,
    # as it does for modelrelease's own pods: the peers copy both from the template.
    labels = {"app": name, fleet.RELEASE: name}
    server = {
        "name": "server",
        "image": "triton:24.08",
        "ports": [{"containerPort": 8000}],
        "env": [{"name": "MODEL_VERSION", "value": version}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [server]},
            },
        },
    }


@pytest.fixture
def flagger(peer_crds: None, world: harness.World, tmp_path: pathlib.Path) -> Iterator[launch.Peer]:
    peer = launch.start_flagger(
        world.kubeconfig,
        tmp_path / "flagger.log",
        namespace=world.namespace,
        prometheus="http://127.0.0.1:1",  # no check runs before the canary is initialised
        port=cluster.free_ports(1)[0],
    )
    yield peer
    peer.stop()


@pytest.fixture
def argo_rollouts(peer_crds: None, world: harness.World, tmp_path: pathlib.Path) -> Iterator[launch.Peer]:
    healthz, metrics = cluster.free_ports(2)
    peer = launch.start_argo_rollouts(
        world.kubeconfig,
        tmp_path / "argo-rollouts.log",
        namespace=world.namespace,
        healthz_port=healthz,
        metrics_port=metrics,
    )
    yield peer
    peer.stop()


def test_flagger_takes_a_deployment_over_as_its_primary_and_initialises_the_canary(
    flagger: launch.Peer, world: harness.World
) -> None:
    world.create(_deployment("ranker", replicas=2))
    world.create(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "ranker"},
            "spec": {
                "provider": "kubernetes",
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ranker"},
                "progressDeadlineSeconds": 60,
                "service": {"port": 8000},
                "analysis": {"interval": "10s", "threshold": 5, "iterations": 2},
            },
        }
    )

    def initialised() -> bool:
        canary = world.get("canaries", "ranker", group="flagger.app")
        return (canary.get("status") or {}).get("phase") == "Initialized"

    world.wait_until(initialised, timeout=90, what=f"Flagger to initialise the canary ({flagger.log})")
    deployments = world.deployments()
    assert deployments["ranker-primary"]["spec"]["replicas"] == 2
    assert deployments["ranker"]["spec"]["replicas"] == 0  # Flagger scales the target to zero
    assert {"ranker", "ranker-primary", "ranker-canary"} <= {
        s["metadata"]["name"] for s in world.objects("services")
    }


def test_argo_rollouts_pauses_a_new_version_at_its_first_step_and_the_fleet_serves_it_a_quarter(
    argo_rollouts: launch.Peer, world: harness.World, tmp_path: pathlib.Path
) -> None:
    template = _deployment("scorer", replicas=4)["spec"]
    world.create(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "scorer"},
            "spec": {
                **template,
                "strategy": {"canary": {"steps": [{"setWeight": 25}, {"pause": {}}]}},
            },
        }
    )

    def phase() -> str | None:
        rollout = world.get("rollouts", "scorer", group="argoproj.io")
        return (rollout.get("status") or {}).get("phase")

    world.wait_until(
        lambda: phase() == "Healthy", timeout=90, what=f"a Healthy rollout ({argo_rollouts.log})"
    )
    model_2 = _deployment("scorer", replicas=4, version="2")["spec"]["template"]["spec"]
    world.patch("rollouts", "scorer", {"spec": {"template": {"spec": model_2}}})
    world.wait_until(
        lambda: phase() == "Paused", timeout=90, what=f"the rollout paused ({argo_rollouts.log})"
    )
    rollout = world.get("rollouts", "scorer", group="argoproj.io")
    assert rollout["status"]["currentStepIndex"] == 1
    replica_sets = [
        rs for rs in world.objects("replicasets") if rs["metadata"]["labels"].get("app") == "scorer"
    ]
    sizes = sorted(int(rs["spec"]["replicas"]) for rs in replica_sets)
    # Without a traffic router Argo Rollouts makes the weight a pod ratio within spec.replicas: 25 %
    # of four is one canary pod beside three stable ones (its docs: basic canary).
    assert sizes == [1, 3]
    _the_fleet_serves_the_canary(world, tmp_path, service="scorer", share=0.25)  # 1 pod of 4


RATE = 1000.0
JUMP = 40.0  # seconds of fleet time: 40,000 requests
BY = "model_version"  # the peers' arms differ by the model version their pods serve


def _the_fleet_serves_the_canary(
    world: harness.World, folder: pathlib.Path, *, service: str, share: float
) -> None:
    """The fleet serves the peer's pods as the Services select them and the real Prometheus sees the
    canary (model 2) serve `share` of the requests. Bound: the canary's count is Binomial(n, share)
    given the total; 5 standard deviations (a false failure about once in 3.5 million runs)."""
    world.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": service},
            "spec": {"selector": {"app": service}, "ports": [{"port": 8000}]},
        }
    )

    def settled() -> list[dict[str, Any]] | None:
        pods = world.objects("pods")
        moving = any(not dataplane.is_ready(p) or p["metadata"].get("deletionTimestamp") for p in pods)
        return None if moving else pods

    pods = harness.wait_until(settled, timeout=60, what="every pod of the peer Ready, none terminating")
    clock = [time.time()]
    series = f'inference_requests_total{{namespace="{world.namespace}"}}'
    serving = fleet.ServingFleet(
        world.kube, fleet.FleetScenario(requests_per_second=RATE), seed=5, namespace=world.namespace
    )
    with contextlib.ExitStack() as running:
        server = fleet.FleetServer(serving, folder / "targets.json", clock=lambda: clock[0], tick=0.2)
        running.callback(server.start().stop)
        prometheus = prometheus_process.PrometheusServer(folder, file_sd=folder / "targets.json")
        running.callback(prometheus.start().stop)
        before = fleetcounts.served_until(
            serving, prometheus, clock[0], series, pods=len(pods), by="model_version"
        )
        clock[0] += JUMP
        after = fleetcounts.served_until(
            serving, prometheus, clock[0], series, pods=len(pods), by="model_version"
        )
    served = {version: after[version] - before.get(version, 0.0) for version in after}
    total = sum(served.values())
    assert total > 0.9 * RATE * JUMP
    canary = served.get("2", 0.0) / total
    assert abs(canary - share) <= 5 * math.sqrt(share * (1 - share) / total), canary
