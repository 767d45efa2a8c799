"""The API server fails the controller's calls — conflicts, internal errors, unavailability, timeouts —
through a fault-injecting proxy in front of the real API server, and the rollout ends as an
uninterrupted one does: promoted, each Deployment created once."""

from __future__ import annotations

import collections
import pathlib

from tests.cluster import harness
from tests.controlplane import faultproxy
from tests.controlplane.faultproxy import FaultRule


def _ending(world: harness.World) -> dict[str, object]:
    status = world.status("ranker")
    return {
        "phase": status["phase"],
        "stableModelVersion": status["stableModelVersion"],
        "analysis": [a["verdict"] for a in status["analysis"]],
        "deployments": sorted(world.deployments()),
        "selects": world.service("ranker")["spec"]["selector"].get("modelrelease.dev/revision"),
    }


def test_conflicts_server_errors_unavailability_and_timeouts_are_retried_until_the_rollout_completes(
    world: harness.World, tmp_path: pathlib.Path, fault_proxy: faultproxy.FaultProxy
) -> None:
    world.script_analysis({"default": "Pass"})
    proxy = fault_proxy
    controller = harness.Controller(world, tmp_path / "controller.log", proxy=proxy).start()
    try:
        world.create(harness.release_body("ranker", "1"))
        world.wait_for_phase("ranker", "Succeeded")
        rules = {
            409: proxy.add(
                FaultRule(times=3, code=409, verb="patch", plural="modelreleases", subresource="status")
            ),
            500: proxy.add(FaultRule(times=2, code=500, verb="create", plural="deployments")),
            503: proxy.add(FaultRule(times=2, code=503, verb="list", plural="pods")),
            # Held longer than the controller's 2 s request timeout, then cut: never forwarded.
            0: proxy.add(FaultRule(times=2, hang=3, verb="patch", plural="deployments")),
        }
        world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
        done = world.wait_for_status(
            "ranker", lambda s: s.get("phase") == "Succeeded" and s.get("stableModelVersion") == "2"
        )
        world.wait_until(lambda: len(world.deployments()) == 1, what="the old stable retired")
        # The last traffic move may follow the phase by one reconcile.
        world.wait_until(
            lambda: _ending(world)["selects"] == done["stableRevision"],
            what="traffic on the promoted revision",
        )
    finally:
        controller.stop()
    assert {code: rule.hits for code, rule in rules.items()} == {409: 3, 500: 2, 503: 2, 0: 2}
    assert _ending(world) == {
        "phase": "Succeeded",
        "stableModelVersion": "2",
        "analysis": ["Pass"],
        "deployments": [f"ranker-{done['stableRevision']}"],
        "selects": done["stableRevision"],  # production traffic on the promoted revision
    }
    created = collections.Counter(w.name for w in harness.successful(world, "create", "deployments"))
    assert set(created.values()) == {1}, created
