"""Gateway API: the canary's share is the weight of `<release>-canary` among the backendRefs of
the HTTPRoute rules that route to the release (`gateway.networking.k8s.io/v1`).

A shadow is a `RequestMirror` filter on those rules with `percent` (GEP-3171); a header route is one
more rule, named `modelrelease-<release>-header`, with the first rule's matches plus the header
matches, sending the cohort to the canary (a more specific match wins whatever the rule order).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from controller import errors, ports
from controller.adapters.traffic import routes, services
from controller.resources import modelrelease


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
        header = routes.header_rule_name(release)
        rules = [
            rule
            for rule in route.get("spec", {}).get("rules", []) or []
            if rule.get("name") != header
            and any(ref.get("name") in ours for ref in rule.get("backendRefs", []) or [])
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

    def read_mirror(self, route: dict[str, Any], release: ports.ReleaseRef) -> int:
        for entry in self._rules(route, release)[0].get("filters") or []:
            if _our_mirror(entry, release):
                mirror = entry["requestMirror"]
                if "percent" in mirror:
                    return int(mirror["percent"])
                if "fraction" in mirror:
                    fraction = mirror["fraction"]
                    return round(100 * int(fraction["numerator"]) / int(fraction.get("denominator", 100)))
                return 100
        return 0

    def write_mirror(self, route: dict[str, Any], release: ports.ReleaseRef, percent: int) -> None:
        port = services.service_port(release)
        canary = services.canary_service(release.name)
        for rule in self._rules(route, release):
            filters = [f for f in rule.get("filters") or [] if not _our_mirror(f, release)]
            if percent:
                mirror = {"backendRef": {"name": canary, "port": port}, "percent": percent}
                filters.append({"type": "RequestMirror", "requestMirror": mirror})
            if filters:
                rule["filters"] = filters
            else:
                rule.pop("filters", None)

    def header_rule(self, route: dict[str, Any], release: ports.ReleaseRef) -> dict[str, Any] | None:
        return routes.named_rule(route.get("spec", {}).get("rules") or [], release)

    def write_header_rule(
        self, route: dict[str, Any], release: ports.ReleaseRef, header: modelrelease.SetHeaderRoute | None
    ) -> None:
        name = routes.header_rule_name(release)
        base = self._rules(route, release)[0]
        rules = [r for r in route["spec"]["rules"] if r.get("name") != name]
        if header is not None:
            port = services.service_port(release)
            extra = [_header_match(m) for m in header.match]
            matches = [
                {**m, "headers": [*(m.get("headers") or []), *extra]} for m in base.get("matches") or [{}]
            ]
            refs = [
                _service_ref(service, port, weight)
                for service, weight in routes.cohort_split(release, header.weight)
            ]
            rules.insert(rules.index(base) + 1, {"name": name, "matches": matches, "backendRefs": refs})
        route["spec"]["rules"] = rules


def _service_ref(name: str, port: int, weight: int) -> dict[str, Any]:
    """A backendRef to a Service, with the `group` and `kind` the API server would default: the rule
    then reads back exactly as written, which is how a header route is known to be in force."""
    return {"group": "", "kind": "Service", "name": name, "port": port, "weight": weight}


def _our_mirror(entry: dict[str, Any], release: ports.ReleaseRef) -> bool:
    backend = (entry.get("requestMirror") or {}).get("backendRef") or {}
    return entry.get("type") == "RequestMirror" and backend.get("name") == services.canary_service(
        release.name
    )


def _header_match(match: modelrelease.HeaderMatch) -> dict[str, str]:
    """HTTPRoute header matches are Exact or RegularExpression; a prefix is a regex, a cookie a regex
    over the Cookie header."""
    if match.cookie is not None:
        return {"type": "RegularExpression", "name": "Cookie", "value": cookie_regex(match)}
    assert match.header is not None
    if match.exact is not None:
        return {"type": "Exact", "name": match.header, "value": match.exact}
    if match.prefix is not None:
        return {"type": "RegularExpression", "name": match.header, "value": "^" + re.escape(match.prefix)}
    return {"type": "RegularExpression", "name": match.header, "value": str(match.regex)}


def cookie_regex(match: modelrelease.HeaderMatch) -> str:
    """A Cookie header holding `name=value` among its pairs, the value matched as the step says."""
    if match.exact is not None:
        value = re.escape(match.exact) + "(;|$)"
    elif match.prefix is not None:
        value = re.escape(match.prefix)
    else:
        value = f"(?:{match.regex})"
    return rf"(^|;\s*){re.escape(str(match.cookie))}={value}"
