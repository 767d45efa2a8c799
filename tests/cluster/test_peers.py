"""The real Flagger and Argo Rollouts, built from the Go module proxy (`make peers`), run on the same
control plane as modelrelease: the first step of the side-by-side comparison (issue 28) is that each
peer takes its own objects through their first moves here, as it would on a cluster of its own."""

from __future__ import annotations

import contextlib
import pathlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster import harness
from tests.peers import launch


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "server", "image": "triton:24.08", "ports": [{"containerPort": 8000}]}
                    ]
                },
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
        port=_free_port(),
    )
    yield peer
    peer.stop()


@pytest.fixture
def argo_rollouts(peer_crds: None, world: harness.World, tmp_path: pathlib.Path) -> Iterator[launch.Peer]:
    peer = launch.start_argo_rollouts(
        world.kubeconfig,
        tmp_path / "argo-rollouts.log",
        namespace=world.namespace,
        healthz_port=_free_port(),
        metrics_port=_free_port(),
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


def test_argo_rollouts_deploys_a_rollout_and_pauses_a_new_version_at_its_first_canary_step(
    argo_rollouts: launch.Peer, world: harness.World
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
    world.patch(
        "rollouts",
        "scorer",
        {"spec": {"template": {"spec": {"containers": [{"name": "server", "image": "triton:24.09"}]}}}},
    )
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
