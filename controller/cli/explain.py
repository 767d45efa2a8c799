"""`kubectl modelrelease explain NAME`: in one paragraph, why the release is where it is and what it
waits for — from its spec and status alone (pure: the release in, the paragraph out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from analysis import verdicts
from controller.cli import gitstate, textformat
from controller.domain import planning
from controller.resources import modelrelease, releasestatus

Phase = releasestatus.Phase


def explain(release: dict[str, Any], now: datetime, source: dict[str, Any] | None = None) -> str:
    """`source`: the GitSource that applied the release, when one did (what it says of the release)."""
    name = release["metadata"]["name"]
    namespace = release["metadata"].get("namespace", "")
    spec = modelrelease.ModelReleaseSpec.model_validate(release["spec"])
    st = releasestatus.ModelReleaseStatus.model_validate(release.get("status") or {})
    said = [f"{name} is {st.phase.value}" + (f" ({st.reason})" if st.reason else "") + _period(st.message)]
    if st.phase == Phase.PENDING:
        said.append(
            "The controller has not reconciled it yet: is a controller running and watching this namespace?"
        )
    elif st.phase in releasestatus.ROLLOUT_PHASES:
        said += _rollout(spec, st, name, namespace, now)
    elif st.phase == Phase.SUCCEEDED:
        said.append(
            f"Model {st.stable_model_version} (revision {st.stable_revision}) serves all traffic; "
            "it waits for nothing."
        )
        said += _last_rollout(st)
    elif st.phase == Phase.ROLLED_BACK:
        said.append(f"Model {st.stable_model_version} serves all traffic again.")
        said += _last_rollout(st)
        said.append(
            f"It waits for a new spec, or `kubectl modelrelease retry {name} -n {namespace}` "
            "to try the same revision again."
        )
    elif st.phase == Phase.BLOCKED:
        said.append(
            f"Model {st.stable_model_version or '-'} keeps serving; the new revision starts by itself once "
            "what blocks it is fixed (the budget, the model's gates, the route), or with a new spec."
        )
    elif st.phase == Phase.FAILED:
        said.append("Nothing serves as the spec asks; it waits for a corrected spec or a retry.")
    said += _owed(st)
    said += gitstate.describe(release, source)
    return " ".join(said)


def _period(message: str) -> str:
    return f": {message.rstrip('.')}." if message else "."


def _rollout(
    spec: modelrelease.ModelReleaseSpec,
    st: releasestatus.ModelReleaseStatus,
    name: str,
    namespace: str,
    now: datetime,
) -> list[str]:
    said = [
        f"It is rolling model {st.canary_model_version} (revision {st.canary_revision}) out over model "
        f"{st.stable_model_version} with {st.canary_weight}% of users on the canary."
    ]
    plan = planning.plan_against_status(spec, st)
    index = st.current_step_index
    if isinstance(plan, planning.Refusal) or index is None:
        return said
    if index >= len(plan.steps):
        said.append("Every step is complete; it waits for the canary to be scaled up as the new stable.")
        return said
    step = plan.steps[index]
    since = (
        f" for {textformat.duration((now - st.step_started_at).total_seconds())}"
        if st.step_started_at
        else ""
    )
    # The label numbers steps from 0, as status, Events and `kubectl modelrelease status` do.
    said.append(f"It is at {step.label}, the {_ordinal(index + 1)} of {len(plan.steps)} steps{since}.")
    said.append(_waits_for(step, st, name, namespace))
    return said


def _waits_for(
    step: planning.PlannedStep, st: releasestatus.ModelReleaseStatus, name: str, namespace: str
) -> str:
    kind = step.kind
    if kind == planning.StepKind.PAUSE:
        if step.pause is None:
            return f"It waits for a person: `kubectl modelrelease promote {name} -n {namespace}` goes on."
        return (
            f"It waits out a {textformat.duration(step.pause.total_seconds())} pause, then goes on by itself."
        )
    if kind == planning.StepKind.APPROVAL and step.approval is not None:
        given = sum(
            1
            for a in st.approvals
            if a.step_index == st.current_step_index and a.decision == releasestatus.ApprovalDecision.APPROVE
        )
        return (
            f"It waits for {step.approval.approvals - given} more approval(s): "
            f"`kubectl modelrelease approve {name} -n {namespace}` or the Approve button in Slack."
        )
    running = [a for a in st.analysis if a.step_index == st.current_step_index and a.finished_at is None]
    if kind in (planning.StepKind.ANALYSIS, planning.StepKind.SHADOW) and running:
        record = running[-1]
        undecided = [m.name for m in record.metrics if m.verdict != verdicts.Verdict.PASS]
        evidence = f" ({record.rule})" if record.rule else ""
        on = f" on {', '.join(undecided)}" if undecided else ""
        return (
            f"It waits for the judge: analysis {record.template} is collecting evidence{on}{evidence}; "
            "it promotes on Pass and rolls back on Fail by itself."
        )
    return "It waits for the canary's pods to be Ready and warmed up, and for the traffic to be in place."


def _last_rollout(st: releasestatus.ModelReleaseStatus) -> list[str]:
    if not st.history:
        return []
    last = st.history[-1]
    waited = (
        f", {textformat.duration(last.waited_for_people_seconds)} of it waiting for people"
        if last.waited_for_people_seconds
        else ""
    )
    took = (
        f" after {textformat.duration((last.ended_at - last.started_at).total_seconds())}{waited}"
        if last.started_at
        else ""
    )
    return [
        f"The last rollout (model {last.model_version or '-'} from {last.from_model_version or '-'}) ended "
        f"{last.outcome.value} ({last.reason}){took}."
    ]


def _owed(st: releasestatus.ModelReleaseStatus) -> list[str]:
    owed = []
    write_back = st.last_rollback.git_write_back if st.last_rollback is not None else None
    if write_back is not None and not write_back.settled:
        owed.append(f"the Git write-back restoring version {write_back.restore_version}")
    if st.registry_owed:
        owed.append(f"{len(st.registry_owed)} registry update(s)")
    if st.proposal is not None and not st.proposal.commit and not st.proposal.held:
        owed.append(f"the Git commit proposing version {st.proposal.version}")
    return [f"Still owed, retried until done: {'; '.join(owed)}."] if owed else []


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
