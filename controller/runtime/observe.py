"""Observe: read everything the engine needs about one release into an `Observations` snapshot."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pydantic

from controller import errors, ports
from controller.adapters import events as events_
from controller.adapters import kubeapi, labels
from controller.domain import naming, observations
from controller.resources import approval, meta, releasestatus

COMMANDS = ("abort", "promote", "promote-full", "retry")


@dataclasses.dataclass(frozen=True)
class Ports:
    api: kubeapi.KubeApi
    workloads: ports.Workloads
    analysis: ports.AnalysisBackend
    notifier: ports.Notifier
    registry: ports.ModelRegistry
    repository: ports.ReleaseRepository | None
    events: events_.KubeEvents
    router: Callable[[ports.ReleaseRef], ports.TrafficRouter]


def build_commands(annotations: dict[str, str]) -> observations.Commands:
    known = {labels.COMMAND_PREFIX + name for name in COMMANDS}
    unknown = tuple(
        sorted(
            f"{key}={token}"
            for key, token in annotations.items()
            if key.startswith(labels.COMMAND_PREFIX) and key not in known
        )
    )
    return observations.Commands(
        abort=annotations.get(labels.COMMAND_PREFIX + "abort"),
        promote=annotations.get(labels.COMMAND_PREFIX + "promote"),
        promote_full=annotations.get(labels.COMMAND_PREFIX + "promote-full"),
        retry=annotations.get(labels.COMMAND_PREFIX + "retry"),
        unknown=unknown,
    )


def fetch_approvals(
    api: kubeapi.KubeApi, release: ports.ReleaseRef
) -> tuple[observations.ObservedApproval, ...]:
    items = api.get(kubeapi.build_path(meta.API_VERSION, "approvals", release.namespace))["items"]
    found = []
    for item in items:
        try:
            spec = approval.ApprovalSpec.model_validate(item.get("spec"))
        except pydantic.ValidationError:
            continue  # a malformed Approval approves nothing; the API server's schema normally rejects it
        if spec.release != release.name:
            continue
        created = item["metadata"].get("creationTimestamp")
        found.append(
            observations.ObservedApproval(
                name=item["metadata"]["name"],
                revision=spec.revision,
                step=spec.step,
                decision=spec.decision,
                by=spec.by,
                reason=spec.reason,
                created_at=datetime.fromisoformat(created.replace("Z", "+00:00")),
            )
        )
    return tuple(sorted(found, key=lambda a: (a.created_at, a.name)))


def observe(
    io: Ports, release: ports.ReleaseRef, body: dict[str, Any], status: releasestatus.ModelReleaseStatus
) -> observations.Observations:
    model: observations.RegistryVersion | None = None
    model_error: str | None = None
    pinned = status.resolved_model
    if pinned is None or pinned.reference != naming.build_model_reference(release.spec.model):
        try:
            model = io.registry.fetch_version(release.spec.model)
        except errors.PermanentError as exc:
            model_error = str(exc)
    running = [run for run in status.analysis if run.finished_at is None]
    return observations.Observations(
        release=observations.ReleaseIdentity(
            name=release.name,
            namespace=release.namespace,
            generation=int(body["metadata"].get("generation", 1)),
        ),
        model=model,
        model_error=model_error,
        workloads=io.workloads.fetch_workloads(release),
        traffic=io.router(release).fetch_traffic(release),
        analysis=io.analysis.fetch_results(release, status, running),
        approvals=fetch_approvals(io.api, release),
        commands=build_commands(body["metadata"].get("annotations") or {}),
    )
