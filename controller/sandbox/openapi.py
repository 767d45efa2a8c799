"""Just enough OpenAPI v3 for kubectl: every served resource accepts server-side field validation.

kubectl validates manifests before sending them. It first asks `/openapi/v3` whether the server
validates fields itself (a PATCH operation of the kind that takes a `fieldValidation` query
parameter); when it does, kubectl leaves validation to the server and needs no schemas. The
emulator validates custom resources against their CRD schema and built-in names and labels, so it
answers yes. It does not serve full schemas: `kubectl explain` does not work here (docs/testing.md).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from controller.sandbox import kinds

PREFIX = "/openapi/v3"


def _group_version_path(rtype: kinds.ResourceType) -> str:
    return f"api/{rtype.version}" if not rtype.group else f"apis/{rtype.group}/{rtype.version}"


def build_document(types: list[kinds.ResourceType], path: str) -> dict[str, Any] | None:
    """The root document (`/openapi/v3`) or one group-version's; None for an unknown path."""
    by_group_version: dict[str, list[kinds.ResourceType]] = {}
    for rtype in types:
        by_group_version.setdefault(_group_version_path(rtype), []).append(rtype)
    wanted = path.removeprefix(PREFIX).strip("/")
    if not wanted:
        return {
            "paths": {
                gv: {"serverRelativeURL": f"{PREFIX}/{gv}?hash={_hash(_group_document(served))}"}
                for gv, served in sorted(by_group_version.items())
            }
        }
    served = by_group_version.get(wanted)
    return None if served is None else _group_document(served)


def _group_document(served: list[kinds.ResourceType]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for rtype in sorted(served, key=lambda t: t.plural):
        base = "/" + _group_version_path(rtype)
        scope = "/namespaces/{namespace}" if rtype.namespaced else ""
        operation = {
            "x-kubernetes-group-version-kind": {
                "group": rtype.group,
                "version": rtype.version,
                "kind": rtype.kind,
            },
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "OK"}},
        }
        paths[f"{base}{scope}/{rtype.plural}/{{name}}"] = {"patch": operation}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (emulated)", "version": "v1"}, "paths": paths}


def _hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16].upper()
