"""The three Services of a release, and the names every router refers to them by."""

from __future__ import annotations

from typing import Any

from controller import errors, ports
from controller.adapters import kubeapi, labels, workloads
from controller.domain import actions, naming, observations

DEFAULT_PORT = 8080


def service_port(release: ports.ReleaseRef) -> int:
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


def ours(release: str) -> frozenset[str]:
    return frozenset({production_service(release), stable_service(release), canary_service(release)})


def build_weight_annotations(action: actions.SetTrafficWeight) -> dict[str, str | None]:
    return {
        labels.STABLE_REVISION: action.stable_revision,
        labels.CANARY_REVISION: action.canary_revision,
        labels.CANARY_WEIGHT: str(action.canary_weight),
    }


def read_weight_annotations(annotations: dict[str, str]) -> observations.Traffic | None:
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
            port = service_port(release)
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
        release_label = naming.release_label(release.name)
        self.ensure(
            release,
            stable_service(release.name),
            {labels.RELEASE: release_label, labels.REVISION: action.stable_revision},
            {},
        )
        canary = action.canary_revision or action.stable_revision
        self.ensure(
            release,
            canary_service(release.name),
            {labels.RELEASE: release_label, labels.REVISION: canary},
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
