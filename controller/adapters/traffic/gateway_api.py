"""Gateway API: the canary's share is the weight of `<release>-canary` among the backendRefs of
the HTTPRoute rules that route to the release (`gateway.networking.k8s.io/v1`)."""

from __future__ import annotations

import copy
from typing import Any

from controller import errors, ports
from controller.adapters.traffic import routes, services


class GatewayApiRouter(routes.RouteRouter):
    api_version = "gateway.networking.k8s.io/v1"
    plural = "httproutes"
    kind = "HTTPRoute"

    def route_name(self, release: ports.ReleaseRef) -> str:
        routing = release.spec.traffic_routing.gateway_api
        assert routing is not None
        return routing.http_route

    def _rules(self, route: dict[str, Any], release: ports.ReleaseRef) -> list[dict[str, Any]]:
        """The rules with a backendRef to one of the release's Services: the ones modelrelease weights."""
        ours = services.ours(release.name)
        rules = [
            rule
            for rule in route.get("spec", {}).get("rules", []) or []
            if any(ref.get("name") in ours for ref in rule.get("backendRefs", []) or [])
        ]
        if not rules:
            raise errors.InvalidError(
                f"HTTPRoute {route['metadata']['name']}: no rule has a backendRef to "
                f"{', '.join(sorted(ours))}"
            )
        return rules

    def read_weights(self, route: dict[str, Any], release: ports.ReleaseRef) -> tuple[int, int] | None:
        refs = {
            str(ref.get("name")): int(ref.get("weight", 1))
            for ref in self._rules(route, release)[0]["backendRefs"]
        }
        return routes.stable_and_canary(refs, release)

    def write_weights(
        self, route: dict[str, Any], release: ports.ReleaseRef, stable: int, canary: int
    ) -> dict[str, Any]:
        route = copy.deepcopy(route)
        ours = services.ours(release.name)
        port = services.service_port(release)

        def build(template: dict[str, Any]) -> list[dict[str, Any]]:
            # The backend is now one of our Services in the release's namespace; the filters stay.
            kept = {"filters": template["filters"]} if "filters" in template else {}
            return [
                {"name": services.stable_service(release.name), "port": port, "weight": stable, **kept},
                {"name": services.canary_service(release.name), "port": port, "weight": canary, **kept},
            ]

        for rule in self._rules(route, release):
            rule["backendRefs"] = routes.replace_ours(
                rule["backendRefs"], lambda ref: ref.get("name") in ours, build
            )
        return route
