"""Observe: read everything the engine needs about one release into an `Observations` snapshot."""

from __future__ import annotations

from typing import Any

from controller import errors, ports
from controller.adapters import labels
from controller.domain import machine, naming, observations
from controller.resources import commands, releasestatus


def build_commands(annotations: dict[str, str]) -> observations.Commands:
    """Command tokens from `modelrelease.dev/command-<name>` annotations; misspelt ones listed apart."""
    tokens: dict[commands.Command, str] = {}
    unknown: list[str] = []
    for key, token in annotations.items():
        if not key.startswith(labels.COMMAND_PREFIX):
            continue
        name = key.removeprefix(labels.COMMAND_PREFIX)
        if name in commands.Command.__members__.values():
            tokens[commands.Command(name)] = token
        else:
            unknown.append(f"{key}={token}")
    return observations.Commands(tokens=tokens, unknown=tuple(sorted(unknown)))


def observe(
    io: ports.Ports, release: ports.ReleaseRef, body: dict[str, Any], status: releasestatus.ModelReleaseStatus
) -> observations.Observations:
    model: observations.RegistryVersion | None = None
    model_error: str | None = None
    pinned = status.resolved_model
    if pinned is None or pinned.reference != naming.build_model_reference(release.spec.model):
        try:
            model = io.registry.fetch_version(release.spec.model)
        except errors.PermanentError as exc:
            model_error = str(exc)
    running = machine.build_running_analyses(release.spec, status)
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
        analysis=io.analysis.fetch_results(release, running),
        approvals=io.approvals.fetch_approvals(release),
        commands=build_commands(body["metadata"].get("annotations") or {}),
    )
