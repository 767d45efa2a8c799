"""The fleet's bookkeeping for the side-by-side benchmark: what each model version served (kept after
its pods are gone), the GPU-seconds a release's pods held, noisy neighbours, and the one-page scrape."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from controller.tooling import fleet

NAMESPACE = "ml"
READY_SINCE = "2026-12-03T00:00:00Z"


def _pod(name: str, version: str, *, revision: str, gpus: int = 1, bound: bool = True) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {fleet.RELEASE: "ranker", fleet.REVISION: revision},
        },
        "spec": {
            **({"nodeName": "node-1"} if bound else {}),
            "containers": [
                {
                    "name": "server",
                    "env": [{"name": "MODEL_VERSION", "value": version}],
                    "resources": {"limits": {fleet.GPU: gpus}},
                }
            ],
        },
        "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": READY_SINCE}]},
    }


class Cluster:
    """What the fleet reads: pods and the release's Service (selecting by its label)."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods
        self.service = {
            "metadata": {"name": "ranker", "namespace": NAMESPACE},
            "spec": {"selector": {fleet.RELEASE: "ranker"}},
        }

    def objects(self, plural: str, namespace: str = "") -> list[dict[str, Any]]:
        return {"pods": self.pods, "services": [self.service]}.get(plural, [])


RATE = 1000.0


def test_what_a_version_served_is_kept_after_its_pods_are_gone_and_held_gpus_are_counted() -> None:
    """Bound: 10 s at 1,000 requests/s is Poisson(10,000) in all, shared evenly by two pods; each
    count is checked within 5 standard deviations of its mean."""
    cluster = Cluster([_pod("stable", "1", revision="a"), _pod("canary", "2", revision="b", gpus=2)])
    serving = fleet.ServingFleet(cluster, fleet.FleetScenario(requests_per_second=RATE), seed=3)
    serving.advance(100.0)
    serving.advance(110.0)
    cluster.pods = [cluster.pods[0]]  # the canary rolled back: its pod is gone
    serving.advance(120.0)
    tally = serving.tally(NAMESPACE, "ranker")
    assert abs(tally.served["2"] - 5000) <= 5 * 5000**0.5
    assert abs(tally.served["1"] - 15000) <= 5 * 15000**0.5
    assert tally.gpu_seconds == 3 * 10 + 1 * 10  # three GPUs for 10 s, then the stable's one
    assert serving.tally(NAMESPACE, "other") == fleet.Tally({}, 0.0)


def test_a_pod_not_yet_bound_to_a_node_holds_no_gpu() -> None:
    cluster = Cluster([_pod("stable", "1", revision="a"), _pod("pending", "2", revision="b", bound=False)])
    serving = fleet.ServingFleet(cluster, fleet.FleetScenario(requests_per_second=RATE), seed=3)
    serving.advance(0.0)
    serving.advance(4.0)
    assert serving.tally(NAMESPACE, "ranker").gpu_seconds == 4.0


def _share_slower_than(serving: fleet.ServingFleet, edge: float) -> float:
    page = serving.exposition(NAMESPACE, "stable") or ""
    buckets = {
        float(s.labels["le"]): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
        if s.name.endswith("_bucket")
    }
    return 1 - buckets[edge] / buckets[float("inf")]


def test_a_noisy_neighbour_slows_the_pods_it_shares_a_node_with() -> None:
    """An episode that starts at once and outlasts the test slows every request by half: the share
    slower than 100 ms rises from 25 % (the base behaviour) to about 74 %. Bound: 20,000 requests,
    so each share is within ±1.6 points at 5 standard deviations; the test asks for +15 points."""
    quiet = fleet.FleetScenario(requests_per_second=RATE)
    noisy = fleet.FleetScenario.from_document(
        {
            "requestsPerSecond": RATE,
            "slowEpisodesPerHour": 3600 * 1000,
            "slowEpisodeSeconds": 1e9,
            "slowEpisodeSlowdown": 0.5,
        }
    )
    shares = []
    for scenario in (quiet, noisy):
        serving = fleet.ServingFleet(Cluster([_pod("stable", "1", revision="a")]), scenario, seed=5)
        serving.advance(0.0)
        serving.advance(20.0)
        shares.append(_share_slower_than(serving, 0.1))
    assert abs(shares[0] - 0.25) < 0.016
    assert shares[1] > shares[0] + 0.15, shares


def test_one_page_carries_every_pods_series_labelled_as_a_per_pod_scrape_would_label_them() -> None:
    cluster = Cluster([_pod("stable", "1", revision="a"), _pod("canary", "2", revision="b")])
    serving = fleet.ServingFleet(cluster, fleet.FleetScenario(requests_per_second=RATE), seed=3)
    serving.advance(0.0)
    serving.advance(5.0)
    targets = {g["labels"]["pod"]: g["labels"] for g in serving.targets("127.0.0.1:1")}
    requests = {
        s.labels["pod"]: (s.labels, s.value)
        for family in text_string_to_metric_families(serving.exposition_all())
        for s in family.samples
        if s.name == "inference_requests_total" and s.labels.get("source") == "user"
    }
    assert set(requests) == {"stable", "canary"}
    for pod, (labels, value) in requests.items():
        expected = {k: v for k, v in targets[pod].items() if not k.startswith("__")}
        assert {k: v for k, v in labels.items() if k != "source"} == expected
        own = serving.exposition(NAMESPACE, pod) or ""
        assert f'inference_requests_total{{source="user"}} {value:.0f}' in own
