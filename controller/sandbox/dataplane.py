"""The sandbox's data plane: which pod gets what share of a release's requests.

Read from the emulated cluster exactly as a real data plane would route: a request for a release
enters through the HTTPRoute rule or the VirtualService http route that points at the release's
Services (weights between backends), else through the release's production Service; a Service
spreads its share evenly over the Ready pods its selector matches. A pod that is not Ready gets
nothing; a Service that selects no Ready pod drops its share (as a real Service would fail those
requests), which the shares show as a total below 1.

Pure: objects in, shares out. The fleet that turns shares into per-pod metrics builds on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

Obj = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Backend:
    service: str
    weight: float


def is_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def selects(service: Obj, pod: Obj) -> bool:
    selector = (service.get("spec") or {}).get("selector") or {}
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def _weighted(pairs: Sequence[tuple[str, float]]) -> list[Backend]:
    total = sum(weight for _, weight in pairs)
    return [Backend(name, weight / total) for name, weight in pairs if weight > 0] if total > 0 else []


def only_for_a_cohort(matches: Sequence[Obj]) -> bool:
    """A rule every match of which asks for headers serves a cohort, not the release's requests at
    large (the fleet's requests carry no such headers)."""
    return bool(matches) and all(m.get("headers") for m in matches)


def route_backends(route: Obj, services: frozenset[str]) -> list[Backend] | None:
    """The first HTTPRoute rule whose backendRefs name one of `services`, as shares (None: no such rule)."""
    for rule in (route.get("spec") or {}).get("rules") or []:
        if only_for_a_cohort(rule.get("matches") or []):
            continue
        refs = rule.get("backendRefs") or []
        if any(ref.get("name") in services for ref in refs):
            return _weighted([(str(ref.get("name")), float(ref.get("weight", 1))) for ref in refs])
    return None


def virtual_service_backends(virtual_service: Obj, services: frozenset[str]) -> list[Backend] | None:
    """The first http route whose destinations name one of `services` (short host), as shares."""
    for http in (virtual_service.get("spec") or {}).get("http") or []:
        if only_for_a_cohort(http.get("match") or []):
            continue
        destinations = http.get("route") or []
        hosts = [str((d.get("destination") or {}).get("host", "")).split(".")[0] for d in destinations]
        if any(host in services for host in hosts):
            weights = [float(d.get("weight", 100 if len(destinations) == 1 else 0)) for d in destinations]
            return _weighted(list(zip(hosts, weights, strict=True)))
    return None


def entry_backends(
    production: str, services: frozenset[str], routes: Sequence[Obj], virtual_services: Sequence[Obj]
) -> list[Backend]:
    """Where a request for the release goes first: a route that weights its Services, else its Service."""
    for route in routes:
        found = route_backends(route, services)
        if found is not None:
            return found
    for virtual_service in virtual_services:
        found = virtual_service_backends(virtual_service, services)
        if found is not None:
            return found
    return [Backend(production, 1.0)]


def pod_shares(
    production: str,
    services: Sequence[Obj],
    pods: Sequence[Obj],
    routes: Sequence[Obj] = (),
    virtual_services: Sequence[Obj] = (),
) -> dict[str, float]:
    """Share of the release's requests each Ready pod serves (pods by name; the total is ≤ 1)."""
    by_name = {s["metadata"]["name"]: s for s in services}
    shares: dict[str, float] = {}
    for backend in entry_backends(production, frozenset(by_name), routes, virtual_services):
        service = by_name.get(backend.service)
        if service is None:
            continue
        serving = [p for p in pods if is_ready(p) and selects(service, p)]
        for pod in serving:
            name = pod["metadata"]["name"]
            shares[name] = shares.get(name, 0.0) + backend.weight / len(serving)
    return shares
