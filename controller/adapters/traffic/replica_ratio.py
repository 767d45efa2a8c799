"""The default router: one production Service over both tracks; the canary's share follows its
share of Ready pods. The weight the engine set is kept in the Service's annotations."""

from __future__ import annotations

from controller import ports
from controller.adapters import kubeapi, labels
from controller.adapters.traffic import services
from controller.domain import actions, naming, observations


def build_selector(release: str, action: actions.SetTrafficWeight) -> dict[str, str]:
    """Whom the production Service selects for this weight: one revision at 0 or 100 %, else both."""
    selector = {labels.RELEASE: naming.release_label(release)}
    if action.canary_revision is None or action.canary_weight == 0:
        selector[labels.REVISION] = action.stable_revision
    elif action.canary_weight == 100:
        selector[labels.REVISION] = action.canary_revision
    return selector


class ReplicaRatioRouter:
    def __init__(self, api: kubeapi.KubeApi) -> None:
        self._services = services.Services(api)

    def fetch_traffic(self, release: ports.ReleaseRef) -> observations.Traffic | None:
        service = self._services.fetch(release, services.production_service(release.name))
        if service is None:
            return None
        return services.read_weight_annotations(service["metadata"].get("annotations") or {})

    def apply_weight(self, release: ports.ReleaseRef, action: actions.SetTrafficWeight) -> None:
        self._services.ensure(
            release,
            services.production_service(release.name),
            build_selector(release.name, action),
            services.build_weight_annotations(action),
        )
