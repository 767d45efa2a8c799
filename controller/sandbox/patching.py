"""The three PATCH flavours of the API server, chosen by Content-Type.

JSON patch (RFC 6902, a failed `test` is 422), JSON merge patch (RFC 7386) and a strategic merge
patch that merges the lists of built-in kinds by their merge keys. Server-side apply is refused
with 415: nothing in modelrelease uses it, and emulating field ownership would be a lie.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from controller.sandbox import errors

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# Merge keys of the built-in lists we serve (k8s.io/api `patchMergeKey` tags).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ports": "port",
}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_list(target: list[Any], patch: list[Any], key: str) -> list[Any]:
    result = copy.deepcopy(target)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            return copy.deepcopy(patch)  # not keyed: the list is replaced, as for atomic lists
        index = next(
            (i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append(strategic_merge_patch({}, item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Merge patch, except lists with a known merge key merge item by item (`$patch: delete` removes)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in _MERGE_KEYS and isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], value, _MERGE_KEYS[key])
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise errors.ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
    try:
        return jsonpatch.apply_patch(target, operations, in_place=False)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise errors.ApiError(
            422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise errors.ApiError(422, "Invalid", f"invalid JSON patch: {exc}") from exc


def apply_patch(target: dict[str, Any], content_type: str, body: Any, *, built_in: bool) -> dict[str, Any]:
    """Apply `body` to `target` the way `content_type` says; 415 for what the server does not take."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == JSON_PATCH:
        result = json_patch(target, body)
    elif kind == MERGE_PATCH:
        result = merge_patch(target, body)
    elif kind == STRATEGIC_MERGE_PATCH and built_in:
        result = strategic_merge_patch(target, body)
    elif kind == STRATEGIC_MERGE_PATCH:
        raise errors.ApiError(
            415, "UnsupportedMediaType", "strategic merge patch is not supported for custom resources"
        )
    elif kind == APPLY_PATCH:
        raise errors.ApiError(
            415, "UnsupportedMediaType", "server-side apply is not emulated; use merge-patch"
        )
    else:
        raise errors.ApiError(
            415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {kind}"
        )
    if not isinstance(result, dict):
        raise errors.ApiError(422, "Invalid", "the patched object is not an object")
    return result
