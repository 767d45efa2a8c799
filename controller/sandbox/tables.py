"""`meta.k8s.io/v1` Table responses, so `kubectl get` prints a CRD's printer columns as on a cluster."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from controller.sandbox import kinds

_STEP = re.compile(
    r"\.([A-Za-z0-9_-]+)"
    r"|\[(-?\d+)\]"
    r"|\[(-?\d*):(-?\d*)\]"
    r"|\[\?\(@\.([A-Za-z0-9_.-]+)==[\"']([^\"']*)[\"']\)\]"
)

_BUILT_IN_COLUMNS: dict[str, tuple[dict[str, Any], ...]] = {
    "deployments": (
        {"name": "Ready", "type": "string", "jsonPath": ".status.readyReplicas"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Available", "type": "integer", "jsonPath": ".status.availableReplicas"},
    ),
    "pods": (
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
    ),
}


def evaluate_json_path(obj: Any, path: str) -> Any:
    """The subset of JSONPath printer columns use: `.a.b`, `[0]`, `[-1]`, `[-1:]`, `[?(@.type=="Ready")]`."""
    nodes = [obj]
    position = 0
    path = path.strip().removeprefix("{").removesuffix("}")
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            return None
        position = match.end()
        field, index, start, stop, filter_key, filter_value = match.groups()
        found = []
        for node in nodes:
            if field is not None and isinstance(node, dict) and field in node:
                found.append(node[field])
            elif index is not None and isinstance(node, list) and -len(node) <= int(index) < len(node):
                found.append(node[int(index)])
            elif start is not None and isinstance(node, list):
                found.extend(node[int(start) if start else None : int(stop) if stop else None])
            elif filter_key is not None and isinstance(node, list):
                found.extend(
                    item
                    for item in node
                    if isinstance(item, dict) and str(item.get(filter_key)) == filter_value
                )
        nodes = found
    return nodes[0] if nodes else None


def human_age(since: datetime, now: datetime) -> str:
    """kubectl's short age: 42s, 5m, 3h, 2d."""
    seconds = max(int((now - since).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (unit == "m" and seconds >= size):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _cell(value: Any, column_type: str, now: datetime) -> Any:
    if value is None:
        return None
    if column_type == "date" and isinstance(value, str):
        try:
            return human_age(datetime.fromisoformat(value.replace("Z", "+00:00")), now)
        except ValueError:
            return value
    if isinstance(value, (dict, list)):
        return str(value)
    return value


def build_table(
    rtype: kinds.ResourceType,
    objects: list[dict[str, Any]],
    revision: int,
    *,
    include_object: str,
    now: datetime,
) -> dict[str, Any]:
    columns = rtype.printer_columns or _BUILT_IN_COLUMNS.get(rtype.plural, ())
    if not any(column.get("jsonPath") == ".metadata.creationTimestamp" for column in columns):
        columns = (*columns, {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    definitions = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    definitions += [
        {
            "name": column["name"],
            "type": column.get("type", "string"),
            "format": column.get("format", ""),
            "description": column.get("description", ""),
            "priority": column.get("priority", 0),
        }
        for column in columns
    ]
    rows = []
    for obj in objects:
        cells = [obj["metadata"]["name"]]
        cells += [
            _cell(evaluate_json_path(obj, column["jsonPath"]), column.get("type", ""), now)
            for column in columns
        ]
        if include_object == "None":
            row_object: dict[str, Any] | None = None
        elif include_object == "Object":
            row_object = obj
        else:
            row_object = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append({"cells": cells, "object": row_object})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": str(revision)},
        "columnDefinitions": definitions,
        "rows": rows,
    }


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def utcnow() -> datetime:
    return datetime.now(UTC)
