"""The status write: one JSON merge patch, guarded by the resourceVersion the decision was made on."""

from __future__ import annotations

from typing import Any


def build_merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 patch that turns `old` into `new`: changed keys, and `null` for removed ones."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = build_merge_patch(old[key], value)
    return patch
