"""Walking the planned steps of a rollout, and promoting at the end of them.

Each step kind has one `is_complete` check (as Argo Rollouts' `completedCurrentCanaryStep`):
it may first enter the step (pause, ask for an approval, start an analysis), end the rollout
(rejection, failed analysis, deadline) or say when to look again. When it answers complete,
`complete_step` — the one place the index advances — moves on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from analysis import schema, verdicts
from controller.domain import actions, naming, observations, planning
from controller.domain.machine import changes, converge, endings, turns
from controller.resources import modelrelease, releasestatus

Phase = releasestatus.Phase
Verdict = verdicts.Verdict
Want = converge.Want
CANARY_UNAVAILABLE = "CanaryUnavailable"
RESIZE_WAITING = "ResizeWaiting"


@dataclass(frozen=True)
class Step:
    """The step being walked, with what it needs from the turn."""

    target: changes.Target
    index: int
    entry: planning.PlannedStep
    traffic: actions.SetTrafficWeight  # where traffic is while the step is in force


def progress(turn: turns.Turn, target: changes.Target) -> turns.Move:
    st = turn.status
    plan = turn.plan
    if isinstance(plan, planning.Refusal):
        return _wait_for_room(turn, plan)
    steps_hash = naming.build_steps_hash(turn.spec.strategy)
    if st.steps_hash != steps_hash:
        turn.stop_running_analyses("steps changed")
        turn.change(changes.restarted_for_new_steps(turn.status, steps_hash, turn.now))
        turn.event("StepsChanged", turn.status.message)
        return turn.move()
    index = st.current_step_index or 0
    entry = plan.steps[index] if index < len(plan.steps) else plan.promotion
    if entry.does_not_fit is not None:
        return _wait_for_room(turn, planning.Refusal("GPUBudgetExceeded", entry.does_not_fit))
    if st.reason == RESIZE_WAITING:
        size = turn.spec.serving.replicas
        message = f"the plan fits the release's size again ({size}); {turn.step_label()} continues"
        turn.change(changes.fits_again(st, message, turn.now))
        turn.event("ResizeFits", message, key=f"fits-{turn.spec.serving.replicas}")
        return turn.move()
    assert st.stable_revision is not None
    stable_name = turn.workload_name(st.stable_revision)
    canary_name = turn.workload_name(target.revision)
    create = turn.create(target, entry.canary_replicas, turn.canary_track)
    wants = {stable_name: Want(entry.stable_replicas), canary_name: Want(entry.canary_replicas, create)}
    traffic = actions.SetTrafficWeight(
        stable_revision=st.stable_revision,
        canary_revision=target.revision,
        canary_weight=st.canary_weight,
        mirror_percent=entry.mirror,
        header_route=entry.header_route,
    )
    step = Step(target, index, entry, traffic)
    if _canary_lost(turn, canary_name, stable_name):
        return _shelter_on_stable(turn, step, wants)
    if st.reason == CANARY_UNAVAILABLE:
        message = f"canary {canary_name} is Ready again; {turn.step_label()} continues"
        turn.change(changes.said(st, "CanaryRecovered", message))
        turn.event("CanaryRecovered", message)
        return turn.move()
    if index < len(plan.steps) and _watch_in_background(turn, step):
        return turn.move()
    # The step's own transition is tried first: after a restart the world may be ahead of a
    # status that was never written, and converging first would undo work (scale down warm
    # GPU pods, take traffic back) only to redo it a moment later.
    before = turn.status
    if index >= len(plan.steps):
        move = _promote_when_warm(turn, step)
    else:
        wake_at = _walk(turn, step)
        move = turn.move(wake_at)
    if turn.moved(before):
        return move
    if converge.converge(turn, wants, traffic) or _keep_analysis_running(turn):
        return turn.move()
    return move


def _wait_for_room(turn: turns.Turn, refusal: planning.Refusal) -> turns.Move:
    """Mid-rollout, the plan no longer fits (the release was resized, or the budget or steps edited):
    neither roll back nor overrun the budget. Both tracks keep their size and traffic its weight,
    status says why, and the rollout goes on when the size or the budget lets it (a scale back, a
    larger maxExtraGPUs) — or an operator aborts it."""
    size = turn.spec.serving.replicas
    message = f"at {size} replicas the rollout does not fit its GPU budget, so it waits: {refusal.message}"
    if (turn.status.reason, turn.status.message) != (RESIZE_WAITING, message):
        turn.change(changes.said(turn.status, RESIZE_WAITING, message))
        turn.event(RESIZE_WAITING, message, warning=True, key=f"waits-{size}")
    return turn.move(turn.now + turns.POLL)


def _watch_in_background(turn: turns.Turn, step: Step) -> bool:
    """The background analysis: started when the rollout reaches its step; a Fail rolls back.

    It never completes a step (a Pass or an Inconclusive only informs). True when it acted.
    """
    background = turn.spec.strategy.canary.analysis if turn.spec.strategy.canary else None
    if background is None or step.index < background.starting_step:
        return False
    st = turn.status
    run = naming.background_run_name(turn.name, step.target.revision, st.attempt)
    record = next((r for r in st.analysis if r.run == run), None)
    if record is None:
        record = releasestatus.StepAnalysis(
            step_index=releasestatus.BACKGROUND_STEP,
            run=run,
            template=background.template,
            started_at=turn.now,
        )
        started = turns.build_analysis_run(turn.spec, st, record, turn.plan)
        turn.change(changes.background_started(st, turns.described(record, started)))
        turn.act(started)
        turn.event("AnalysisStarted", f"background analysis {background.template}: run {run}")
        return True
    result = turn.obs.analysis.get(run)
    if record.finished_at is not None or result is None:
        return False
    if result.verdict != Verdict.FAIL:
        if result.unavailable is None and _progressed(record, result.metrics, result):
            turn.change(changes.analysis_progressed(st, run, result.metrics, result.rule, result.evidence))
        return False
    finished = record.model_copy(
        update={
            "finished_at": turn.now,
            "verdict": Verdict.FAIL,
            "rule": result.rule,
            "metrics": result.metrics,
        }
    )
    turn.change(changes.analysis_finished(st, finished))
    turn.act(actions.StopAnalysis(run=run))
    summary = f"background analysis {background.template} at {step.entry.label}: Fail ({result.rule})"
    turn.notify(
        actions.NotificationEvent.ANALYSIS, step.target.revision, "analysis-background", summary, Verdict.FAIL
    )
    endings.roll_back(turn, step.target, "AnalysisFailed", summary, result.metrics)
    return True


def _walk(turn: turns.Turn, step: Step) -> datetime | None:
    """Check the step; complete it if it is. Returns when to look again."""
    completion = IS_COMPLETE[step.entry.kind](turn, step)
    if completion.complete:
        complete_step(turn, step.target, step.index, step.entry)
    return completion.wake_at


def complete_step(turn: turns.Turn, target: changes.Target, index: int, entry: planning.PlannedStep) -> None:
    plan = turn.plan
    assert not isinstance(plan, planning.Refusal)
    last = index + 1 >= len(plan.steps)
    turn.change(
        changes.step_completed(
            turn.status,
            index,
            entry.weight,
            last=last,
            label=entry.label,
            now=turn.now,
            waited_for_people=waits_for_people(entry),
        )
    )
    message = turn.status.message
    turn.notify(actions.NotificationEvent.STEP_COMPLETED, target.revision, f"step-{index}", message)
    turn.event("StepCompleted", message)


def waits_for_people(entry: planning.PlannedStep) -> bool:
    """An approval gate or a pause with no duration: only a person ends it."""
    return entry.kind == planning.StepKind.APPROVAL or (
        entry.kind == planning.StepKind.PAUSE and entry.pause is None
    )


# ---- one check per step kind --------------------------------------------------------------------


@dataclass(frozen=True)
class Completion:
    complete: bool = False
    wake_at: datetime | None = None


NOT_YET = Completion()


def _weight_complete(turn: turns.Turn, step: Step) -> Completion:
    """The canary is warm at its replicas, stable has what its share needs, traffic is at the weight."""
    entry = step.entry
    canary = turn.workload(step.target.revision)
    warm, warm_at = turn.warm(canary, entry.canary_replicas)
    assert turn.status.stable_revision is not None
    stable = turn.workload(turn.status.stable_revision)
    stable_needed = min(
        entry.stable_replicas, math.ceil(turn.spec.serving.replicas * (100 - entry.weight) / 100)
    )
    stable_ready = stable is not None and stable.ready_replicas >= stable_needed
    if warm and stable_ready and _traffic_reached(turn, step):
        return Completion(complete=True)
    return Completion(
        wake_at=_wait_for_warm(turn, step.target, entry.label, canary, entry.canary_replicas, warm_at)
    )


def _pause_complete(turn: turns.Turn, step: Step) -> Completion:
    entry = step.entry
    st = turn.status
    if st.phase != Phase.PAUSED:
        until = f" for {schema.format_duration(entry.pause)}" if entry.pause else " until promoted"
        message = f"{entry.label}: paused{until}"
        turn.change(changes.paused(st, "PauseStep", message))
        turn.notify(actions.NotificationEvent.PAUSED, step.target.revision, f"pause-{step.index}", message)
        turn.event("Paused", message)
        return NOT_YET
    if entry.pause is None:
        return NOT_YET  # until promoted
    assert st.step_started_at is not None
    ends = st.step_started_at + entry.pause
    return Completion(complete=True) if turn.now >= ends else Completion(wake_at=ends)


def _approval_complete(turn: turns.Turn, step: Step) -> Completion:
    target, index, entry = step.target, step.index, step.entry
    st = turn.status
    if st.phase == Phase.PAUSED and st.reason == APPROVAL_TIMED_OUT:
        _report_late_approvals(turn, index, target)
        return NOT_YET  # until promote or abort
    if st.phase != Phase.AWAITING_APPROVAL:
        needed = entry.approval.approvals if entry.approval is not None else 1
        wanted = "an approval" if needed == 1 else f"{needed} approvals (by different people)"
        message = (
            f"{entry.label}: waiting for {wanted} of revision {target.revision}: create an "
            f"Approval with release {turn.name}, revision {target.revision}, step {index} "
            "(docs/operations.md)"
        )
        turn.change(changes.awaiting_approval(st, message))
        key = turn.once_key(target.revision, f"approval-{index}")
        assert entry.approval is not None
        slack = turn.spec.notifications.slack
        turn.act(
            actions.RequestApproval(
                key=key,
                step_index=index,
                revision=target.revision,
                model_version=target.model_version,
                slack=entry.approval.slack and slack is not None,
                channel=slack.channel if slack else None,
            )
        )
        turn.change(changes.noted(turn.status, key))
        turn.event("AwaitingApproval", message)
        return NOT_YET
    assert entry.approval is not None
    gate = entry.approval
    relevant = _approvals_for(turn, index, target)
    rejection = next((a for a in relevant if a.decision == releasestatus.ApprovalDecision.REJECT), None)
    if rejection is not None:
        record_approval(
            turn,
            target,
            rejection.decision,
            rejection.by,
            rejection.name,
            rejection.created_at,
            rejection.reason,
            closes_gate=True,
        )
        why = f": {rejection.reason}" if rejection.reason else ""
        endings.roll_back(turn, target, "ApprovalRejected", f"{entry.label}: rejected by {rejection.by}{why}")
        return NOT_YET
    # One voice per identity (a Slack user ID, an authenticated Kubernetes user), the first counts:
    # `by` is a display name anyone can write, so it never makes two approvers of one person.
    approvers: dict[str, observations.ObservedApproval] = {}
    for approval in relevant:
        approvers.setdefault(approval.identity, approval)
    recorded = {
        a.identity or a.by for a in st.approvals if (a.revision, a.step_index) == (target.revision, index)
    }
    for count, approval in enumerate(approvers.values(), start=1):
        if approval.identity in recorded or count > gate.approvals:
            continue
        record_approval(
            turn,
            target,
            approval.decision,
            approval.by,
            approval.name,
            approval.created_at,
            approval.reason,
            closes_gate=count == gate.approvals,
            quorum=(count, gate.approvals),
            identity=approval.identity,
        )
    if len(approvers) >= gate.approvals:
        return Completion(complete=True)
    if approvers:
        names = ", ".join(a.by for a in approvers.values())
        waiting = (
            f"{entry.label}: {len(approvers)} of {gate.approvals} approvals ({names}); "
            f"waiting for {gate.approvals - len(approvers)} more of revision {target.revision}"
        )
        if turn.status.message != waiting:
            turn.change(changes.said(turn.status, turn.status.reason, waiting))
    _report_mismatched_approvals(turn, index, target)
    if gate.timeout is None:
        return NOT_YET
    assert st.step_started_at is not None
    expires = st.step_started_at + gate.timeout
    if turn.now < expires:
        return Completion(wake_at=expires)
    expired = (
        f"{entry.label}: no decision within {schema.format_duration(gate.timeout)} "
        f"({len(approvers)} of {gate.approvals} approvals)"
    )
    if gate.on_timeout == modelrelease.ApprovalTimeoutAction.ROLLBACK:
        endings.roll_back(turn, target, APPROVAL_TIMED_OUT, expired)
    else:
        message = f"{expired}; the gate is closed: promote to continue or abort to roll back"
        turn.change(changes.paused(turn.status, APPROVAL_TIMED_OUT, message))
        turn.event(APPROVAL_TIMED_OUT, message, warning=True)
    return NOT_YET


APPROVAL_TIMED_OUT = "ApprovalTimedOut"


def _progressed(
    record: releasestatus.StepAnalysis,
    metrics: tuple[verdicts.MetricResult, ...],
    result: verdicts.AnalysisSummary,
) -> bool:
    """The judge's figures, rule or compact state moved since the record (an outage brings no state)."""
    moved = result.evidence is not None and result.evidence != record.evidence
    return moved or (metrics, result.rule) != (record.metrics, record.rule)


def _analysis_complete(turn: turns.Turn, step: Step) -> Completion:
    target, index, entry = step.target, step.index, step.entry
    st = turn.status
    assert entry.analysis is not None
    run = naming.analysis_run_name(turn.name, target.revision, st.attempt, index)
    record = next((r for r in st.analysis if r.run == run), None)
    if record is None:
        seen = turn.obs.traffic
        if seen is None or not seen.matches(step.traffic):
            return NOT_YET  # the comparison starts once traffic is at this step's weight
        record = releasestatus.StepAnalysis(
            step_index=index, run=run, template=entry.analysis.template, started_at=turn.now
        )
        started = turns.build_analysis_run(turn.spec, st, record, turn.plan)
        message = f"{entry.label}: comparing canary with stable"
        turn.change(changes.analysis_started(st, turns.described(record, started), message))
        turn.act(started)
        turn.event("AnalysisStarted", f"{entry.label}: run {run}")
        return NOT_YET
    if record.verdict == Verdict.INCONCLUSIVE or record.finished_at is not None:
        return NOT_YET  # paused until promote or abort
    result = turn.obs.analysis.get(run)
    verdict = result.verdict if result is not None else Verdict.RUNNING
    rule = result.rule if result is not None else None
    outage = result.unavailable if result is not None else None
    # An outage leaves the last figures the judge gave standing; it is no new evidence either way.
    metrics = record.metrics if outage is not None or result is None else result.metrics
    ends = record.started_at + entry.analysis.max_duration
    if verdict == Verdict.RUNNING and turn.now >= ends:
        verdict = Verdict.INCONCLUSIVE
        rule = f"maxDuration {schema.format_duration(entry.analysis.max_duration)} reached without a verdict"
        if outage is not None:
            rule += f"; the metrics backend is unavailable: {outage}"
    if verdict == Verdict.RUNNING:
        if result is not None and _progressed(record, metrics, result):
            turn.change(changes.analysis_progressed(st, run, metrics, result.rule, result.evidence))
            if outage is not None:
                turn.event(
                    "AnalysisMetricsUnavailable",
                    f"{entry.label}: the metrics backend is unavailable ({outage}); the step waits for "
                    f"data until its maxDuration {schema.format_duration(entry.analysis.max_duration)}, "
                    "then pauses (promote or abort decide); abort and approvals act meanwhile",
                    warning=True,
                    key=f"{run}/unavailable",
                )
        return Completion(wake_at=min(ends, turn.now + turns.POLL))
    finished = record.model_copy(
        update={"finished_at": turn.now, "verdict": verdict, "rule": rule, "metrics": metrics}
    )
    turn.change(changes.analysis_finished(st, finished))
    turn.act(actions.StopAnalysis(run=run))
    summary = f"{entry.label}: {verdict.value}" + (f" ({rule})" if rule else "")
    turn.notify(
        actions.NotificationEvent.ANALYSIS,
        target.revision,
        f"analysis-{index}",
        summary,
        verdict,
        metrics=metrics,
        step_index=index,
    )
    if verdict == Verdict.PASS:
        turn.event("AnalysisPassed", summary, key=run)
        return Completion(complete=True)
    if verdict == Verdict.FAIL:
        endings.roll_back(turn, target, "AnalysisFailed", summary, metrics)
        return NOT_YET
    message = f"{summary}; promote to continue or abort to roll back"
    turn.change(changes.paused(turn.status, "AnalysisInconclusive", message))
    turn.event("AnalysisInconclusive", message, warning=True, key=run)
    return NOT_YET


def _shadow_complete(turn: turns.Turn, step: Step) -> Completion:
    """A shadow: the canary warm at its size for the mirrored load, the mirror on; then its analysis
    judges it on mirrored traffic like any analysis step (a Fail rolls back before any user saw it)."""
    canary = turn.workload(step.target.revision)
    warm, warm_at = turn.warm(canary, step.entry.canary_replicas)
    if not warm:
        label, replicas = step.entry.label, step.entry.canary_replicas
        return Completion(wake_at=_wait_for_warm(turn, step.target, label, canary, replicas, warm_at))
    return _analysis_complete(turn, step)


IS_COMPLETE: dict[planning.StepKind, Callable[[turns.Turn, Step], Completion]] = {
    planning.StepKind.WEIGHT: _weight_complete,
    planning.StepKind.PAUSE: _pause_complete,
    planning.StepKind.APPROVAL: _approval_complete,
    planning.StepKind.ANALYSIS: _analysis_complete,
    planning.StepKind.SHADOW: _shadow_complete,
    planning.StepKind.HEADER_ROUTE: _weight_complete,
}


# ---- promotion ------------------------------------------------------------------------------------


def _promote_when_warm(turn: turns.Turn, step: Step) -> turns.Move:
    st = turn.status
    target, entry = step.target, step.entry
    if st.phase != Phase.PROMOTING:
        turn.change(changes.promoting(st))
        return turn.move()
    canary = turn.workload(target.revision)
    warm, warm_at = turn.warm(canary, entry.canary_replicas)
    if not warm or not _traffic_reached(turn, step):
        return turn.move(_wait_for_warm(turn, target, "promotion", canary, entry.canary_replicas, warm_at))
    assert st.stable_revision is not None
    previous = turn.workload_name(st.stable_revision)
    retire_at = turn.now + turn.scale_down_delay()
    message = (
        f"model {target.model_version} (revision {target.revision}) promoted; "
        f"previous stable {previous} is removed at {retire_at.isoformat()}"
    )
    retiring = releasestatus.Retiring(name=previous, at=retire_at)
    turn.stop_running_analyses("the rollout was promoted")  # a background analysis ends here
    turn.change(changes.promoted(turn.status, target, entry.canary_replicas, retiring, message, turn.now))
    endings.owe_promotion(turn, target)
    endings.owe_rollout_run(turn, target)
    turn.notify(actions.NotificationEvent.PROMOTED, target.revision, "promoted", message)
    turn.event("Promoted", message, key="promoted")
    return turn.move()


# ---- shared by the checks -----------------------------------------------------------------------


def _traffic_reached(turn: turns.Turn, step: Step) -> bool:
    """Traffic is at least where the status says (ahead is fine: a status not yet written)."""
    seen, wanted = turn.obs.traffic, step.traffic
    if seen is None:
        return False
    same_arms = (seen.stable_revision, seen.canary_revision) == (
        wanted.stable_revision,
        wanted.canary_revision,
    )
    same_routes = (seen.mirror_percent, seen.header_route) == (wanted.mirror_percent, wanted.header_route)
    return same_arms and same_routes and seen.canary_weight >= wanted.canary_weight


def _wait_for_warm(
    turn: turns.Turn,
    target: changes.Target,
    label: str,
    workload: observations.Workload | None,
    replicas: int,
    warm_at: datetime | None,
) -> datetime | None:
    """Wait for the workload to be warm, or roll back once the progress deadline has passed."""
    deadline = turn.deadline()
    if turn.now >= deadline:
        name = turn.workload_name(target.revision)
        message = f"{label}: {turn.readiness(name, workload, replicas)} after {turn.deadline_text()}"
        endings.roll_back(turn, target, "ProgressDeadlineExceeded", message)
        return None
    return turns.earliest(deadline, warm_at)


def _canary_lost(turn: turns.Turn, canary_name: str, stable_name: str) -> bool:
    """The canary carries weight but has no Ready pod (deleted by hand, every pod crashed) while
    stable could serve: its users get errors, whatever the status says."""
    st = turn.status
    sheltering = st.reason == CANARY_UNAVAILABLE  # its weight is already taken away
    carries_weight = st.canary_weight > 0 and (turn.obs.traffic is None or turn.obs.traffic.canary_weight > 0)
    if not (sheltering or carries_weight):
        return False
    canary = turn.obs.workloads.get(canary_name)
    stable = turn.obs.workloads.get(stable_name)
    return (canary is None or canary.ready_replicas == 0) and stable is not None and stable.ready_replicas > 0


def _shelter_on_stable(turn: turns.Turn, step: Step, wants: dict[str, Want]) -> turns.Move:
    """Route everything to stable until the canary is Ready again; a running analysis of this step
    is dropped, to start afresh on traffic the canary really serves."""
    st = turn.status
    if st.reason != CANARY_UNAVAILABLE:
        dropped = tuple(r.run for r in st.analysis if r.step_index == step.index and r.finished_at is None)
        turn.act(*(actions.StopAnalysis(run=run) for run in dropped))
        name = turn.workload_name(step.target.revision)
        message = (
            f"canary {name} has no Ready pod at {turn.step_label()}: all traffic back on stable "
            "until it is Ready" + ("; the analysis starts again then" if dropped else "")
        )
        turn.change(changes.sheltered(st, dropped, CANARY_UNAVAILABLE, message))
        turn.event(CANARY_UNAVAILABLE, message, warning=True)
        return turn.move()
    shelter = actions.SetTrafficWeight(
        stable_revision=step.traffic.stable_revision, canary_revision=step.target.revision, canary_weight=0
    )
    converge.converge(turn, wants, shelter)
    return turn.move(turn.now + turns.POLL)


def _approvals_for(
    turn: turns.Turn, index: int, target: changes.Target
) -> list[observations.ObservedApproval]:
    """Decisions on this gate of this attempt, oldest first."""
    started = turn.status.rollout_started_at
    assert started is not None
    # creationTimestamp has whole seconds: an approval made in the second the attempt began counts.
    since = started.replace(microsecond=0)
    return sorted(
        (
            a
            for a in turn.obs.approvals
            if a.revision == target.revision and a.step == index and a.created_at >= since
        ),
        key=lambda a: (a.created_at, a.name),
    )


def _report_mismatched_approvals(turn: turns.Turn, index: int, target: changes.Target) -> None:
    """An Approval made for this release during this attempt that does not name the waiting gate
    is reported once (an Event on it and the status message), never silently ignored."""
    started = turn.status.rollout_started_at
    assert started is not None
    since = started.replace(microsecond=0)
    for approval in turn.obs.approvals:
        if approval.created_at < since or (approval.revision, approval.step) == (target.revision, index):
            continue
        key = turn.once_key(target.revision, f"ignored-{approval.name}")
        if key in turn.status.notifications:
            continue
        wrong = []
        if approval.revision != target.revision:
            wrong.append(f"revision {approval.revision} (waiting: {target.revision})")
        if approval.step != index:
            wrong.append(f"step {approval.step} (waiting: {index})")
        message = f"Approval {approval.name} ignored: it names {' and '.join(wrong)}"
        waiting = f"{message}; still waiting for step {index} of revision {target.revision}"
        turn.change(changes.said(changes.noted(turn.status, key), turn.status.reason, waiting))
        turn.event(
            "ApprovalIgnored", message, warning=True, key=approval.name, regarding_approval=approval.name
        )


def _report_late_approvals(turn: turns.Turn, index: int, target: changes.Target) -> None:
    """An Approval for a gate that already timed out and closed decides nothing; say so once (an
    Event on it), with what does decide now."""
    counted = {record.via for record in turn.status.approvals}
    for approval in _approvals_for(turn, index, target):
        key = turn.once_key(target.revision, f"late-{approval.name}")
        if approval.name in counted or key in turn.status.notifications:
            continue
        message = (
            f"Approval {approval.name} ({approval.decision.value} by {approval.by}) came after step {index} "
            f"timed out and closed: it decides nothing now; kubectl modelrelease promote continues, "
            "abort rolls back"
        )
        turn.change(changes.noted(turn.status, key))
        turn.event(
            "ApprovalIgnored", message, warning=True, key=approval.name, regarding_approval=approval.name
        )


PAST = {releasestatus.ApprovalDecision.APPROVE: "approved", releasestatus.ApprovalDecision.REJECT: "rejected"}


def record_approval(
    turn: turns.Turn,
    target: changes.Target,
    decision: releasestatus.ApprovalDecision,
    by: str,
    via: str,
    at: datetime | None = None,
    reason: str = "",
    *,
    closes_gate: bool = True,
    quorum: tuple[int, int] = (1, 1),
    identity: str | None = None,
) -> None:
    record = releasestatus.ApprovalRecord(
        step_index=turn.status.current_step_index or 0,
        revision=target.revision,
        decision=decision,
        by=by,
        identity=identity,
        at=at or turn.now,
        via=via,
        reason=reason,
    )
    turn.change(changes.approval_recorded(turn.status, record))
    turn.event("Approval", f"{decision.value} by {by} via {via}")
    why = f": {reason}" if reason else ""
    count = f" ({quorum[0]} of {quorum[1]})" if quorum[1] > 1 else ""
    turn.notify(
        actions.NotificationEvent.APPROVAL,
        target.revision,
        f"approval-{record.step_index}-{decision.value}-{by}",
        f"step {record.step_index} {PAST[decision]} by {by}{count} (via {via}){why}",
        step_index=record.step_index,
        closes_gate=closes_gate,
    )


def _keep_analysis_running(turn: turns.Turn) -> bool:
    """An analysis the status says is running must be running (e.g. after a restart)."""
    restarted = False
    for record in turn.status.analysis:
        if (
            record.verdict == Verdict.RUNNING
            and record.finished_at is None
            and record.run not in turn.obs.analysis
        ):
            turn.act(turns.build_analysis_run(turn.spec, turn.status, record, turn.plan))
            restarted = True
    return restarted
