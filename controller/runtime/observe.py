"""Observe: read everything the engine needs about one release into an `Observations` snapshot."""

from __future__ import annotations

import logging
from typing import Any

from analysis import verdicts
from controller import errors, ports
from controller.adapters import labels
from controller.domain import actions, machine, naming, observations
from controller.resources import commands, modelrelease, releasestatus

LOGGER = logging.getLogger(__name__)


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
        pod_selector=f"{labels.RELEASE}={naming.release_label(release.name)}",
        traffic=io.router(release).fetch_traffic(release),
        analysis=_analysis(io, release, running),
        approvals=io.approvals.fetch_approvals(release),
        commands=build_commands(body["metadata"].get("annotations") or {}),
        written_back=_written_back(io, release, status),
        followed=_followed(io, release),
        proposed=_proposed(io, release, status),
        registry_settled=_registry_settled(io, status),
        notifications=io.notifier.fetch_delivery(release),
    )


def _analysis(
    io: ports.Ports, release: ports.ReleaseRef, running: tuple[actions.StartAnalysis, ...]
) -> dict[str, verdicts.AnalysisSummary]:
    """The judge's word on each running analysis. A backend that cannot be read (Prometheus down or
    hung) is an observation the engine decides on — each run Running with the outage named, up to
    its maxDuration — never a failed reconcile: aborts, approvals and deadlines go on without it."""
    if not running:
        return {}
    try:
        return io.analysis.fetch_results(release, running)
    except errors.ModelReleaseError as exc:
        LOGGER.warning("analysis of %s/%s: metrics unavailable: %s", release.namespace, release.name, exc)
        unavailable = verdicts.AnalysisSummary(
            verdict=verdicts.Verdict.RUNNING, rule=f"metrics unavailable: {exc}", unavailable=str(exc)
        )
        return {run.run: unavailable for run in running}


def _registry_settled(
    io: ports.Ports, status: releasestatus.ModelReleaseStatus
) -> dict[str, observations.RegistrySettled]:
    """Which owed registry writes the registry holds; looked up only while some are owed."""
    settled = {}
    for write in status.registry_owed:
        try:
            found = io.registry.fetch_settled(write)
        except errors.ModelReleaseError as exc:
            # Unknown is not "absent": the write asked for next is idempotent (the alias is checked).
            LOGGER.warning("cannot read the model registry for %s: %s", write.key, exc)
            continue
        if found is not None:
            settled[write.key] = found
    return settled


def _followed(io: ports.Ports, release: ports.ReleaseRef) -> observations.RegistryVersion | None:
    """The version the alias the release follows points at now, with what the gate checks (its
    status and tags); looked up only when it follows one."""
    follow, model = release.spec.model.follow, release.spec.model
    if follow is None:
        return None
    try:
        version = io.registry.fetch_alias(model.name, follow.alias)
        if version is None:
            return None
        return io.registry.fetch_version(modelrelease.ModelRef(name=model.name, version=version))
    except errors.ModelReleaseError as exc:
        # Unknown is not "unmoved"; the next look (a webhook, or the poll) tries again.
        LOGGER.warning("cannot read alias %s of %s: %s", follow.alias, release.spec.model.name, exc)
        return None


def _proposed(
    io: ports.Ports, release: ports.ReleaseRef, status: releasestatus.ModelReleaseStatus
) -> observations.WrittenBack | None:
    """What Git holds for the bump proposal status owes; looked up only while one is owed."""
    owed, follow = status.proposal, release.spec.model.follow
    if owed is None or owed.commit is not None or owed.held or follow is None:
        return None
    try:
        return io.repository.fetch_proposed(release, owed, follow.target)
    except errors.ModelReleaseError as exc:
        LOGGER.warning(
            "cannot read the release repository of %s/%s: %s", release.namespace, release.name, exc
        )
        return None


def _written_back(
    io: ports.Ports, release: ports.ReleaseRef, status: releasestatus.ModelReleaseStatus
) -> observations.WrittenBack | None:
    """What Git holds for the write-back a rollback owes; looked up only while one is owed."""
    owed = status.last_rollback.git_write_back if status.last_rollback is not None else None
    if owed is None or owed.settled:
        return None
    try:
        return io.repository.fetch_written_back(release, owed)
    except errors.ModelReleaseError as exc:
        # Unknown is not "absent": the write that follows is idempotent by its trailer key.
        LOGGER.warning(
            "cannot read the release repository of %s/%s: %s", release.namespace, release.name, exc
        )
        return None
