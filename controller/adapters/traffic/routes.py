"""What the Gateway API and Istio routers share: weights live in a route object the user owns.

Only the backends modelrelease owns (the release's three Services) are rewritten; every other
backend, rule, match and filter of the route is left as the user wrote it. Each write carries the
route's resourceVersion, so an edit made meanwhile is refused (a conflict, retried on fresh data)
instead of overwritten.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from controller import errors, ports
from controller.adapters import kubeapi, labels
from controller.adapters.traffic import services
from controller.domain import actions, naming, observations


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
            # Moving a track Service to another revision while it carries weight would shift live
            # traffic: take its weight away first.
            route = self.fetch_route(release)
            if self.read_weights(route, release) not in (None, (100, 0)):
                self._patch_route(release, self.write_weights(route, release, 100, 0))
            self._services.ensure_tracks(release, action)
        self._services.ensure(
            release,
            services.production_service(release.name),
            {labels.RELEASE: naming.release_label(release.name)},
            {},
        )
        route = self.fetch_route(release)
        self._patch_route(release, self.write_weights(route, release, stable_weight, canary_weight))

    def _patch_route(self, release: ports.ReleaseRef, route: dict[str, Any]) -> None:
        patch = {"metadata": {"resourceVersion": route["metadata"]["resourceVersion"]}, "spec": route["spec"]}
        self._api.merge_patch(self._path(release.namespace, route["metadata"]["name"]), patch)


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
