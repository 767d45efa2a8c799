"""Each route-based router moving live traffic in the emulated cluster: a canary promoted and the
next one rolled back, through a Gateway API HTTPRoute and through an Istio VirtualService, with the
route's other rules untouched throughout."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.integration import harness

STEPS = [{"setWeight": 25}, {"analysis": {"template": "t", "maxDuration": "10m"}}, {"setWeight": 50}]

HTTP_ROUTE: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "ranker-route", "namespace": "default"},
    "spec": {
        "parentRefs": [{"name": "gw"}],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                "backendRefs": [{"name": "ranker", "port": 8000}],
            },
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
                "backendRefs": [{"name": "admin", "port": 80}],
            },
        ],
    },
}

VIRTUAL_SERVICE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "ranker-vs", "namespace": "default"},
    "spec": {
        "hosts": ["ranker.default.svc.cluster.local"],
        "http": [
            {
                "name": "admin",
                "match": [{"uri": {"prefix": "/admin"}}],
                "route": [{"destination": {"host": "admin"}}],
            },
            {"name": "primary", "route": [{"destination": {"host": "ranker"}}]},
        ],
    },
}

ROUTERS = {
    "gateway-api": (
        HTTP_ROUTE,
        ("gateway.networking.k8s.io", "v1", "httproutes"),
        {"gatewayAPI": {"httpRoute": "ranker-route"}},
    ),
    "istio": (
        VIRTUAL_SERVICE,
        ("networking.istio.io", "v1", "virtualservices"),
        {"istio": {"virtualService": "ranker-vs", "route": "primary"}},
    ),
}


def _weights(route: dict[str, Any]) -> dict[str, int]:
    """Backend → weight in the rule modelrelease owns."""
    if route["kind"] == "HTTPRoute":
        return {ref["name"]: ref["weight"] for ref in route["spec"]["rules"][0]["backendRefs"]}
    return {d["destination"]["host"]: d["weight"] for d in route["spec"]["http"][1]["route"]}


def _untouched(route: dict[str, Any]) -> Any:
    """The parts of the route modelrelease does not own."""
    if route["kind"] == "HTTPRoute":
        return route["spec"]["parentRefs"], route["spec"]["rules"][1], route["spec"]["rules"][0]["matches"]
    return route["spec"]["hosts"], route["spec"]["http"][0]


@pytest.mark.parametrize("router", sorted(ROUTERS))
def test_a_canary_is_promoted_and_the_next_rolled_back_through_the_route(
    world: harness.World, controller: harness.Controller, router: str
) -> None:
    manifest, (group, version, plural), routing = ROUTERS[router]
    name = manifest["metadata"]["name"]
    rtype = world.rtype(group, version, plural)

    def route() -> dict[str, Any]:
        return world.store.get(rtype, "default", name)

    world.create(copy.deepcopy(manifest))
    before = _untouched(route())
    world.script_analysis({"2": "Pass", "3": "Fail"})
    body = harness.release_body("ranker", "1", trafficRouting=routing)
    body["spec"]["strategy"]["canary"]["steps"] = STEPS
    world.create(body)
    first = world.wait_for_phase("ranker", "Succeeded")

    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
    promoted = world.wait_for_status(
        "ranker", lambda s: s.get("phase") == "Succeeded" and s.get("stableModelVersion") == "2"
    )
    weights_seen = [
        _weights(w.object)
        for w in world.controller_writes()
        if w.verb == "patch" and w.name == name and w.code < 300 and w.object is not None
    ]
    assert {"ranker-stable": 75, "ranker-canary": 25} in weights_seen, "the 25 % step never reached the route"
    world.sandbox.wait_until(
        lambda: (
            _weights(route()) == {"ranker-stable": 100, "ranker-canary": 0}
            and world.service("ranker-stable")["spec"]["selector"]["modelrelease.dev/revision"]
            == promoted["stableRevision"]
        ),
        timeout=30,
        what="all traffic on the promoted revision",
    )
    assert promoted["stableRevision"] != first["stableRevision"]

    world.patch_release("ranker", {"spec": {"model": {"version": "3"}}})
    rolled = world.wait_for_phase("ranker", "RolledBack")
    assert rolled["stableRevision"] == promoted["stableRevision"]
    assert rolled["lastRollback"]["reason"] == "AnalysisFailed"
    world.sandbox.wait_until(
        lambda: (
            _weights(route()) == {"ranker-stable": 100, "ranker-canary": 0}
            and world.service("ranker-stable")["spec"]["selector"]["modelrelease.dev/revision"]
            == promoted["stableRevision"]
            and len(world.deployments()) == 1
        ),
        timeout=30,
        what="traffic back on stable and the canary removed",
    )
    assert _untouched(route()) == before
