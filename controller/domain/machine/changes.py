"""Named, pure status changes: the only way the machine changes a ModelReleaseStatus.

Each function takes a status and returns the changed copy. Every copy goes through `_changed`,
which refuses a field the status does not have (pydantic's `model_copy(update=...)` would drop a
misspelt one silently), a phase change that names no event, and one the table does not list for
the (phase, event) pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from analysis import verdicts
from controller.domain.machine import table
from controller.resources import commands, releasestatus

Phase = releasestatus.Phase
Status = releasestatus.ModelReleaseStatus
Verdict = verdicts.Verdict


@dataclass(frozen=True)
class Target:
    """The revision the spec asks for, with its resolved model."""

    revision: str
    model_version: str
    model_uri: str
    gpus_per_replica: int


class UnknownFieldError(AssertionError):
    """A status change names a field the status does not have: a bug in the machine."""


def _changed(status: Status, fields: Mapping[str, object], event: table.Event | None = None) -> Status:
    unknown = fields.keys() - Status.model_fields.keys()
    if unknown:
        raise UnknownFieldError(f"ModelReleaseStatus has no field {', '.join(sorted(unknown))}")
    if "phase" in fields:
        phase = fields["phase"]
        if event is None or not isinstance(phase, Phase):
            raise table.IllegalTransitionError(f"a phase change to {phase} names no event")
        table.check(status.phase, event, phase)
    return status.model_copy(update=dict(fields))


# ---- bookkeeping, no phase change -------------------------------------------------------------


def revision_seen(status: Status, revision: str) -> Status:
    return _changed(status, {"revision": revision})


def size_observed(status: Status, replicas: int, selector: str | None) -> Status:
    """What `/scale` reads: the pods the release's Deployments ask for, and how to select them."""
    return _changed(status, {"replicas": replicas, "selector": selector})


def model_pinned(status: Status, resolved: releasestatus.ResolvedModel) -> Status:
    return _changed(status, {"resolved_model": resolved})


def noted(status: Status, key: str) -> Status:
    """A one-shot message (notification, approval request, warning) is recorded as said."""
    return _changed(status, {"notifications": (*status.notifications, key)})


def command_handled(status: Status, command: commands.Command, token: str) -> Status:
    return _changed(status, {"handled_commands": status.handled_commands.with_token(command, token)})


def said(status: Status, reason: str | None, message: str) -> Status:
    """The reason and message change; the phase stays."""
    return _changed(status, {"reason": reason, "message": message})


def fits_again(status: Status, message: str, now: datetime) -> Status:
    """A rollout that waited for its plan to fit goes on; the step's clock (its progress deadline)
    starts again, as the wait was not the step's to make progress in."""
    return _changed(status, {"reason": "ResizeFits", "message": message, "step_started_at": now})


def stable_footprint_set(status: Status, replicas: int, gpus_per_replica: int) -> Status:
    return _changed(status, {"stable_replicas": replicas, "stable_gpus_per_replica": gpus_per_replica})


def retirements_done(status: Status, now: datetime) -> Status:
    return _changed(status, {"retiring": tuple(r for r in status.retiring if r.at > now)})


def analyses_stopped(status: Status, rule: str, now: datetime) -> Status:
    """Runs stopped before the judge decided reached no verdict, and their records say so."""
    finished = tuple(
        r.model_copy(
            update={"finished_at": now, "rule": rule, "verdict": Verdict.INCONCLUSIVE, "evidence": None}
        )
        if r.verdict == Verdict.RUNNING and r.finished_at is None
        else r
        for r in status.analysis
    )
    return _changed(status, {"analysis": finished})


def analysis_progressed(
    status: Status,
    run: str,
    metrics: tuple[verdicts.MetricResult, ...],
    rule: str | None,
    evidence: verdicts.EvidenceRecord | None,
) -> Status:
    """A running analysis's latest per-metric figures, so a person can see how close it is, and the
    judge's compact state, which the next look continues from (None: keep the one recorded)."""

    def progressed(record: releasestatus.StepAnalysis) -> releasestatus.StepAnalysis:
        kept = record.evidence if evidence is None else evidence
        return record.model_copy(update={"metrics": metrics, "rule": rule, "evidence": kept})

    return _changed(
        status, {"analysis": tuple(progressed(r) if r.run == run else r for r in status.analysis)}
    )


def analysis_finished(status: Status, record: releasestatus.StepAnalysis) -> Status:
    """A run's verdict; its compact state is no longer needed and leaves status."""
    done = record.model_copy(update={"evidence": None})
    return _changed(status, {"analysis": tuple(done if r.run == record.run else r for r in status.analysis)})


def registry_owed(status: Status, write: releasestatus.RegistryWrite) -> Status:
    if any(w.key == write.key for w in status.registry_owed):
        return status
    return _changed(status, {"registry_owed": (*status.registry_owed, write)})


def registry_attempted(status: Status, key: str, now: datetime) -> Status:
    owed = tuple(
        w.model_copy(update={"attempted_at": now, "attempts": w.attempts + 1}) if w.key == key else w
        for w in status.registry_owed
    )
    return _changed(status, {"registry_owed": owed})


def registry_settled(status: Status, key: str) -> Status:
    return _changed(status, {"registry_owed": tuple(w for w in status.registry_owed if w.key != key)})


def rollout_run_linked(status: Status, record: releasestatus.RolloutRecord, link: str) -> Status:
    """The history entry of a logged rollout points at its MLflow run (gone from history: nothing)."""
    history = tuple(
        r.model_copy(update={"mlflow_run": link})
        if (r.revision, r.attempt, r.ended_at) == (record.revision, record.attempt, record.ended_at)
        else r
        for r in status.history
    )
    return _changed(status, {"history": history})


def approval_recorded(status: Status, record: releasestatus.ApprovalRecord) -> Status:
    return _changed(status, {"approvals": (*status.approvals, record)})


def canary_cleared(status: Status) -> Status:
    """No canary any more: its revision, weight, step and the promote-full flag go."""
    return _changed(
        status,
        {
            "canary_revision": None,
            "canary_model_version": None,
            "canary_weight": 0,
            "current_step_index": None,
            "step_started_at": None,
            "promote_full": False,
        },
    )


# ---- halting and waiting ----------------------------------------------------------------------


def halted(status: Status, phase: Phase, reason: str, message: str) -> Status:
    """Pending, Blocked or Failed, with why; whatever was under way is kept to resume from."""
    return _changed(status, {"phase": phase, "reason": reason, "message": message}, table.Event.HALTED)


def stable_again(status: Status, message: str) -> Status:
    """The spec asks for what stable serves, and nothing else runs."""
    return _changed(
        status, {"phase": Phase.SUCCEEDED, "reason": "Stable", "message": message}, table.Event.SPEC_AT_STABLE
    )


def retry_requested(status: Status, now: datetime) -> Status:
    return _changed(
        status,
        {
            "phase": Phase.PENDING,
            "reason": "RetryRequested",
            "message": "retry requested",
            "step_started_at": now,
        },
        table.Event.RETRY,
    )


# ---- first deploy -----------------------------------------------------------------------------


def first_deploy_started(status: Status, target: Target, message: str, now: datetime) -> Status:
    return _changed(
        status,
        {
            "phase": Phase.PROGRESSING,
            "reason": "FirstDeploy",
            "message": message,
            "canary_revision": target.revision,
            "canary_model_version": target.model_version,
            "attempt": 1,
            "rollout_started_at": now,
            "step_started_at": now,
            "current_step_index": None,
            "canary_weight": 0,
            "analysis": (),
            "approvals": (),
            "notifications": (),
        },
        table.Event.FIRST_DEPLOY_STARTED,
    )


def first_deploy_done(status: Status, target: Target, replicas: int, message: str) -> Status:
    deployed = _changed(
        status,
        {
            "stable_revision": target.revision,
            "stable_model_version": target.model_version,
            "stable_replicas": replicas,
            "stable_gpus_per_replica": target.gpus_per_replica,
        },
    )
    cleared = _changed(
        deployed, {"canary_revision": None, "canary_model_version": None, "step_started_at": None}
    )
    return _changed(
        cleared,
        {"phase": Phase.SUCCEEDED, "reason": "Deployed", "message": message},
        table.Event.FIRST_DEPLOY_WARM,
    )


# ---- a rollout --------------------------------------------------------------------------------


def started_rollout(
    status: Status, target: Target, *, attempt: int, steps_hash: str, message: str, now: datetime
) -> Status:
    return _changed(
        status,
        {
            "phase": Phase.PROGRESSING,
            "reason": "RolloutStarted",
            "message": message,
            "canary_revision": target.revision,
            "canary_model_version": target.model_version,
            "attempt": attempt,
            "rollout_started_at": now,
            "current_step_index": 0,
            "step_started_at": now,
            "waited_for_people_seconds": 0.0,
            "steps_hash": steps_hash,
            "promote_full": False,
            "canary_weight": 0,
            "analysis": (),
            "approvals": (),
            "notifications": (),
            "retiring": (),
        },
        table.Event.ROLLOUT_STARTED,
    )


def restarted_for_new_steps(status: Status, steps_hash: str, now: datetime) -> Status:
    """The steps were edited mid-rollout: a new attempt from step 0, the canary's weight back to 0."""
    return _changed(
        status,
        {
            "steps_hash": steps_hash,
            "attempt": status.attempt + 1,
            "current_step_index": 0,
            "step_started_at": now,
            "rollout_started_at": now,
            "waited_for_people_seconds": 0.0,
            "canary_weight": 0,
            "analysis": (),
            "approvals": (),
            "promote_full": False,
            "phase": Phase.PROGRESSING,
            "reason": "StepsChanged",
            "message": "the steps changed; progress starts again at step 0",
        },
        table.Event.STEPS_EDITED,
    )


def sheltered(status: Status, dropped: tuple[str, ...], reason: str, message: str) -> Status:
    """The canary lost its pods: the analyses of `dropped` runs are forgotten, to start afresh."""
    kept = tuple(r for r in status.analysis if r.run not in dropped)
    return _changed(status, {"analysis": kept, "reason": reason, "message": message})


def paused(status: Status, reason: str, message: str) -> Status:
    return _changed(status, {"phase": Phase.PAUSED, "reason": reason, "message": message}, table.Event.PAUSED)


def awaiting_approval(status: Status, message: str) -> Status:
    return _changed(
        status,
        {"phase": Phase.AWAITING_APPROVAL, "reason": "AwaitingApproval", "message": message},
        table.Event.APPROVAL_STEP,
    )


def analysis_started(status: Status, record: releasestatus.StepAnalysis, message: str) -> Status:
    return _changed(
        status,
        {
            "analysis": (*status.analysis, record),
            "phase": Phase.PROGRESSING,
            "reason": "Analysing",
            "message": message,
        },
        table.Event.ANALYSIS_STARTED,
    )


def background_started(status: Status, record: releasestatus.StepAnalysis) -> Status:
    """The background analysis joins the records; phase and message stay the step's."""
    return _changed(status, {"analysis": (*status.analysis, record)})


def step_completed(
    status: Status,
    index: int,
    weight: int,
    *,
    last: bool,
    label: str,
    now: datetime,
    waited_for_people: bool = False,
) -> Status:
    """The one place the step index advances; a step that waited for people adds its time to that."""
    waited = status.waited_for_people_seconds
    if waited_for_people and status.step_started_at is not None:
        waited += max((now - status.step_started_at).total_seconds(), 0.0)
    return _changed(
        status,
        {
            "waited_for_people_seconds": waited,
            "current_step_index": index + 1,
            "step_started_at": now,
            "canary_weight": weight,
            "phase": Phase.PROMOTING if last else Phase.PROGRESSING,
            "reason": "Promoting" if last else "StepCompleted",
            "message": f"{label} complete" + ("; promoting" if last else ""),
        },
        table.Event.STEP_COMPLETED,
    )


def promoted_full(status: Status, step_count: int, now: datetime) -> Status:
    """promote --full: every remaining step is skipped; the index points past the last."""
    return _changed(
        status,
        {
            "promote_full": True,
            "current_step_index": step_count,
            "step_started_at": now,
            "phase": Phase.PROMOTING,
            "reason": "PromotedFull",
            "message": "promote --full: skipping the remaining steps",
        },
        table.Event.PROMOTE_FULL,
    )


def promoting(status: Status) -> Status:
    return _changed(
        status,
        {"phase": Phase.PROMOTING, "reason": "Promoting", "message": "all steps complete; promoting"},
        table.Event.LAST_STEP_DONE,
    )


def promoted(
    status: Status,
    target: Target,
    replicas: int,
    retiring: releasestatus.Retiring,
    message: str,
    now: datetime,
) -> Status:
    """The canary becomes stable; the previous stable is kept until `retiring.at`."""
    record = _finished(status, releasestatus.RolloutOutcome.PROMOTED, "Promoted", message, now)
    promoted_ = _changed(
        canary_cleared(status),
        {
            "stable_revision": target.revision,
            "stable_model_version": target.model_version,
            "stable_replicas": replicas,
            "stable_gpus_per_replica": target.gpus_per_replica,
            "retiring": (*status.retiring, retiring),
            "history": _appended(status.history, record),
        },
    )
    return _changed(
        promoted_, {"phase": Phase.SUCCEEDED, "reason": "Promoted", "message": message}, table.Event.PROMOTED
    )


def rolled_back(status: Status, rollback: releasestatus.Rollback) -> Status:
    record = _finished(
        status, releasestatus.RolloutOutcome.ROLLED_BACK, rollback.reason, rollback.message, rollback.at
    )
    return _changed(
        canary_cleared(status),
        {
            "phase": Phase.ROLLED_BACK,
            "reason": rollback.reason,
            "message": rollback.message,
            "last_rollback": rollback,
            "history": _appended(status.history, record),
        },
        table.Event.ROLLED_BACK,
    )


def written_back(status: Status, commit: str, outcome: str) -> Status:
    """The rollback's Git write-back is settled: found in Git (or no longer needed) at `commit`."""
    return _write_back_changed(status, {"commit": commit, "outcome": outcome})


def write_back_dropped(status: Status, outcome: str) -> Status:
    """The rollback's Git write-back is no longer wanted: settled with nothing committed."""
    return _write_back_changed(status, {"outcome": outcome})


def write_back_attempted(status: Status, now: datetime) -> Status:
    rollback = status.last_rollback
    tried = rollback.git_write_back.attempts if rollback is not None and rollback.git_write_back else 0
    return _write_back_changed(status, {"attempted_at": now, "attempts": tried + 1})


def _write_back_changed(status: Status, fields: Mapping[str, object]) -> Status:
    rollback = status.last_rollback
    if rollback is None or rollback.git_write_back is None:
        raise ValueError("no Git write-back is owed")
    unknown = fields.keys() - releasestatus.GitWriteBack.model_fields.keys()
    if unknown:
        raise UnknownFieldError(f"GitWriteBack has no field {', '.join(sorted(unknown))}")
    owed = rollback.git_write_back.model_copy(update=dict(fields))
    return _changed(status, {"last_rollback": rollback.model_copy(update={"git_write_back": owed})})


def proposal_owed(status: Status, proposal: releasestatus.Proposal) -> Status:
    """A new bump to propose (replacing an earlier one: the alias has moved on since)."""
    return _changed(status, {"proposal": proposal})


def proposal_withdrawn(status: Status) -> Status:
    return _changed(status, {"proposal": None})


def proposal_attempted(status: Status, now: datetime) -> Status:
    tried = status.proposal.attempts if status.proposal is not None else 0
    return _proposal_changed(status, {"attempted_at": now, "attempts": tried + 1})


def proposal_committed(status: Status, commit: str, outcome: str) -> Status:
    return _proposal_changed(status, {"commit": commit, "outcome": outcome})


def _proposal_changed(status: Status, fields: Mapping[str, object]) -> Status:
    if status.proposal is None:
        raise ValueError("no bump proposal is owed")
    unknown = fields.keys() - releasestatus.Proposal.model_fields.keys()
    if unknown:
        raise UnknownFieldError(f"Proposal has no field {', '.join(sorted(unknown))}")
    return _changed(status, {"proposal": status.proposal.model_copy(update=dict(fields))})


def _finished(
    status: Status, outcome: releasestatus.RolloutOutcome, reason: str, message: str, now: datetime
) -> releasestatus.RolloutRecord:
    """The history entry of the rollout under way as it ends."""
    return releasestatus.RolloutRecord(
        revision=status.canary_revision or status.revision or "",
        model_version=status.canary_model_version,
        from_model_version=status.stable_model_version,
        attempt=status.attempt,
        outcome=outcome,
        reason=reason,
        message=message,
        started_at=status.rollout_started_at,
        ended_at=now,
        waited_for_people_seconds=status.waited_for_people_seconds,
    )


def _appended(
    history: tuple[releasestatus.RolloutRecord, ...], record: releasestatus.RolloutRecord
) -> tuple[releasestatus.RolloutRecord, ...]:
    return (*history, record)[-releasestatus.HISTORY_LIMIT :]
