"""The fleet's data plane: which pod gets what share of a release's requests.

Read from the cluster's objects exactly as a real data plane would route: a request for a release
enters through the HTTPRoute rule or the VirtualService http route that points at the release's
Services (weights between backends), else through the release's production Service; a Service
spreads its share evenly over the Ready pods its selector matches. A rule whose every match asks
for headers serves a cohort: it gets the share of requests that carry them (`cohort_share`, the
scenario's), the release's main rule the rest. A main rule's mirror (Gateway API `RequestMirror`
with `percent`, Istio `mirror` with `mirrorPercentage`) copies that share of its requests to the
mirror's Service (`mirror_shares`). A pod that is not Ready gets
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
    production: str,
    services: frozenset[str],
    routes: Sequence[Obj],
    virtual_services: Sequence[Obj],
    cohort_share: float = 0.0,
) -> list[Backend]:
    """Where a request for the release goes first: a route that weights its Services, else its Service;
    with a cohort rule, `cohort_share` of the requests go its way."""
    main = _main_backends(services, routes, virtual_services)
    if main is None:
        return [Backend(production, 1.0)]
    cohort = _cohort_backends(services, routes, virtual_services)
    if cohort is None or cohort_share <= 0:
        return main
    return [Backend(b.service, b.weight * (1 - cohort_share)) for b in main] + [
        Backend(b.service, b.weight * cohort_share) for b in cohort
    ]


def _main_backends(
    services: frozenset[str], routes: Sequence[Obj], virtual_services: Sequence[Obj]
) -> list[Backend] | None:
    for route in routes:
        found = route_backends(route, services)
        if found is not None:
            return found
    for virtual_service in virtual_services:
        found = virtual_service_backends(virtual_service, services)
        if found is not None:
            return found
    return None


def _cohort_backends(
    services: frozenset[str], routes: Sequence[Obj], virtual_services: Sequence[Obj]
) -> list[Backend] | None:
    for route in routes:
        for rule in (route.get("spec") or {}).get("rules") or []:
            refs = rule.get("backendRefs") or []
            if only_for_a_cohort(rule.get("matches") or []) and any(r.get("name") in services for r in refs):
                return _weighted([(str(r.get("name")), float(r.get("weight", 1))) for r in refs])
    for virtual_service in virtual_services:
        for http in (virtual_service.get("spec") or {}).get("http") or []:
            destinations = http.get("route") or []
            hosts = [str((d.get("destination") or {}).get("host", "")).split(".")[0] for d in destinations]
            if only_for_a_cohort(http.get("match") or []) and any(h in services for h in hosts):
                weights = [float(d.get("weight", 100 if len(destinations) == 1 else 0)) for d in destinations]
                return _weighted(list(zip(hosts, weights, strict=True)))
    return None


def mirror_backend(
    services: frozenset[str], routes: Sequence[Obj], virtual_services: Sequence[Obj]
) -> Backend | None:
    """The Service the release's main rule mirrors to, with the share of requests copied."""
    for route in routes:
        for rule in (route.get("spec") or {}).get("rules") or []:
            refs = rule.get("backendRefs") or []
            if only_for_a_cohort(rule.get("matches") or []) or not any(
                r.get("name") in services for r in refs
            ):
                continue
            for entry in rule.get("filters") or []:
                mirror = entry.get("requestMirror") or {}
                if entry.get("type") == "RequestMirror" and mirror.get("backendRef"):
                    return Backend(str(mirror["backendRef"].get("name")), _mirrored(mirror))
            return None
    for virtual_service in virtual_services:
        for http in (virtual_service.get("spec") or {}).get("http") or []:
            destinations = http.get("route") or []
            hosts = [str((d.get("destination") or {}).get("host", "")).split(".")[0] for d in destinations]
            if only_for_a_cohort(http.get("match") or []) or not any(h in services for h in hosts):
                continue
            mirror = http.get("mirror") or {}
            if not mirror.get("host"):
                return None
            percent = float((http.get("mirrorPercentage") or {}).get("value", 100.0))
            return Backend(str(mirror["host"]).split(".")[0], percent / 100)
    return None


def _mirrored(mirror: Obj) -> float:
    if "percent" in mirror:
        return float(mirror["percent"]) / 100
    if "fraction" in mirror:
        fraction = mirror["fraction"]
        return float(fraction["numerator"]) / float(fraction.get("denominator", 100))
    return 1.0


def pod_shares(
    production: str,
    services: Sequence[Obj],
    pods: Sequence[Obj],
    routes: Sequence[Obj] = (),
    virtual_services: Sequence[Obj] = (),
    cohort_share: float = 0.0,
) -> dict[str, float]:
    """Share of the release's requests each Ready pod serves (pods by name; the total is ≤ 1)."""
    by_name = {s["metadata"]["name"]: s for s in services}
    backends = entry_backends(production, frozenset(by_name), routes, virtual_services, cohort_share)
    return _spread(backends, by_name, pods)


def mirror_shares(
    services: Sequence[Obj],
    pods: Sequence[Obj],
    routes: Sequence[Obj] = (),
    virtual_services: Sequence[Obj] = (),
) -> dict[str, float]:
    """Share of the release's requests each Ready pod receives as mirrored copies (answers discarded)."""
    by_name = {s["metadata"]["name"]: s for s in services}
    mirror = mirror_backend(frozenset(by_name), routes, virtual_services)
    return _spread([mirror], by_name, pods) if mirror is not None else {}


def _spread(backends: Sequence[Backend], by_name: Mapping[str, Obj], pods: Sequence[Obj]) -> dict[str, float]:
    shares: dict[str, float] = {}
    for backend in backends:
        service = by_name.get(backend.service)
        if service is None:
            continue
        serving = [p for p in pods if is_ready(p) and selects(service, p)]
        for pod in serving:
            name = pod["metadata"]["name"]
            shares[name] = shares.get(name, 0.0) + backend.weight / len(serving)
    return shares
