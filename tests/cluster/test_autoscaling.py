"""Autoscaled releases on the real control plane: `/scale` on a ModelRelease, sized by `kubectl scale`
and by the real HPA controller (kube-controller-manager) from a metric the fleet exports.

The HPA reads `inference_requests_per_second` — the release's request rate, a PromQL query to the
real Prometheus that scrapes the fleet, served through the aggregator by a small external-metrics
adapter (tests/controlplane/metricsadapter.py) — against a target of 20 requests/s per replica.
The fleet's offered load is the test's knob: 70 requests/s, then 200, 30 and 90.

What is checked, replayed from the audit log: every write of the release's size (the HPA's
`modelreleases/scale` updates, kubectl's) and every Deployment write, in the order the API server
took them. The GPUs asked for after a Deployment write never exceed the budget of the size in force
(that size × 1 GPU + maxExtraGPUs; while a smaller size is being reached, also what ran before), and
wherever the release settled at a size during the canary, its replica split is that size's, within
one pod.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from controller.tooling import fleet
from tests.cluster import harness
from tests.controlplane import metricsadapter
from tests.integration import prometheus_server

KUBECTL = pathlib.Path(sys.executable).parent / "kubectl"
EXTRA = 4
PAUSED = {"canary": {"steps": [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}], "scaleDownDelay": "0s"}}
# The HPA's target: requests/s per replica. Each offered load is at least 4½ standard deviations of
# the 20 s rate's Poisson noise (√(rate × 20) / 20) from the edge of another size: 200 → 8 (the
# maximum; 7 below 140), 30 → 2 (edges 20 and 40), 90 → 5 (edges 80 and 100) — so the HPA's answer
# does not hang on a scrape's luck.
PER_REPLICA = 20
METRIC = "inference_requests_per_second"


def split(size: int, weight: int = 25) -> tuple[int, int]:
    """The replica router's (canary, stable) at a size: the canary's share of pods ≈ its weight."""
    return max(1, math.ceil(size * weight / 100)), max(1, size - math.floor(size * weight / 100))


def tracks(world: harness.World) -> dict[str, int]:
    """Ready pods per track, from the Deployments the release owns."""
    found: dict[str, int] = {}
    for deployment in world.deployments().values():
        track = (deployment["metadata"].get("labels") or {}).get("modelrelease.dev/track")
        if track is not None and deployment["spec"]["replicas"] == (deployment.get("status") or {}).get(
            "readyReplicas", 0
        ):
            found[track] = deployment["spec"]["replicas"]
        elif track is not None:
            found[track] = -1  # not settled
    return found


def settled_at(world: harness.World, size: int) -> dict[str, int] | None:
    canary, stable = split(size)
    seen = tracks(world)
    return seen if seen == {"canary": canary, "stable": stable} else None


def budget_history(world: harness.World) -> list[tuple[int, int, int]]:
    """(GPUs asked for, size in force, size before it) after each Deployment write, in API-server order."""
    replicas: dict[str, int] = {}
    sizes = [0, 0]
    history = []
    for write in world.writes():
        if write.code >= 300 or write.object is None:
            continue
        if write.plural == "modelreleases" and write.subresource in (None, "scale"):
            spec = write.object.get("spec") or {}
            size = (
                spec.get("replicas")
                if write.subresource == "scale"
                else spec.get("serving", {}).get("replicas")
            )
            if size is not None and size != sizes[-1]:
                sizes.append(int(size))
        elif write.plural == "deployments" and write.subresource is None:
            if write.verb == "delete":
                replicas.pop(write.name, None)
            else:
                replicas[write.name] = int(write.object["spec"].get("replicas", 1))
            history.append((sum(replicas.values()), sizes[-1], sizes[-2]))
    return history


def assert_budget_held(world: harness.World) -> int:
    history = budget_history(world)
    previous = 0
    for gpus, size, before in history:
        allowed = max(previous, size + EXTRA) if size < before else size + EXTRA
        assert gpus <= allowed, f"{gpus} GPUs at size {size} (before: {before}); history {history}"
        previous = gpus
    return len(history)


def kubectl(kubeconfig: pathlib.Path, *args: str) -> str:
    done = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kubectl_scale_mrel_resizes_the_stable_between_rollouts_and_both_tracks_during_one(
    world: harness.World, controller: harness.Controller, kubeconfig: pathlib.Path
) -> None:
    world.create(harness.release_body("ranker", "1", strategy=PAUSED, gpuBudget={"maxExtraGPUs": EXTRA}))
    world.wait_for_phase("ranker", "Succeeded")
    assert "scaled" in kubectl(kubeconfig, "scale", "mrel", "ranker", "--replicas", "6")
    world.wait_until(lambda: tracks(world) == {"stable": 6}, timeout=60, what="stable at 6")
    shown = world.wait_for_status("ranker", lambda s: s.get("replicas") == 6, what="status.replicas 6")
    assert shown["selector"] == "modelrelease.dev/release=ranker"
    scale = world.kube.call(
        "GET", f"/apis/modelrelease.dev/v1alpha1/namespaces/{world.namespace}/modelreleases/ranker/scale"
    )
    assert (scale["spec"]["replicas"], scale["status"]["replicas"]) == (6, 6)
    assert scale["status"]["selector"] == "modelrelease.dev/release=ranker"

    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
    world.wait_for_phase("ranker", "Paused")
    world.wait_until(lambda: settled_at(world, 6), timeout=60, what="the 25 % split of 6")
    kubectl(kubeconfig, "scale", "mrel", "ranker", "--replicas", "3")
    world.wait_until(lambda: settled_at(world, 3), timeout=60, what="the 25 % split of 3")
    kubectl(kubeconfig, "scale", "mrel", "ranker", "--replicas", "8")
    world.wait_until(lambda: settled_at(world, 8), timeout=60, what="the 25 % split of 8")
    assert world.status("ranker")["phase"] == "Paused"
    world.patch_release("ranker", {"metadata": {"annotations": {"modelrelease.dev/command-promote": "t1"}}})
    world.wait_for_status(
        "ranker", lambda s: s.get("phase") == "Succeeded" and s.get("stableModelVersion") == "2"
    )
    # The promoted Deployment keeps its name and labels (its track label stays `canary`): one is left, at 8.
    world.wait_until(
        lambda: list(tracks(world).values()) == [8], timeout=60, what="the new stable alone at 8"
    )
    assert assert_budget_held(world) > 0


@dataclasses.dataclass
class Fleet:
    serving: fleet.ServingFleet
    prometheus: prometheus_server.PrometheusServer

    def offer(self, requests_per_second: float) -> None:
        self.serving.scenario = dataclasses.replace(
            self.serving.scenario, requests_per_second=requests_per_second
        )

    def rate(self, namespace: str, selector: str) -> float:
        matchers = ",".join(
            f'{k}="{v}"' for k, v in (term.split("=", 1) for term in selector.split(",") if term)
        )
        query = f'sum(rate(inference_requests_total{{namespace="{namespace}",{matchers}}}[20s]))'
        rows = self.prometheus.query(query)
        return float(rows[0]["value"][1]) if rows else 0.0  # type: ignore[index]


@pytest.fixture
def serving_fleet(world: harness.World, tmp_path: pathlib.Path) -> Iterator[Fleet]:
    scenario = fleet.FleetScenario(requests_per_second=70.0)
    serving = fleet.ServingFleet(world.kube, scenario, seed=5, namespace=world.namespace)
    server = fleet.FleetServer(serving, tmp_path / "targets.json", clock=time.time, tick=0.2).start()
    folder = tmp_path / "prometheus"
    folder.mkdir()
    prometheus = prometheus_server.PrometheusServer(folder, file_sd=tmp_path / "targets.json").start()
    try:
        yield Fleet(serving, prometheus)
    finally:
        prometheus.stop()
        server.stop()


@pytest.fixture
def adapter(world: harness.World, serving_fleet: Fleet) -> Iterator[metricsadapter.MetricsAdapter]:
    certificate, key = world.cluster.plane.serving_tls()
    with metricsadapter.MetricsAdapter({METRIC: serving_fleet.rate}, certificate, key) as running:
        for obj in running.registration(world.namespace):
            world.kube.apply(obj, world.namespace if obj["kind"] != "APIService" else "")
        try:
            world.wait_until(
                lambda: _available(world), timeout=60, what="the external metrics APIService Available"
            )
            yield running
        finally:
            world.kube.call(
                "DELETE", f"/apis/apiregistration.k8s.io/v1/apiservices/{metricsadapter.APISERVICE}"
            )


def _available(world: harness.World) -> bool:
    found = world.kube.call("GET", f"/apis/apiregistration.k8s.io/v1/apiservices/{metricsadapter.APISERVICE}")
    conditions = (found.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


def hpa(minimum: int, maximum: int) -> dict[str, object]:
    immediate = {
        "stabilizationWindowSeconds": 0,
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
    }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "ranker"},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "modelrelease.dev/v1alpha1",
                "kind": "ModelRelease",
                "name": "ranker",
            },
            "minReplicas": minimum,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": METRIC, "selector": {"matchLabels": {"release": "ranker"}}},
                        "target": {"type": "AverageValue", "averageValue": str(PER_REPLICA)},
                    },
                }
            ],
            "behavior": {"scaleUp": immediate, "scaleDown": immediate},
        },
    }


def test_the_real_hpa_scales_a_release_up_and_down_during_a_canary_within_the_budget_and_the_split(
    world: harness.World,
    controller: harness.Controller,
    serving_fleet: Fleet,
    adapter: metricsadapter.MetricsAdapter,
) -> None:
    world.create(harness.release_body("ranker", "1", strategy=PAUSED, gpuBudget={"maxExtraGPUs": EXTRA}))
    world.wait_for_phase("ranker", "Succeeded")
    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
    world.wait_for_phase("ranker", "Paused")
    world.wait_until(lambda: settled_at(world, 4), timeout=60, what="the 25 % split of 4")
    rate = lambda: serving_fleet.rate(world.namespace, "release=ranker")  # noqa: E731
    world.wait_until(
        lambda: 56 <= rate() <= 84, timeout=60, what="Prometheus sees the release's 70 requests/s"
    )
    world.apply(hpa(1, 8))

    sizes_settled = {}
    for offered, size in ((200.0, 8), (30.0, 2), (90.0, 5)):
        serving_fleet.offer(offered)
        world.wait_until(
            lambda size=size: world.release("ranker")["spec"]["serving"]["replicas"] == size,  # type: ignore[misc]
            timeout=120,
            what=f"the HPA sizes the release at {size} for {offered:.0f} requests/s",
        )
        sizes_settled[size] = world.wait_until(
            lambda size=size: settled_at(world, size),
            timeout=90,
            what=f"the 25 % split of {size}",  # type: ignore[misc]
        )
        assert world.status("ranker")["phase"] == "Paused"
        assert world.status("ranker")["canaryWeight"] == 25

    scaler = world.get("horizontalpodautoscalers", "ranker", group="autoscaling")
    assert scaler["status"]["desiredReplicas"] == 5
    assert {name for name, _, _ in adapter.requests} == {METRIC}
    hpa_writes = [w for w in world.writes() if w.plural == "modelreleases" and w.subresource == "scale"]
    assert len(hpa_writes) >= 3, "the HPA resized the release through /scale"
    assert all("horizontal-pod-autoscaler" in w.user for w in hpa_writes)
    assert assert_budget_held(world) > 0
    for size, seen in sizes_settled.items():
        canary, stable = seen["canary"], seen["stable"]
        assert abs(canary - size * 25 / 100) <= 1, f"at {size}: {seen}"
        assert abs((canary + stable) - size) <= 1, f"at {size}: {seen}"
