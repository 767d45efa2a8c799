"""Each traffic router on routes shaped like the ones teams write: weights written where they belong,
everything else in the route left as the user wrote it, writes guarded by resourceVersion, and a
missing route a permanent error that names it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from controller import errors, ports
from controller.adapters import labels, traffic
from controller.adapters.traffic import gateway_api, istio, replica_ratio, routes
from controller.domain import actions, naming
from controller.resources import modelrelease
from tests.unit.adapters import fake_api
from tests.unit.domain import builders

NS = "ml"
ROUTES = f"/apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes"
VIRTUAL_SERVICES = f"/apis/networking.istio.io/v1/namespaces/{NS}/virtualservices"
SERVICES = f"/api/v1/namespaces/{NS}/services"
STABLE, CANARY = "rev-stable", "rev-canary"


def _release(router: dict[str, Any]) -> ports.ReleaseRef:
    spec = builders.release_spec(router=router)
    return ports.ReleaseRef(namespace=NS, name="fraud", uid="uid-1", spec=spec)


def _weight(canary: int, canary_revision: str | None = CANARY) -> actions.SetTrafficWeight:
    return actions.SetTrafficWeight(
        stable_revision=STABLE, canary_revision=canary_revision, canary_weight=canary
    )


HTTP_ROUTE: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "fraud-route", "namespace": NS, "labels": {"team": "risk"}},
    "spec": {
        "parentRefs": [{"name": "inference-gateway", "namespace": "gateway-system", "sectionName": "https"}],
        "hostnames": ["fraud.ml.example.com"],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/v2/models/fraud"}}],
                "filters": [
                    {
                        "type": "RequestHeaderModifier",
                        "requestHeaderModifier": {"add": [{"name": "x-team", "value": "risk"}]},
                    }
                ],
                "backendRefs": [
                    {"name": "fraud", "port": 8000, "weight": 95},
                    {"name": "fraud-shadow-sink", "port": 9000, "weight": 5},
                ],
                "timeouts": {"request": "10s"},
            },
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/metrics"}}],
                "backendRefs": [{"name": "metrics-proxy", "port": 9090}],
            },
        ],
    },
}

VIRTUAL_SERVICE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "fraud-vs", "namespace": NS},
    "spec": {
        "hosts": ["fraud.ml.svc.cluster.local"],
        "gateways": ["mesh"],
        "http": [
            {
                "name": "health",
                "match": [{"uri": {"prefix": "/healthz"}}],
                "route": [{"destination": {"host": "health-checker.ml.svc.cluster.local"}}],
            },
            {
                "name": "primary",
                "match": [{"uri": {"prefix": "/v2/models/fraud"}}],
                "retries": {"attempts": 3, "perTryTimeout": "2s"},
                "route": [
                    {
                        "destination": {"host": "fraud.ml.svc.cluster.local", "port": {"number": 8000}},
                        "weight": 100,
                        "headers": {"response": {"set": {"x-served-by": "modelrelease"}}},
                    }
                ],
            },
        ],
    },
}


def _gateway() -> tuple[fake_api.FakeApi, gateway_api.GatewayApiRouter, ports.ReleaseRef]:
    api = fake_api.FakeApi()
    api.put(ROUTES, copy.deepcopy(HTTP_ROUTE))
    release = _release({"gatewayAPI": {"httpRoute": "fraud-route"}})
    return api, gateway_api.GatewayApiRouter(api), release  # type: ignore[arg-type]


def _istio(route: str | None = "primary") -> tuple[fake_api.FakeApi, istio.IstioRouter, ports.ReleaseRef]:
    api = fake_api.FakeApi()
    api.put(VIRTUAL_SERVICES, copy.deepcopy(VIRTUAL_SERVICE))
    routing: dict[str, Any] = {"virtualService": "fraud-vs"} | ({"route": route} if route else {})
    return api, istio.IstioRouter(api), _release({"istio": routing})  # type: ignore[arg-type]


def test_the_router_is_chosen_by_spec_traffic_routing() -> None:
    api = fake_api.FakeApi()
    pick = traffic.build_router
    assert isinstance(pick(api, _release({"gatewayAPI": {"httpRoute": "r"}})), gateway_api.GatewayApiRouter)  # type: ignore[arg-type]
    assert isinstance(pick(api, _release({"istio": {"virtualService": "v"}})), istio.IstioRouter)  # type: ignore[arg-type]
    assert isinstance(pick(api, _release({"replicas": {}})), replica_ratio.ReplicaRatioRouter)  # type: ignore[arg-type]


# ---- Gateway API ----------------------------------------------------------------------------------


def test_httproute_weights_go_to_the_stable_and_canary_services_in_the_rule_that_routes_to_the_release() -> (
    None
):
    api, router, release = _gateway()
    router.apply_weight(release, _weight(25))
    route = api.get(f"{ROUTES}/fraud-route")
    ours = route["spec"]["rules"][0]
    assert ours["backendRefs"] == [
        {"name": "fraud-stable", "port": 8080, "weight": 75},
        {"name": "fraud-canary", "port": 8080, "weight": 25},
        {"name": "fraud-shadow-sink", "port": 9000, "weight": 5},
    ]
    assert router.fetch_traffic(release) == _traffic(25)


def test_httproute_rules_matches_filters_and_backends_modelrelease_does_not_own_are_left_untouched() -> None:
    api, router, release = _gateway()
    router.apply_weight(release, _weight(25))
    router.apply_weight(release, _weight(50))
    route = api.get(f"{ROUTES}/fraud-route")
    original = HTTP_ROUTE["spec"]
    assert route["spec"]["rules"][1] == original["rules"][1]
    for key in ("matches", "filters", "timeouts"):
        assert route["spec"]["rules"][0][key] == original["rules"][0][key]
    for key in ("parentRefs", "hostnames"):
        assert route["spec"][key] == original[key]
    assert route["metadata"]["labels"] == {"team": "risk"}
    assert route["spec"]["rules"][0]["backendRefs"][2] == original["rules"][0]["backendRefs"][1]


def test_track_services_select_one_revision_each_and_move_only_after_their_weight_is_taken_away() -> None:
    api, router, release = _gateway()
    router.apply_weight(release, _weight(25))
    assert _selects(api, "fraud-stable") == STABLE
    assert _selects(api, "fraud-canary") == CANARY
    api.patches.clear()
    newer = actions.SetTrafficWeight(stable_revision=STABLE, canary_revision="rev-newer", canary_weight=0)
    router.apply_weight(release, newer)
    # The canary Service changes revision only once the route gives it no weight.
    paths = [path for path, _ in api.patches]
    assert paths[0] == f"{ROUTES}/fraud-route"
    assert api.patches[0][1]["spec"]["rules"][0]["backendRefs"][1]["weight"] == 0
    assert paths.index(f"{SERVICES}/fraud-canary") > 0
    assert _selects(api, "fraud-canary") == "rev-newer"


@pytest.mark.parametrize("build", [_gateway, _istio])
def test_with_a_route_the_production_service_selects_the_stable_revision_only(
    build: Callable[[], tuple[fake_api.FakeApi, Any, ports.ReleaseRef]],
) -> None:
    # A client calling the Service past the route (or a route still aimed at it) never reaches a canary.
    api, router, release = build()
    router.apply_weight(release, _weight(50))
    assert _selects(api, "fraud") == STABLE
    promoted = actions.SetTrafficWeight(stable_revision=CANARY, canary_revision=None, canary_weight=0)
    router.apply_weight(release, promoted)
    assert _selects(api, "fraud") == CANARY


def test_a_route_edited_since_it_was_read_is_not_overwritten() -> None:
    api, router, release = _gateway()
    router.apply_weight(release, _weight(25))
    route = router.fetch_route(release)
    api.touch(f"{ROUTES}/fraud-route")  # someone edits the route meanwhile
    with pytest.raises(errors.ConflictError):
        router._patch_route(release, router.write_weights(route, release, 50, 50))
    assert all("resourceVersion" in body["metadata"] for _, body in api.patches)


def test_a_missing_httproute_is_a_permanent_error_naming_it() -> None:
    api = fake_api.FakeApi()
    router = gateway_api.GatewayApiRouter(api)  # type: ignore[arg-type]
    release = _release({"gatewayAPI": {"httpRoute": "fraud-route"}})
    with pytest.raises(errors.NotFoundError, match=r"HTTPRoute ml/fraud-route named in spec\.trafficRouting"):
        router.apply_weight(release, _weight(25))
    assert isinstance(errors.NotFoundError("x"), errors.PermanentError)


def test_an_httproute_without_a_rule_for_the_release_is_an_invalid_error_naming_the_services() -> None:
    api = fake_api.FakeApi()
    unrelated = copy.deepcopy(HTTP_ROUTE)
    unrelated["spec"]["rules"] = [unrelated["spec"]["rules"][1]]
    api.put(ROUTES, unrelated)
    router = gateway_api.GatewayApiRouter(api)  # type: ignore[arg-type]
    with pytest.raises(
        errors.InvalidError, match="no rule has a backendRef to fraud, fraud-canary, fraud-stable"
    ):
        router.apply_weight(_release({"gatewayAPI": {"httpRoute": "fraud-route"}}), _weight(25))


# ---- Istio ----------------------------------------------------------------------------------------


def test_virtualservice_weights_go_to_the_named_http_route_and_keep_its_header_rewrites() -> None:
    api, router, release = _istio()
    router.apply_weight(release, _weight(10))
    http = api.get(f"{VIRTUAL_SERVICES}/fraud-vs")["spec"]["http"]
    headers = VIRTUAL_SERVICE["spec"]["http"][1]["route"][0]["headers"]
    assert http[1]["route"] == [
        {"destination": {"host": "fraud-stable"}, "weight": 90, "headers": headers},
        {"destination": {"host": "fraud-canary"}, "weight": 10, "headers": headers},
    ]
    assert router.fetch_traffic(release) == _traffic(10)


def test_virtualservice_routes_hosts_and_retries_modelrelease_does_not_own_are_left_untouched() -> None:
    api, router, release = _istio()
    router.apply_weight(release, _weight(10))
    router.apply_weight(release, _weight(100))
    spec = api.get(f"{VIRTUAL_SERVICES}/fraud-vs")["spec"]
    original = VIRTUAL_SERVICE["spec"]
    assert spec["http"][0] == original["http"][0]
    assert (spec["http"][1]["match"], spec["http"][1]["retries"]) == (
        original["http"][1]["match"],
        original["http"][1]["retries"],
    )
    assert (spec["hosts"], spec["gateways"]) == (original["hosts"], original["gateways"])


def test_without_a_route_name_the_first_http_route_is_weighted() -> None:
    api, router, release = _istio(route=None)
    first = copy.deepcopy(VIRTUAL_SERVICE)
    first["spec"]["http"] = [first["spec"]["http"][1], first["spec"]["http"][0]]
    api.objects[f"{VIRTUAL_SERVICES}/fraud-vs"] = first | {
        "metadata": {**first["metadata"], "resourceVersion": "1"}
    }
    router.apply_weight(release, _weight(30))
    http = api.get(f"{VIRTUAL_SERVICES}/fraud-vs")["spec"]["http"]
    assert [d["weight"] for d in http[0]["route"]] == [70, 30]
    assert http[1] == VIRTUAL_SERVICE["spec"]["http"][0]


def test_a_missing_virtualservice_or_http_route_is_a_permanent_error_naming_it() -> None:
    api = fake_api.FakeApi()
    router = istio.IstioRouter(api)  # type: ignore[arg-type]
    with pytest.raises(
        errors.NotFoundError, match=r"VirtualService ml/fraud-vs named in spec\.trafficRouting"
    ):
        router.apply_weight(_release({"istio": {"virtualService": "fraud-vs"}}), _weight(10))
    api, router, release = _istio(route="canary-only")
    with pytest.raises(
        errors.InvalidError, match="VirtualService fraud-vs has no an http route named 'canary-only'"
    ):
        router.apply_weight(release, _weight(10))


def test_a_virtualservice_edited_since_it_was_read_is_not_overwritten() -> None:
    api, router, release = _istio()
    router.apply_weight(release, _weight(10))
    route = router.fetch_route(release)
    api.touch(f"{VIRTUAL_SERVICES}/fraud-vs")
    with pytest.raises(errors.ConflictError):
        router._patch_route(release, router.write_weights(route, release, 50, 50))


# ---- replica ratio ----------------------------------------------------------------------------------


def test_replica_ratio_selects_one_revision_at_0_and_100_percent_and_both_in_between() -> None:
    api = fake_api.FakeApi()
    router = replica_ratio.ReplicaRatioRouter(api)  # type: ignore[arg-type]
    release = _release({"replicas": {}})
    bounded = naming.release_label("fraud")
    for weight, selected in ((0, STABLE), (40, None), (100, CANARY)):
        router.apply_weight(release, _weight(weight))
        selector = api.get(f"{SERVICES}/fraud")["spec"]["selector"]
        expected = {labels.RELEASE: bounded} | ({labels.REVISION: selected} if selected else {})
        assert selector == expected, f"at {weight} %"
        assert router.fetch_traffic(release) == _traffic(weight)


def test_replica_ratio_with_no_production_service_yet_reports_no_traffic() -> None:
    router = replica_ratio.ReplicaRatioRouter(fake_api.FakeApi())  # type: ignore[arg-type]
    assert router.fetch_traffic(_release({"replicas": {}})) is None


# ---- helpers ------------------------------------------------------------------------------------------


def _traffic(weight: int) -> Any:
    from controller.domain import observations

    return observations.Traffic(stable_revision=STABLE, canary_revision=CANARY, canary_weight=weight)


def _selects(api: fake_api.FakeApi, service: str) -> str:
    return str(api.get(f"{SERVICES}/{service}")["spec"]["selector"][labels.REVISION])


# ---- shadows and header routes ----------------------------------------------------------------------

BETA = modelrelease.SetHeaderRoute.model_validate(
    {"match": [{"header": "x-cohort", "exact": "beta"}, {"cookie": "plan", "prefix": "pro"}]}
)


def _routed(
    canary: int = 0, mirror: int = 0, header: modelrelease.SetHeaderRoute | None = None
) -> actions.SetTrafficWeight:
    return actions.SetTrafficWeight(
        stable_revision=STABLE,
        canary_revision=CANARY,
        canary_weight=canary,
        mirror_percent=mirror,
        header_route=header,
    )


def test_an_httproute_shadow_is_a_request_mirror_filter_beside_the_users_filters_and_goes_with_it() -> None:
    api, router, release = _gateway()
    router.apply_weight(release, _routed(mirror=40))
    rule = api.get(f"{ROUTES}/fraud-route")["spec"]["rules"][0]
    assert rule["filters"] == [
        *HTTP_ROUTE["spec"]["rules"][0]["filters"],
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"name": "fraud-canary", "port": 8080}, "percent": 40},
        },
    ]
    assert [r["weight"] for r in rule["backendRefs"][:2]] == [100, 0], "a shadow serves no user"
    seen = router.fetch_traffic(release)
    assert seen is not None
    assert (seen.canary_weight, seen.mirror_percent) == (0, 40)
    router.apply_weight(release, _routed(canary=20))
    rule = api.get(f"{ROUTES}/fraud-route")["spec"]["rules"][0]
    assert rule["filters"] == HTTP_ROUTE["spec"]["rules"][0]["filters"]


def test_an_httproute_header_route_is_one_more_rule_with_the_routes_matches_and_goes_when_cleared() -> None:
    api, router, release = _gateway()
    router.apply_weight(release, _routed(header=BETA))
    rules = api.get(f"{ROUTES}/fraud-route")["spec"]["rules"]
    assert len(rules) == 3
    cohort = rules[1]
    assert cohort["name"] == "modelrelease-fraud-header"
    # With the group and kind the API server defaults, so the rule reads back exactly as written.
    assert cohort["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "fraud-canary", "port": 8080, "weight": 100}
    ]
    [match] = cohort["matches"]
    assert match["path"] == {"type": "PathPrefix", "value": "/v2/models/fraud"}
    assert match["headers"] == [
        {"type": "Exact", "name": "x-cohort", "value": "beta"},
        {"type": "RegularExpression", "name": "Cookie", "value": r"(^|;\s*)plan=pro"},
    ]
    seen = router.fetch_traffic(release)
    assert seen is not None
    assert seen.header_route == BETA
    router.apply_weight(release, _routed(canary=50))  # a later setWeight clears it
    route = api.get(f"{ROUTES}/fraud-route")
    assert route["spec"]["rules"][1] == HTTP_ROUTE["spec"]["rules"][1]
    assert len(route["spec"]["rules"]) == 2
    assert routes.HEADER_ROUTES not in (route["metadata"].get("annotations") or {})


def test_a_header_rule_someone_edited_is_not_taken_as_in_force_and_is_written_again() -> None:
    api, router, release = _gateway()
    router.apply_weight(release, _routed(header=BETA))
    route = api.get(f"{ROUTES}/fraud-route")
    route["spec"]["rules"][1]["matches"][0]["headers"][0]["value"] = "everyone"
    api.merge_patch(f"{ROUTES}/fraud-route", {"spec": route["spec"]})  # someone edits the rule
    seen = router.fetch_traffic(release)
    assert seen is not None
    assert seen.header_route is None
    router.apply_weight(release, _routed(header=BETA))
    assert api.get(f"{ROUTES}/fraud-route")["spec"]["rules"][1]["matches"][0]["headers"][0]["value"] == "beta"


def test_a_virtualservice_shadow_mirrors_its_http_route_and_a_header_route_comes_just_before_it() -> None:
    api, router, release = _istio()
    router.apply_weight(release, _routed(mirror=100, header=BETA))
    http = api.get(f"{VIRTUAL_SERVICES}/fraud-vs")["spec"]["http"]
    assert [h["name"] for h in http] == ["health", "modelrelease-fraud-header", "primary"]
    assert (http[2]["mirror"], http[2]["mirrorPercentage"]) == ({"host": "fraud-canary"}, {"value": 100.0})
    assert http[1]["match"] == [
        {
            "uri": {"prefix": "/v2/models/fraud"},
            "headers": {"x-cohort": {"exact": "beta"}, "cookie": {"regex": r"(^|;\s*)plan=pro"}},
        }
    ]
    assert http[1]["route"] == [{"destination": {"host": "fraud-canary"}, "weight": 100}]
    seen = router.fetch_traffic(release)
    assert seen is not None
    assert (seen.mirror_percent, seen.header_route) == (100, BETA)
    router.apply_weight(release, _routed(canary=10))
    http = api.get(f"{VIRTUAL_SERVICES}/fraud-vs")["spec"]["http"]
    assert [h["name"] for h in http] == ["health", "primary"]
    assert "mirror" not in http[1]
    assert http[1]["retries"] == VIRTUAL_SERVICE["spec"]["http"][1]["retries"]
