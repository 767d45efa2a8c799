"""What the GitSource that applied a release says about it — its file quarantined, a prune of it
refused, or it kept though Git no longer holds it — in sentences for `status` and `explain`, so a
person looking at the release learns why Git changes do not reach it (pure: objects in, lines out)."""

from __future__ import annotations

from typing import Any

import pydantic

from controller.adapters import labels
from controller.resources import gitsource


def source_of(release: dict[str, Any]) -> str | None:
    """The GitSource that applied the release, from its annotation; None when another tool did."""
    annotations = release["metadata"].get("annotations") or {}
    name = annotations.get(labels.GIT_SOURCE)
    return str(name) if name else None


def describe(release: dict[str, Any], source: dict[str, Any] | None) -> list[str]:
    name = source_of(release)
    if name is None or source is None:
        return []
    try:
        status = gitsource.GitSourceStatus.model_validate(source.get("status") or {})
    except pydantic.ValidationError:
        return []
    annotations = release["metadata"].get("annotations") or {}
    file = annotations.get(labels.GIT_PATH)
    label = f"ModelRelease/{release['metadata']['name']}"
    said = []
    problems = [p for p in status.errors if p.file == file]
    if problems:
        first = problems[0]
        where = f"{first.file}:{first.line}" if first.line else first.file
        said.append(
            f"Its file {where} is quarantined by GitSource {name} ({first.message}): Git changes to it "
            "are not applied until the file is fixed."
        )
    if status.prune_refused is not None and label in status.prune_refused.objects:
        said.append(
            f"GitSource {name} would have deleted it and refused ({status.prune_refused.reason}); "
            "it keeps running as it is."
        )
    if label in status.orphaned:
        said.append(f"Git no longer holds it; GitSource {name} keeps it because prune is off.")
    return said
