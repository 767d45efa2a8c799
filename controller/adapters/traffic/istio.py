"""Istio: the canary's share is the weight of the `<release>-canary` destination in one http route
of a VirtualService (`networking.istio.io/v1`): the one `spec.trafficRouting.istio.route` names,
else the first (not counting the header route modelrelease adds).

A shadow is that http route's `mirror` (the canary Service) with `mirrorPercentage`; a header route
is one more http route, named `modelrelease-<release>-header`, put just before it (Istio takes the
first http route that matches), with its matches plus the header matches."""

from __future__ import annotations

import copy
from typing import Any

from controller import errors, ports
from controller.adapters.traffic import gateway_api, routes, services
from controller.resources import modelrelease


def _short_host(destination: dict[str, Any]) -> str:
    """`ranker-stable.ml.svc.cluster.local` → `ranker-stable`."""
    return str((destination.get("destination") or {}).get("host", "")).split(".")[0]


class IstioRouter(routes.RouteRouter):
    api_version = "networking.istio.io/v1"
    plural = "virtualservices"
    kind = "VirtualService"

    def route_name(self, release: ports.ReleaseRef) -> str:
        routing = release.spec.traffic_routing.istio
        assert routing is not None
        return routing.virtual_service

    def _http_index(self, route: dict[str, Any], release: ports.ReleaseRef) -> int:
        routing = release.spec.traffic_routing.istio
        assert routing is not None
        http = route.get("spec", {}).get("http", []) or []
        header = routes.header_rule_name(release)
        for index, entry in enumerate(http):
            if entry.get("name") == header:
                continue
            if routing.route is None or entry.get("name") == routing.route:
                return index
        wanted = f"an http route named {routing.route!r}" if routing.route else "any http route"
        raise errors.InvalidError(f"VirtualService {route['metadata']['name']} has no {wanted}")

    def read_weights(self, route: dict[str, Any], release: ports.ReleaseRef) -> tuple[int, int] | None:
        http = route["spec"]["http"][self._http_index(route, release)]
        weights = {_short_host(d): int(d.get("weight", 100)) for d in http.get("route", []) or []}
        return routes.stable_and_canary(weights, release)

    def write_weights(
        self, route: dict[str, Any], release: ports.ReleaseRef, stable: int, canary: int
    ) -> dict[str, Any]:
        route = copy.deepcopy(route)
        ours = services.ours(release.name)
        http = route["spec"]["http"][self._http_index(route, release)]

        def build(template: dict[str, Any]) -> list[dict[str, Any]]:
            # The destination is now one of our Services (its one port); header rewrites stay.
            kept = {"headers": template["headers"]} if "headers" in template else {}
            return [
                {"destination": {"host": services.stable_service(release.name)}, "weight": stable, **kept},
                {"destination": {"host": services.canary_service(release.name)}, "weight": canary, **kept},
            ]

        http["route"] = routes.replace_ours(http.get("route") or [], lambda d: _short_host(d) in ours, build)
        return route

    def read_mirror(self, route: dict[str, Any], release: ports.ReleaseRef) -> int:
        http = route["spec"]["http"][self._http_index(route, release)]
        mirror = http.get("mirror") or {}
        if str(mirror.get("host", "")).split(".")[0] != services.canary_service(release.name):
            return 0
        return round(float((http.get("mirrorPercentage") or {}).get("value", 100)))

    def write_mirror(self, route: dict[str, Any], release: ports.ReleaseRef, percent: int) -> None:
        http = route["spec"]["http"][self._http_index(route, release)]
        if percent:
            http["mirror"] = {"host": services.canary_service(release.name)}
            http["mirrorPercentage"] = {"value": float(percent)}
        elif str((http.get("mirror") or {}).get("host", "")).split(".")[0] == services.canary_service(
            release.name
        ):
            http.pop("mirror", None)
            http.pop("mirrorPercentage", None)

    def header_rule(self, route: dict[str, Any], release: ports.ReleaseRef) -> dict[str, Any] | None:
        return routes.named_rule(route.get("spec", {}).get("http") or [], release)

    def write_header_rule(
        self, route: dict[str, Any], release: ports.ReleaseRef, header: modelrelease.SetHeaderRoute | None
    ) -> None:
        name = routes.header_rule_name(release)
        base = route["spec"]["http"][self._http_index(route, release)]
        http = [h for h in route["spec"]["http"] if h.get("name") != name]
        if header is not None:
            extra = dict(_header_match(m) for m in header.match)
            matches = [
                {**m, "headers": {**(m.get("headers") or {}), **extra}} for m in base.get("match") or [{}]
            ]
            destinations = [
                {"destination": {"host": service}, "weight": weight}
                for service, weight in routes.cohort_split(release, header.weight)
            ]
            http.insert(http.index(base), {"name": name, "match": matches, "route": destinations})
        route["spec"]["http"] = http


def _header_match(match: modelrelease.HeaderMatch) -> tuple[str, dict[str, str]]:
    if match.cookie is not None:
        return "cookie", {"regex": gateway_api.cookie_regex(match)}
    assert match.header is not None
    if match.exact is not None:
        return match.header.lower(), {"exact": match.exact}
    if match.prefix is not None:
        return match.header.lower(), {"prefix": match.prefix}
    return match.header.lower(), {"regex": str(match.regex)}
