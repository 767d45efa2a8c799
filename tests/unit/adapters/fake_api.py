"""An in-memory stand-in for `kubeapi.KubeApi` with the semantics routers rely on: objects by path,
JSON merge patch (RFC 7386), a resourceVersion that moves on every write, and the precondition a
patch carrying `metadata.resourceVersion` sets (409 when the object changed meanwhile)."""

from __future__ import annotations

import copy
from typing import Any

from controller import errors
from tests import mergepatch as patching


class FakeApi:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self._version = 100

    def put(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        """Store `body` as if created in `collection` (a list path)."""
        return self.create(collection, body)

    def get(self, path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
        if path not in self.objects:
            raise errors.NotFoundError(f"GET {path}: 404")
        return copy.deepcopy(self.objects[path])

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        where = f"{path}/{body['metadata']['name']}"
        if where in self.objects:
            raise errors.ConflictError(f"POST {path}: 409 already exists")
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = self._next()
        self.objects[where] = stored
        return copy.deepcopy(stored)

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        current = self.get(path)
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            raise errors.ConflictError(f"PATCH {path}: 409 the object has been modified")
        self.patches.append((path, copy.deepcopy(body)))
        updated = patching.merge_patch(current, body)
        updated["metadata"]["resourceVersion"] = self._next()
        self.objects[path] = updated
        return copy.deepcopy(updated)

    def delete(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.objects.pop(path, None) is None:
            raise errors.NotFoundError(f"DELETE {path}: 404")
        return {}

    def touch(self, path: str) -> None:
        """Someone else writes the object (a new resourceVersion)."""
        self.objects[path]["metadata"]["resourceVersion"] = self._next()

    def _next(self) -> str:
        self._version += 1
        return str(self._version)
