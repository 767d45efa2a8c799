"""The ModelRelease objects: read whole, and their status merge-patched under a resourceVersion."""

from __future__ import annotations

from typing import Any

from controller.adapters import kubeapi
from controller.resources import meta


def release_path(namespace: str, name: str, sub: str | None = None) -> str:
    return kubeapi.build_path(meta.API_VERSION, "modelreleases", namespace, name, sub)


class KubeReleases:
    def __init__(self, api: kubeapi.KubeApi) -> None:
        self._api = api

    def fetch_release(self, namespace: str, name: str) -> dict[str, Any]:
        return self._api.get(release_path(namespace, name))

    def patch_release_status(
        self, namespace: str, name: str, resource_version: str, status_patch: dict[str, Any]
    ) -> None:
        patch = {"metadata": {"resourceVersion": resource_version}, "status": status_patch}
        self._api.merge_patch(release_path(namespace, name, "status"), patch)
