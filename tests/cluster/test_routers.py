"""Each route-based router moving live traffic on the real control plane: a canary promoted and the
next one rolled back, through a Gateway API HTTPRoute and through an Istio VirtualService (both under
their projects' own CRDs, schemas and CEL rules), with the route's other rules untouched throughout."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.cluster import harness
from tests.controlplane.kube import KubeError

STEPS = [{"setWeight": 25}, {"analysis": {"template": "t", "maxDuration": "10m"}}, {"setWeight": 50}]

HTTP_ROUTE: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "ranker-route"},
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
    "metadata": {"name": "ranker-vs"},
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
    manifest, (group, _version, plural), routing = ROUTERS[router]
    name = manifest["metadata"]["name"]

    def route() -> dict[str, Any]:
        return world.get(plural, name, group=group)

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
    world.wait_until(
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
    world.wait_until(
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


def test_the_route_the_controller_writes_passes_gateway_apis_cel_rules_and_a_broken_one_does_not(
    world: harness.World, controller: harness.Controller
) -> None:
    world.create(copy.deepcopy(HTTP_ROUTE))
    world.script_analysis({"default": "Running"})  # hold the canary at its first weight
    body = harness.release_body("ranker", "1", trafficRouting=ROUTERS["gateway-api"][2])
    body["spec"]["strategy"]["canary"]["steps"] = STEPS
    world.create(body)
    world.wait_for_phase("ranker", "Succeeded")
    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
    world.wait_until(
        lambda: (
            _weights(world.get("httproutes", "ranker-route")) == {"ranker-stable": 75, "ranker-canary": 25}
        ),
        what="the route at 25 %",
    )
    written = world.get("httproutes", "ranker-route")
    route = {key: written[key] for key in ("apiVersion", "kind", "spec")}
    route["metadata"] = {"name": "ranker-route"}
    # The server validates the route as written (structural schema and CEL rules) and answers it.
    world.apply(route)
    # The same route with a path Gateway API's CEL rule forbids (not absolute) is refused.
    broken = copy.deepcopy(route)
    broken["spec"]["rules"][0]["matches"][0]["path"]["value"] = "v1"
    with pytest.raises(KubeError) as refused:
        world.apply(broken)
    assert refused.value.code == 422
    assert "must be an absolute path" in refused.value.message
