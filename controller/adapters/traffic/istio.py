"""Istio: the canary's share is the weight of the `<release>-canary` destination in one http route
of a VirtualService (`networking.istio.io/v1`): the one `spec.trafficRouting.istio.route` names,
else the first."""

from __future__ import annotations

import copy
from typing import Any

from controller import errors, ports
from controller.adapters.traffic import routes, services


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
        for index, entry in enumerate(http):
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
