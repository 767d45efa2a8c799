"""One reconcile of one release: observe → decide (pure engine) → execute → events → status.

Nothing is kept in memory between calls. Actions run before the status write; a crash in between
is safe because every action is desired state or deduplicated by name, and the engine decides
again from what it then observes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pydantic

from analysis import schema
from controller import errors, manifests, ports
from controller.adapters.traffic import services
from controller.domain import actions, engine, machine, planning
from controller.domain import decision as decisions
from controller.domain.machine import endings
from controller.resources import modelrelease, releasestatus
from controller.runtime import adoption, observe, statuspatch, telemetry


@dataclasses.dataclass(frozen=True)
class Reconciled:
    """What one reconcile asks of the daemon: when to look again, and what it did (for pacing)."""

    requeue_after: timedelta | None
    actions: tuple[actions.Action, ...] = ()
    status_written: bool = False


def dump_status(status: releasestatus.ModelReleaseStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def execute(
    io: ports.Ports,
    release: ports.ReleaseRef,
    todo: tuple[actions.Action, ...],
    logger: logging.Logger,
) -> None:
    for action in todo:
        match action:
            case actions.CreateWorkload():
                io.workloads.apply_create(release, action)
            case actions.ScaleWorkload():
                io.workloads.apply_scale(release, action)
            case actions.DeleteWorkload():
                io.workloads.apply_delete(release, action)
            case actions.SetTrafficWeight():
                io.router(release).apply_weight(release, action)
            case actions.StartAnalysis():
                io.analysis.apply_start(release, action)
            case actions.StopAnalysis():
                io.analysis.apply_stop(release, action)
            case actions.RequestApproval():
                io.notifier.post_approval_request(release, action)
            case actions.Notify():
                io.notifier.post_notification(release, action)
            case actions.PromoteModel() | actions.TagRolledBack() | actions.LogRolloutRun():
                _registry_write(io, release, action, logger)
            case actions.ProposeBump():
                _git_write(io, release, action, "ModelVersionBumpFailed", logger)
            case actions.WriteBackToGit():
                _git_write(io, release, action, "GitWriteBackFailed", logger)


def _git_write(
    io: ports.Ports,
    release: ports.ReleaseRef,
    action: actions.WriteBackToGit | actions.ProposeBump,
    failed: str,
    logger: logging.Logger,
) -> None:
    """A write to the release repository the status owes (a rollback's write-back, a version bump).

    A failure never holds or fails the rollout: the write stays owed and the domain asks again,
    backing off. It is said once per try, so the Event shows the latest error and how often.
    """
    try:
        if isinstance(action, actions.WriteBackToGit):
            io.repository.apply_write_back(release, action)
        else:
            io.repository.apply_bump(release, action)
    except errors.ModelReleaseError as exc:
        again = endings.git_retry_backoff(action.attempt)
        message = f"try {action.attempt}: {exc}; trying again in {schema.format_duration(again)}"
        _skipped(io, release, failed, message, action.key, str(action.attempt), logger=logger)


def _registry_write(
    io: ports.Ports,
    release: ports.ReleaseRef,
    action: actions.PromoteModel | actions.TagRolledBack | actions.LogRolloutRun,
    logger: logging.Logger,
) -> None:
    try:
        match action:
            case actions.PromoteModel():
                io.registry.apply_promotion(action)
            case actions.TagRolledBack():
                io.registry.apply_rolled_back_tag(action)
            case actions.LogRolloutRun():
                io.registry.apply_rollout_run(action)
    except errors.ModelReleaseError as exc:
        # The rollout's outcome stands; the write stays owed in status and is asked for again in a minute.
        _skipped(io, release, "RegistryUpdateFailed", f"{exc}; retrying", action.key, str(exc), logger=logger)


def _skipped(
    io: ports.Ports,
    release: ports.ReleaseRef,
    reason: str,
    message: str,
    *identity: str,
    logger: logging.Logger,
) -> None:
    logger.warning("%s: %s", reason, message)
    try:
        io.events.post_warning(release, reason, message, reason, *identity)
    except errors.TransientError:
        pass  # the log says it; the next attempt says it again


def build_invalid_spec_message(exc: pydantic.ValidationError) -> str:
    """The first problems as `spec.field.path: what is wrong` (a rule across fields names `spec`)."""
    problems = []
    for error in manifests.root_causes(exc.errors(include_url=False)):
        path = manifests.format_path(tuple(error["loc"]))
        problems.append(f"{'spec.' + path if path else 'spec'}: {manifests.describe(error)}")
    return "; ".join(problems[:5])


def reconcile_release(
    io: ports.Ports,
    namespace: str,
    name: str,
    *,
    clock: Callable[[], datetime],
    logger: logging.Logger,
    metrics: telemetry.ControllerMetrics | None = None,
) -> Reconciled:
    try:
        body = io.releases.fetch_release(namespace, name)
    except errors.NotFoundError:
        if metrics is not None:
            metrics.forget(namespace, name)
        return Reconciled(requeue_after=None)  # deleted meanwhile
    if body["metadata"].get("deletionTimestamp"):
        if metrics is not None:
            metrics.forget(namespace, name)
        return Reconciled(requeue_after=None)
    raw_status = body.get("status") or {}
    try:
        status = releasestatus.ModelReleaseStatus.model_validate(raw_status)
    except pydantic.ValidationError:
        logger.warning("status of %s/%s is unreadable; starting from an empty status", namespace, name)
        status = releasestatus.ModelReleaseStatus()
    try:
        spec = modelrelease.ModelReleaseSpec.model_validate(body.get("spec"))
    except pydantic.ValidationError as exc:
        halted = engine.halt(
            status,
            "InvalidSpec",
            build_invalid_spec_message(exc),
            generation=int(body["metadata"].get("generation", 1)),
            now=clock(),
        )
        return Reconciled(requeue_after=None, status_written=_write_halt(io, body, status, halted))
    spec = adoption.adopt(io, namespace, spec)
    release = ports.ReleaseRef(namespace=namespace, name=name, uid=body["metadata"]["uid"], spec=spec)
    now = clock()
    observed = observe.observe(io, release, body, status)
    decision = engine.reconcile(release.spec, status, observed, now=now)
    execute(io, release, decision.actions, logger)
    post_events(io, release, decision, logger)
    written = _write_status(io, body, status, decision.status)
    if metrics is not None:
        observe_metrics(metrics, release, status, decision.status, now)
    return Reconciled(requeue_after=decision.requeue_after, actions=decision.actions, status_written=written)


def observe_metrics(
    metrics: telemetry.ControllerMetrics,
    release: ports.ReleaseRef,
    before: releasestatus.ModelReleaseStatus,
    after: releasestatus.ModelReleaseStatus,
    now: datetime,
) -> None:
    """The metrics of this reconcile's transition: the step that ended (its kind from the plan)."""
    kind, people = None, False
    plan = planning.plan_against_status(release.spec, before)
    index = before.current_step_index
    if not isinstance(plan, planning.Refusal) and index is not None and index < len(plan.steps):
        entry = plan.steps[index]
        kind, people = entry.kind.value, machine.steps.waits_for_people(entry)
    metrics.observe_transition(release.namespace, release.name, before, after, kind, people, now)


def clean_up_release(
    io: ports.Ports, namespace: str, name: str, uid: str, spec: Any, logger: logging.Logger
) -> None:
    """A deleted release (normal propagation): remove the Deployments and Services it owns.

    Only objects whose ownerReferences name this release's uid are deleted, so an object another
    release or a person created under a colliding name is never touched. A user-owned route keeps
    the rules modelrelease wrote, which name the deleted Services: that is said in an Event and in
    the log, because rewriting a route to a backend the user did not choose would be a guess.
    """
    try:
        parsed: modelrelease.ModelReleaseSpec | None = modelrelease.ModelReleaseSpec.model_validate(spec)
    except pydantic.ValidationError:
        parsed = None
    if parsed is not None:
        adoption.hand_back(io, ports.ReleaseRef(namespace=namespace, name=name, uid=uid, spec=parsed), logger)
    io.workloads.apply_cleanup(namespace, name, uid)
    if parsed is None:
        return
    routing = parsed.traffic_routing
    route = (
        f"HTTPRoute {routing.gateway_api.http_route}"
        if routing.gateway_api is not None
        else f"VirtualService {routing.istio.virtual_service}"
        if routing.istio is not None
        else None
    )
    if route is None:
        return
    release = ports.ReleaseRef(namespace=namespace, name=name, uid=uid, spec=parsed)
    message = (
        f"{route} still sends traffic to {services.stable_service(name)} and "
        f"{services.canary_service(name)}, "
        "which were deleted with the release: point the route at another backend or delete it"
    )
    logger.warning("%s", message)
    try:
        io.events.post_warning(release, "RouteLeftBehind", message, "deleted")
    except errors.TransientError as exc:
        logger.warning("event RouteLeftBehind not posted: %s", exc)


def post_events(
    io: ports.Ports, release: ports.ReleaseRef, decision: decisions.Decision, logger: logging.Logger
) -> None:
    """Post the decision's Events; one that fails is logged and dropped, never a failed reconcile.

    Events are best-effort in Kubernetes. Letting a failed POST abort the reconcile would leave the
    actions done and the status unwritten, so `kubectl get` would show the old phase for as long as
    the backoff lasts.
    """
    for event in decision.events:
        for attempt in range(EVENT_ATTEMPTS):
            try:
                io.events.post_transition(release, event, decision.status)
                break
            except errors.TransientError as exc:
                if attempt + 1 == EVENT_ATTEMPTS:
                    logger.warning("event %s not posted (%s): %s", event.reason, exc, event.message)


EVENT_ATTEMPTS = 2  # a timed-out POST is tried once more; then the Event is dropped (and logged)


def record_transient_error(
    io: ports.Ports,
    namespace: str,
    name: str,
    exc: errors.TransientError,
    retry_in: float,
    clock: Callable[[], datetime],
) -> releasestatus.Phase | None:
    """Say in status that reconciling fails and when it is tried again; the phase, if readable.

    Best effort: the API may be what fails, and then the log is all there is.
    """
    try:
        body = io.releases.fetch_release(namespace, name)
        status = releasestatus.ModelReleaseStatus.model_validate(body.get("status") or {})
        reason = type(exc).__name__.removesuffix("Error") or "Transient"
        message = f"{str(exc)[:400]}; retrying in {retry_in:.0f}s"
        failed = engine.reconcile_failed(status, reason, message, now=clock())
        _write_status(io, body, status, failed.status)
    except (errors.ModelReleaseError, pydantic.ValidationError):
        return None
    return status.phase


def _write_status(
    io: ports.Ports,
    body: dict[str, Any],
    old: releasestatus.ModelReleaseStatus,
    new: releasestatus.ModelReleaseStatus,
) -> bool:
    if dump_status(old) == dump_status(new):
        return False  # nothing changed: no write, no new resourceVersion, no watch event
    meta_ = body["metadata"]
    patch = statuspatch.build_merge_patch(body.get("status") or {}, dump_status(new))
    io.releases.patch_release_status(meta_["namespace"], meta_["name"], meta_["resourceVersion"], patch)
    return True


def apply_permanent_error(
    io: ports.Ports, namespace: str, name: str, exc: errors.PermanentError, clock: Callable[[], datetime]
) -> releasestatus.Phase:
    """Say a permanent error in status and in an Event (once each), as the engine halts on it, and
    return the phase written."""
    body = io.releases.fetch_release(namespace, name)
    try:
        status = releasestatus.ModelReleaseStatus.model_validate(body.get("status") or {})
    except pydantic.ValidationError:
        status = releasestatus.ModelReleaseStatus()
    reason = type(exc).__name__.removesuffix("Error") or "Error"
    generation = int(body["metadata"].get("generation", 1))
    halted = engine.halt(status, reason, str(exc), generation=generation, now=clock())
    _write_halt(io, body, status, halted)
    return halted.status.phase


def _write_halt(
    io: ports.Ports,
    body: dict[str, Any],
    status: releasestatus.ModelReleaseStatus,
    halted: decisions.Decision,
) -> bool:
    """Write a halt's status and, when that is news, its Warning Events. Posted about the object by
    name and uid: a spec that does not validate gives no release reference to post them on."""
    written = _write_status(io, body, status, halted.status)
    if written:
        meta_ = body["metadata"]
        for event in halted.events:
            try:
                io.events.post_warning_about(
                    meta_["namespace"],
                    meta_["name"],
                    meta_["uid"],
                    event.reason,
                    event.message,
                    event.reason,
                    event.message,
                )
            except errors.TransientError:
                pass  # the status says it; an Event is a courtesy
    return written
