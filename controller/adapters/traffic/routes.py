"""What the Gateway API and Istio routers share: weights live in a route object the user owns.

Only the backends modelrelease owns (the release's three Services), the mirror to its canary and
the one header-route rule it adds are rewritten; every other backend, rule, match and filter of the
route is left as the user wrote it. The header route in force is also kept, as modelrelease wrote it,
in the route's `modelrelease.dev/header-routes` annotation (the rule itself cannot say whether a
regex came from a prefix or a cookie); it counts only while the rule is still exactly as written.
Each write carries the route's resourceVersion, so an edit made meanwhile is refused (a conflict,
retried on fresh data) instead of overwritten.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable
from typing import Any

import pydantic

from controller import errors, ports
from controller.adapters import kubeapi, labels
from controller.adapters.traffic import services
from controller.domain import actions, naming, observations
from controller.resources import meta, modelrelease

HEADER_ROUTES = f"{meta.GROUP}/header-routes"  # JSON: release name → the SetHeaderRoute in force


class RouteRouter(abc.ABC):
    api_version = ""
    plural = ""
    kind = ""

    def __init__(self, api: kubeapi.KubeApi) -> None:
        self._api = api
        self._services = services.Services(api)

    @abc.abstractmethod
    def route_name(self, release: ports.ReleaseRef) -> str: ...

    @abc.abstractmethod
    def read_weights(self, route: dict[str, Any], release: ports.ReleaseRef) -> tuple[int, int] | None:
        """(stable, canary) backend weights, or None while the route does not name the stable Service."""

    @abc.abstractmethod
    def write_weights(
        self, route: dict[str, Any], release: ports.ReleaseRef, stable: int, canary: int
    ) -> dict[str, Any]:
        """A copy of `route` with our backends at these weights and everything else unchanged."""

    @abc.abstractmethod
    def read_mirror(self, route: dict[str, Any], release: ports.ReleaseRef) -> int:
        """Percent of the stable's requests mirrored to the canary (0: no mirror of ours)."""

    @abc.abstractmethod
    def write_mirror(self, route: dict[str, Any], release: ports.ReleaseRef, percent: int) -> None:
        """Set (or with 0 remove) our mirror to the canary, in place."""

    @abc.abstractmethod
    def header_rule(self, route: dict[str, Any], release: ports.ReleaseRef) -> dict[str, Any] | None:
        """Our header-route rule as it is in the route, None when there is none."""

    @abc.abstractmethod
    def write_header_rule(
        self, route: dict[str, Any], release: ports.ReleaseRef, header: modelrelease.SetHeaderRoute | None
    ) -> None:
        """Put (or with None remove) our header-route rule, in place."""

    def read_header_route(
        self, route: dict[str, Any], release: ports.ReleaseRef
    ) -> modelrelease.SetHeaderRoute | None:
        written = _header_routes(route).get(release.name)
        if written is None:
            return None
        try:
            header = modelrelease.SetHeaderRoute.model_validate(written)
        except pydantic.ValidationError:
            return None
        probe = {"spec": json.loads(json.dumps(route.get("spec", {})))}
        self.write_header_rule(probe, release, header)
        # In force only while the rule is exactly what writing it again would make.
        return header if self.header_rule(route, release) == self.header_rule(probe, release) else None

    def _path(self, namespace: str, name: str) -> str:
        return kubeapi.build_path(self.api_version, self.plural, namespace, name)

    def fetch_route(self, release: ports.ReleaseRef) -> dict[str, Any]:
        name = self.route_name(release)
        try:
            return self._api.get(self._path(release.namespace, name))
        except errors.NotFoundError:
            raise errors.NotFoundError(
                f"{self.kind} {release.namespace}/{name} named in spec.trafficRouting does not exist"
            ) from None

    def fetch_traffic(self, release: ports.ReleaseRef) -> observations.Traffic | None:
        route = self.fetch_route(release)
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
            mirror_percent=self.read_mirror(route, release) if canary else 0,
            header_route=self.read_header_route(route, release) if canary else None,
        )

    def apply_weight(self, release: ports.ReleaseRef, action: actions.SetTrafficWeight) -> None:
        canary = action.canary_revision
        wanted = observations.Traffic(
            stable_revision=action.stable_revision,
            canary_revision=canary,
            canary_weight=action.canary_weight if canary else 0,
            mirror_percent=action.mirror_percent if canary else 0,
            header_route=action.header_route if canary else None,
        )
        if self.fetch_traffic(release) == wanted:
            return
        # Services first: a weight must never point at a Service selecting the wrong revision.
        stable_weight = 100 - action.canary_weight if action.canary_revision else 100
        canary_weight = 100 - stable_weight
        current_stable, current_canary = self._services.fetch_track_revisions(release)
        if (
            current_canary != (action.canary_revision or action.stable_revision)
            or current_stable != action.stable_revision
        ):
            # Moving a track Service to another revision while it carries weight would shift live
            # traffic: take its weight away first.
            route = self.fetch_route(release)
            if self.read_weights(route, release) not in (None, (100, 0)) or self._reaches_canary(
                route, release
            ):
                quiet = self.write_weights(route, release, 100, 0)
                self._write_routes(quiet, release, 0, None)
                self._patch_route(release, quiet)
            self._services.ensure_tracks(release, action)
        # The production Service (what in-cluster clients may call past the route) selects the stable
        # revision only: only the route, which the judge's weights govern, ever reaches a canary.
        self._services.ensure(
            release,
            services.production_service(release.name),
            {labels.RELEASE: naming.release_label(release.name), labels.REVISION: action.stable_revision},
            {},
        )
        route = self.write_weights(self.fetch_route(release), release, stable_weight, canary_weight)
        self._write_routes(route, release, wanted.mirror_percent, wanted.header_route)
        self._patch_route(release, route)

    def _reaches_canary(self, route: dict[str, Any], release: ports.ReleaseRef) -> bool:
        return bool(self.read_mirror(route, release)) or self.header_rule(route, release) is not None

    def _write_routes(
        self,
        route: dict[str, Any],
        release: ports.ReleaseRef,
        mirror: int,
        header: modelrelease.SetHeaderRoute | None,
    ) -> None:
        """Our mirror and header rule into `route` (in place), and the header route's annotation."""
        self.write_mirror(route, release, mirror)
        self.write_header_rule(route, release, header)
        written = _header_routes(route)
        if header is None:
            written.pop(release.name, None)
        else:
            written[release.name] = header.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        annotations = route.setdefault("metadata", {}).setdefault("annotations", {}) or {}
        annotations[HEADER_ROUTES] = json.dumps(written, sort_keys=True) if written else None
        route["metadata"]["annotations"] = annotations

    def _patch_route(self, release: ports.ReleaseRef, route: dict[str, Any]) -> None:
        metadata: dict[str, Any] = {"resourceVersion": route["metadata"]["resourceVersion"]}
        if HEADER_ROUTES in (route["metadata"].get("annotations") or {}):
            metadata["annotations"] = {HEADER_ROUTES: route["metadata"]["annotations"][HEADER_ROUTES]}
        patch = {"metadata": metadata, "spec": route["spec"]}
        self._api.merge_patch(self._path(release.namespace, route["metadata"]["name"]), patch)


def _header_routes(route: dict[str, Any]) -> dict[str, Any]:
    """The header routes modelrelease wrote into this route, by release (a broken value: none)."""
    text = (route.get("metadata", {}).get("annotations") or {}).get(HEADER_ROUTES)
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def header_rule_name(release: ports.ReleaseRef) -> str:
    """The name of the one rule (Gateway API) or http route (Istio) modelrelease adds for a cohort."""
    return f"modelrelease-{naming.release_label(release.name)}-header"[:63]


def named_rule(rules: list[dict[str, Any]], release: ports.ReleaseRef) -> dict[str, Any] | None:
    """The cohort rule modelrelease added to a route's rules (HTTPRoute rules, Istio http routes)."""
    name = header_rule_name(release)
    return next((rule for rule in rules if rule.get("name") == name), None)


def cohort_split(release: ports.ReleaseRef, weight: int) -> list[tuple[str, int]]:
    """Where a header cohort's requests go: (Service, weight) for the canary, and stable's remainder."""
    split = [(services.canary_service(release.name), weight)]
    if weight < 100:
        split.append((services.stable_service(release.name), 100 - weight))
    return split


def stable_and_canary(weights: dict[str, int], release: ports.ReleaseRef) -> tuple[int, int] | None:
    """The (stable, canary) weights among a route's backends by Service name; None before we routed."""
    stable, canary = services.stable_service(release.name), services.canary_service(release.name)
    if stable not in weights:
        return None
    return weights[stable], weights.get(canary, 0)


def replace_ours(
    entries: list[dict[str, Any]],
    is_ours: Callable[[dict[str, Any]], bool],
    build: Callable[[dict[str, Any]], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """`entries` with our entries replaced, where the first of them stood, by `build(template)`;
    the others kept in place. `template` is the first of ours (its extra fields are kept)."""
    mine = [entry for entry in entries if is_ours(entry)]
    if not mine:
        return list(entries)
    position = entries.index(mine[0])
    others = [entry for entry in entries if not is_ours(entry)]
    return others[:position] + build(mine[0]) + others[position:]
