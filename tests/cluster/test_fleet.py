"""The fleet serves what the routes on the real control plane say, and a real Prometheus sees it per pod.

The fleet's clock is the test's: traffic is served in jumps of fleet time, and each reading waits
until Prometheus has scraped every pod after the jump, so the counts compared are exact (no
scrape-timing error). Bound: with n requests routed at share w, the canary's count is
Binomial(n, w) given the total; the tests allow 5 standard deviations (a false failure about once
in 3.5 million runs).
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from controller.tooling import dataplane, fleet
from tests.cluster import fleetcounts, harness
from tests.controlplane.cluster import READY_AFTER
from tests.integration import prometheus_server

RATE = 1000.0
JUMP = 40.0  # seconds of fleet time per reading: 40,000 requests per release


@dataclasses.dataclass
class Plane:
    world: harness.World
    fleet: fleet.ServingFleet
    prometheus: prometheus_server.PrometheusServer
    clock: list[float]


@pytest.fixture(scope="module")
def plane(real_cluster: harness.Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    folder = tmp_path_factory.mktemp("fleet")
    clock = [time.time()]
    world = harness.World(real_cluster, folder / "world")
    scenario = fleet.FleetScenario(requests_per_second=RATE)
    serving = fleet.ServingFleet(real_cluster.kube, scenario, seed=2, namespace=world.namespace)
    server = fleet.FleetServer(serving, folder / "targets.json", clock=lambda: clock[0], tick=0.2).start()
    prometheus = prometheus_server.PrometheusServer(folder, file_sd=folder / "targets.json").start()
    try:
        yield Plane(world, serving, prometheus, clock)
    finally:
        prometheus.stop()
        server.stop()
        world.close()


def _deployment(release: str, revision: str, version: str, replicas: int) -> dict[str, Any]:
    labels = {fleet.RELEASE: release, fleet.REVISION: revision, fleet.MODEL_VERSION: version}
    # Model 9 never finishes loading: KWOK holds its pods' readiness for ten years.
    slow = {READY_AFTER: "87600h"} if version == "9" else {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{release}-{revision}"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": slow},
                "spec": {
                    "containers": [
                        {"name": "s", "image": "x", "env": [{"name": "MODEL_VERSION", "value": version}]}
                    ]
                },
            },
        },
    }


def _service(name: str, **selector: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": selector, "ports": [{"port": 8000}]},
    }


def _release(plane: Plane, release: str, canary_version: str = "2") -> None:
    """Three stable pods of model 1 and one canary pod, with the three Services a release has."""
    plane.world.create(_deployment(release, "a", "1", 3))
    plane.world.create(_deployment(release, "b", canary_version, 1))
    plane.world.create(_service(release, **{fleet.RELEASE: release}))
    plane.world.create(_service(f"{release}-stable", **{fleet.RELEASE: release, fleet.REVISION: "a"}))
    plane.world.create(_service(f"{release}-canary", **{fleet.RELEASE: release, fleet.REVISION: "b"}))


def _until(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)  # polling a real Prometheus, with a deadline
    raise AssertionError(f"not within {timeout}s: {what}")


def _counts(plane: Plane, release: str, pods: int) -> dict[str, float]:
    """Requests per revision, once Prometheus has scraped every pod of the release at this fleet time."""
    series = f'inference_requests_total{{namespace="{plane.world.namespace}", release="{release}"}}'
    return fleetcounts.served_until(
        plane.fleet, plane.prometheus, plane.clock[0], series, pods=pods, by="revision"
    )


def _canary_share(plane: Plane, release: str, pods: int = 4) -> tuple[float, float]:
    """(canary share, total requests) served over one jump of fleet time."""
    before = _counts(plane, release, pods)
    plane.clock[0] += JUMP
    after = _counts(plane, release, pods)
    served = {revision: after.get(revision, 0.0) - before.get(revision, 0.0) for revision in after}
    total = sum(served.values())
    return served.get("b", 0.0) / total, total


def _within_noise(share: float, weight: float, total: float) -> bool:
    return abs(share - weight) <= 5 * math.sqrt(weight * (1 - weight) / total)


def _wait_ready(plane: Plane, release: str, pods: int = 4) -> None:
    def ready() -> bool:
        mine = [
            p for p in plane.world.objects("pods") if p["metadata"]["labels"].get(fleet.RELEASE) == release
        ]
        return sum(dataplane.is_ready(p) for p in mine) == pods

    _until(ready, f"{pods} Ready pods of {release}")


def _settled(world: harness.World, release: str) -> int:
    """How many pods serve the release, once its Deployments have every pod they want Ready and no
    pod is starting or terminating (a count taken mid-change would wait for a scrape that never comes)."""

    def count() -> int:
        wanted = sum(
            int(d["spec"].get("replicas", 1))
            for d in world.objects("deployments")
            if d["spec"]["template"]["metadata"].get("labels", {}).get(fleet.RELEASE) == release
        )
        mine = [
            p for p in world.objects("pods") if p["metadata"].get("labels", {}).get(fleet.RELEASE) == release
        ]
        settled = all(dataplane.is_ready(p) and not p["metadata"].get("deletionTimestamp") for p in mine)
        return len(mine) if settled and len(mine) == wanted else 0

    return int(_until(count, f"the pods of {release} to settle"))


def test_with_the_replica_ratio_the_canary_gets_its_share_of_ready_pods(plane: Plane) -> None:
    _release(plane, "by-replicas")
    _wait_ready(plane, "by-replicas")
    share, total = _canary_share(plane, "by-replicas")
    assert total > 0.9 * RATE * JUMP
    assert _within_noise(share, 0.25, total), share


def _httproute(name: str, namespace: str) -> dict[str, Any]:
    refs = [
        {"name": f"{name}-stable", "port": 8000, "weight": 80},
        {"name": f"{name}-canary", "port": 8000, "weight": 20},
    ]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {"rules": [{"backendRefs": refs}]},
    }


def _virtual_service(name: str, namespace: str) -> dict[str, Any]:
    destinations = [
        {"destination": {"host": f"{name}-stable"}, "weight": 70},
        {"destination": {"host": f"{name}-canary.{namespace}.svc.cluster.local"}, "weight": 30},
    ]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {"hosts": [name], "http": [{"route": destinations}]},
    }


@pytest.mark.parametrize(
    ("release", "route", "weight"), [("by-route", _httproute, 0.20), ("by-mesh", _virtual_service, 0.30)]
)
def test_a_route_weight_is_the_canary_share_prometheus_sees(
    plane: Plane, release: str, route: Callable[[str, str], dict[str, Any]], weight: float
) -> None:
    _release(plane, release)
    plane.world.create(route(release, plane.world.namespace))
    _wait_ready(plane, release)
    share, total = _canary_share(plane, release)
    assert _within_noise(share, weight, total), share


def test_a_pod_that_never_turns_ready_serves_nothing_and_a_deleted_deployments_series_stop(
    plane: Plane,
) -> None:
    _release(plane, "unready", canary_version="9")  # model 9's pods never turn Ready
    _wait_ready(plane, "unready", pods=3)
    share, total = _canary_share(plane, "unready", pods=4)
    assert share == 0.0
    assert total > 0.9 * RATE * JUMP

    plane.world.delete("deployments", "unready-b")  # its ReplicaSet and pods go by garbage collection
    where = f'namespace="{plane.world.namespace}", release="unready"'
    _until(
        lambda: not plane.prometheus.query(f'inference_requests_total{{{where}, revision="b"}}'),
        "the deleted Deployment's series to stop",
    )
    assert plane.prometheus.query(f'inference_requests_total{{{where}, revision="a"}}')


ROUTES = {
    "replicas": ({"replicas": {}}, None),
    "gatewayAPI": (
        {"gatewayAPI": {"httpRoute": "ranker-route"}},
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "ranker-route"},
            "spec": {"rules": [{"backendRefs": [{"name": "ranker", "port": 8000}]}]},
        },
    ),
    "istio": (
        {"istio": {"virtualService": "ranker-vs"}},
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "ranker-vs"},
            "spec": {"hosts": ["ranker"], "http": [{"route": [{"destination": {"host": "ranker"}}]}]},
        },
    ),
}


@pytest.mark.parametrize("router", sorted(ROUTES))
def test_the_share_prometheus_sees_follows_the_weight_the_controller_set(
    router: str, world: harness.World, controller: harness.Controller, tmp_path: pathlib.Path
) -> None:
    """The controller moves the release to 25 % and holds at an analysis; the fleet serves what it set."""
    routing, route = ROUTES[router]
    if route is not None:
        world.create(route)
    world.script_analysis({"default": "Running"})
    steps = {
        "canary": {"steps": [{"setWeight": 25}, {"analysis": {"template": "quality", "maxDuration": "1h"}}]}
    }
    budget = {"maxExtraGPUs": 4}  # the promotion after the steps must fit, or the rollout is Blocked
    world.create(
        harness.release_body("ranker", "1", trafficRouting=routing, strategy=steps, gpuBudget=budget)
    )
    world.wait_for_phase("ranker", "Succeeded")
    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
    held = world.wait_for_status(
        "ranker", lambda s: bool(s.get("analysis")), what="held at the analysis step"
    )
    clock = [time.time()]
    scenario = fleet.FleetScenario(requests_per_second=RATE)
    serving = fleet.ServingFleet(world.kube, scenario, seed=3, namespace=world.namespace)
    server = fleet.FleetServer(serving, tmp_path / "targets.json", clock=lambda: clock[0], tick=0.2).start()
    prometheus = prometheus_server.PrometheusServer(tmp_path, file_sd=tmp_path / "targets.json").start()
    try:
        plane = Plane(world, serving, prometheus, clock)
        pods = _settled(world, "ranker")
        canary = held["canaryRevision"]
        before = _counts(plane, "ranker", pods)
        clock[0] += JUMP
        after = _counts(plane, "ranker", pods)
    finally:
        prometheus.stop()
        server.stop()
    served = {revision: after[revision] - before.get(revision, 0.0) for revision in after}
    total = sum(served.values())
    share = served.get(canary, 0.0) / total
    assert held["canaryWeight"] == 25
    # The replica router approximates the weight by pods: 1 canary pod beside the stable's 4 here.
    weight = 0.25 if router != "replicas" else 1 / pods
    assert _within_noise(share, weight, total), (router, share, weight)
