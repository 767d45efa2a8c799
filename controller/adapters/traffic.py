"""Traffic routers: where the canary's share of production traffic is set and read back.

Every router keeps three Services per release, created on first use: `<release>` (production:
what clients call), `<release>-stable` and `<release>-canary` (one revision each; the canary one
also serves a blue-green preview). The replica-ratio router moves the production Service's
selector; the Gateway API and Istio routers move backend weights on a user-owned route and never
touch the production Service's selector after creating it.
"""

from __future__ import annotations

import copy
from typing import Any

from controller import errors, ports
from controller.adapters import kubeapi, labels, workloads
from controller.domain import actions, naming, observations

DEFAULT_PORT = 8080


def _service_port(release: ports.ReleaseRef) -> int:
    for port in release.spec.serving.ports:
        if isinstance(port, dict) and "containerPort" in port:
            return int(port["containerPort"])
    return DEFAULT_PORT


def production_service(release: str) -> str:
    """What clients call: the release's own name, when that is a valid Service name."""
    return naming.service_name(release)


def stable_service(release: str) -> str:
    return naming.service_name(release, "-stable")


def canary_service(release: str) -> str:
    return naming.service_name(release, "-canary")


def build_selector(release: str, action: actions.SetTrafficWeight) -> dict[str, str]:
    """Replica-ratio routing: whom the production Service selects for this weight."""
    selector = {labels.RELEASE: naming.release_label(release)}
    if action.canary_revision is None or action.canary_weight == 0:
        selector[labels.REVISION] = action.stable_revision
    elif action.canary_weight == 100:
        selector[labels.REVISION] = action.canary_revision
    return selector


def _weight_annotations(action: actions.SetTrafficWeight) -> dict[str, str | None]:
    return {
        labels.STABLE_REVISION: action.stable_revision,
        labels.CANARY_REVISION: action.canary_revision,
        labels.CANARY_WEIGHT: str(action.canary_weight),
    }


def _traffic_from(annotations: dict[str, str]) -> observations.Traffic | None:
    stable = annotations.get(labels.STABLE_REVISION)
    if stable is None:
        return None
    return observations.Traffic(
        stable_revision=stable,
        canary_revision=annotations.get(labels.CANARY_REVISION),
        canary_weight=int(annotations.get(labels.CANARY_WEIGHT, "0")),
    )


class Services:
    """The three Services of a release; selectors of the per-track ones follow the revisions."""

    def __init__(self, api: kubeapi.KubeApi) -> None:
        self._api = api

    def path(self, namespace: str, name: str | None = None) -> str:
        return kubeapi.build_path("v1", "services", namespace, name)

    def fetch(self, release: ports.ReleaseRef, name: str) -> dict[str, Any] | None:
        try:
            return self._api.get(self.path(release.namespace, name))
        except errors.NotFoundError:
            return None

    def ensure(
        self,
        release: ports.ReleaseRef,
        name: str,
        selector: dict[str, str],
        annotations: dict[str, str | None],
    ) -> None:
        """The Service exists with this selector and these annotations (one write at most)."""
        current = self.fetch(release, name)
        present = {k: v for k, v in annotations.items() if v is not None}
        if current is None:
            port = _service_port(release)
            body = {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": name,
                    "namespace": release.namespace,
                    "labels": {
                        labels.RELEASE: naming.release_label(release.name),
                        labels.MANAGED_BY: labels.MANAGER,
                    },
                    "annotations": present,
                    "ownerReferences": [workloads.owner_reference(release)],
                },
                "spec": {"selector": selector, "ports": [{"name": "http", "port": port, "targetPort": port}]},
            }
            try:
                self._api.create(self.path(release.namespace), body)
                return
            except errors.ConflictError:
                current = self.fetch(release, name)
                if current is None:
                    raise errors.ConflictError(f"Service {name} appeared and vanished; retrying") from None
        old_annotations = current["metadata"].get("annotations") or {}
        same_annotations = all(old_annotations.get(k) == v for k, v in annotations.items())
        if current["spec"].get("selector") == selector and same_annotations:
            return
        patch: dict[str, Any] = {
            "metadata": {
                "annotations": annotations,
                "resourceVersion": current["metadata"]["resourceVersion"],
            },
            # merge-patch merges maps: keys that must go are sent as null
            "spec": {"selector": {**dict.fromkeys(current["spec"].get("selector") or {}), **selector}},
        }
        self._api.merge_patch(self.path(release.namespace, name), patch)

    def ensure_tracks(self, release: ports.ReleaseRef, action: actions.SetTrafficWeight) -> None:
        self.ensure(
            release,
            stable_service(release.name),
            {labels.RELEASE: naming.release_label(release.name), labels.REVISION: action.stable_revision},
            {},
        )
        canary = action.canary_revision or action.stable_revision
        self.ensure(
            release,
            canary_service(release.name),
            {labels.RELEASE: naming.release_label(release.name), labels.REVISION: canary},
            {},
        )

    def fetch_track_revisions(self, release: ports.ReleaseRef) -> tuple[str | None, str | None]:
        found = []
        for name in (stable_service(release.name), canary_service(release.name)):
            service = self.fetch(release, name)
            found.append(
                None if service is None else (service["spec"].get("selector") or {}).get(labels.REVISION)
            )
        return found[0], found[1]


class ReplicaRatioRouter:
    """One production Service over both tracks; the canary's share follows its share of Ready pods."""

    def __init__(self, api: kubeapi.KubeApi) -> None:
        self._services = Services(api)

    def fetch_traffic(self, release: ports.ReleaseRef) -> observations.Traffic | None:
        service = self._services.fetch(release, production_service(release.name))
        if service is None:
            return None
        return _traffic_from(service["metadata"].get("annotations") or {})

    def apply_weight(self, release: ports.ReleaseRef, action: actions.SetTrafficWeight) -> None:
        self._services.ensure(
            release,
            production_service(release.name),
            build_selector(release.name, action),
            _weight_annotations(action),
        )


class _RouteRouter:
    """Shared by the Gateway API and Istio routers: weights live in a user-owned route object."""

    api_version = ""
    plural = ""
    kind = ""

    def __init__(self, api: kubeapi.KubeApi) -> None:
        self._api = api
        self._services = Services(api)

    def route_name(self, release: ports.ReleaseRef) -> str:
        raise NotImplementedError

    def read_weights(self, route: dict[str, Any], release: ports.ReleaseRef) -> tuple[int, int] | None:
        raise NotImplementedError

    def write_weights(
        self, route: dict[str, Any], release: ports.ReleaseRef, stable: int, canary: int
    ) -> dict[str, Any]:
        raise NotImplementedError

    def _fetch_route(self, release: ports.ReleaseRef) -> dict[str, Any]:
        name = self.route_name(release)
        try:
            return self._api.get(kubeapi.build_path(self.api_version, self.plural, release.namespace, name))
        except errors.NotFoundError:
            raise errors.NotFoundError(
                f"{self.kind} {release.namespace}/{name} named in spec.trafficRouting does not exist"
            ) from None

    def fetch_traffic(self, release: ports.ReleaseRef) -> observations.Traffic | None:
        route = self._fetch_route(release)
        weights = self.read_weights(route, release)
        stable_revision, canary_revision = self._services.fetch_track_revisions(release)
        if weights is None or stable_revision is None:
            return None
        canary_weight = round(100 * weights[1] / max(sum(weights), 1))
        canary = canary_revision if canary_revision != stable_revision else None
        return observations.Traffic(
            stable_revision=stable_revision,
            canary_revision=canary,
            canary_weight=canary_weight if canary else 0,
        )

    def apply_weight(self, release: ports.ReleaseRef, action: actions.SetTrafficWeight) -> None:
        if self.fetch_traffic(release) == observations.Traffic(
            stable_revision=action.stable_revision,
            canary_revision=action.canary_revision,
            canary_weight=action.canary_weight if action.canary_revision else 0,
        ):
            return
        # Services first: a weight must never point at a Service selecting the wrong revision.
        stable_weight = 100 - action.canary_weight if action.canary_revision else 100
        canary_weight = 100 - stable_weight
        current_stable, current_canary = self._services.fetch_track_revisions(release)
        if (
            current_canary != (action.canary_revision or action.stable_revision)
            or current_stable != action.stable_revision
        ):
            # Moving a track Service to another revision while it carries weight would shift live traffic:
            # take its weight away first.
            route = self._fetch_route(release)
            if self.read_weights(route, release) not in (None, (100, 0)):
                self._patch_route(release, self.write_weights(route, release, 100, 0))
            self._services.ensure_tracks(release, action)
        self._services.ensure(
            release,
            production_service(release.name),
            {labels.RELEASE: naming.release_label(release.name)},
            {},
        )
        route = self._fetch_route(release)
        self._patch_route(release, self.write_weights(route, release, stable_weight, canary_weight))

    def _patch_route(self, release: ports.ReleaseRef, route: dict[str, Any]) -> None:
        patch = {"metadata": {"resourceVersion": route["metadata"]["resourceVersion"]}, "spec": route["spec"]}
        self._api.merge_patch(
            kubeapi.build_path(self.api_version, self.plural, release.namespace, route["metadata"]["name"]),
            patch,
        )


class GatewayApiRouter(_RouteRouter):
    api_version = "gateway.networking.k8s.io/v1"
    plural = "httproutes"
    kind = "HTTPRoute"

    def route_name(self, release: ports.ReleaseRef) -> str:
        routing = release.spec.traffic_routing.gateway_api
        assert routing is not None
        return routing.http_route

    def _rules(self, route: dict[str, Any], release: ports.ReleaseRef) -> list[dict[str, Any]]:
        ours = {production_service(release.name), stable_service(release.name), canary_service(release.name)}
        rules = [
            rule
            for rule in route.get("spec", {}).get("rules", []) or []
            if any(ref.get("name") in ours for ref in rule.get("backendRefs", []) or [])
        ]
        if not rules:
            raise errors.InvalidError(
                f"HTTPRoute {route['metadata']['name']}: no rule has a backendRef to "
                f"{production_service(release.name)}, "
                f"{stable_service(release.name)} or {canary_service(release.name)}"
            )
        return rules

    def read_weights(self, route: dict[str, Any], release: ports.ReleaseRef) -> tuple[int, int] | None:
        refs = {
            ref.get("name"): int(ref.get("weight", 1))
            for ref in self._rules(route, release)[0]["backendRefs"]
        }
        if stable_service(release.name) not in refs:
            return None
        return refs.get(stable_service(release.name), 0), refs.get(canary_service(release.name), 0)

    def write_weights(
        self, route: dict[str, Any], release: ports.ReleaseRef, stable: int, canary: int
    ) -> dict[str, Any]:
        route = copy.deepcopy(route)
        port = _service_port(release)
        for rule in self._rules(route, release):
            rule["backendRefs"] = [
                {"name": stable_service(release.name), "port": port, "weight": stable},
                {"name": canary_service(release.name), "port": port, "weight": canary},
            ]
        return route


class IstioRouter(_RouteRouter):
    api_version = "networking.istio.io/v1"
    plural = "virtualservices"
    kind = "VirtualService"

    def route_name(self, release: ports.ReleaseRef) -> str:
        routing = release.spec.traffic_routing.istio
        assert routing is not None
        return routing.virtual_service

    def _http_route(self, route: dict[str, Any], release: ports.ReleaseRef) -> dict[str, Any]:
        routing = release.spec.traffic_routing.istio
        assert routing is not None
        http = route.get("spec", {}).get("http", []) or []
        chosen = [h for h in http if routing.route is None or h.get("name") == routing.route]
        if not chosen:
            wanted = f"an http route named {routing.route!r}" if routing.route else "any http route"
            raise errors.InvalidError(f"VirtualService {route['metadata']['name']} has no {wanted}")
        return dict(chosen[0])

    def read_weights(self, route: dict[str, Any], release: ports.ReleaseRef) -> tuple[int, int] | None:
        destinations = {
            (d.get("destination") or {}).get("host", "").split(".")[0]: int(d.get("weight", 100))
            for d in self._http_route(route, release).get("route", []) or []
        }
        if stable_service(release.name) not in destinations:
            return None
        return destinations.get(stable_service(release.name), 0), destinations.get(
            canary_service(release.name), 0
        )

    def write_weights(
        self, route: dict[str, Any], release: ports.ReleaseRef, stable: int, canary: int
    ) -> dict[str, Any]:
        route = copy.deepcopy(route)
        target = self._http_route(route, release)
        for http in route["spec"]["http"]:
            if http.get("name") == target.get("name") and http.get("route") == target.get("route"):
                http["route"] = [
                    {"destination": {"host": stable_service(release.name)}, "weight": stable},
                    {"destination": {"host": canary_service(release.name)}, "weight": canary},
                ]
                break
        return route


def build_router(api: kubeapi.KubeApi, release: ports.ReleaseRef) -> ports.TrafficRouter:
    routing = release.spec.traffic_routing
    if routing.gateway_api is not None:
        return GatewayApiRouter(api)
    if routing.istio is not None:
        return IstioRouter(api)
    return ReplicaRatioRouter(api)
