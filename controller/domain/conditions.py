"""Kubernetes-convention conditions derived from the phase: Ready, Progressing, Degraded; and
`ReconcileError`, True while reconciling fails on something passing.

A condition's lastTransitionTime moves only when its status flips, as kubectl users expect.
"""

from __future__ import annotations

from datetime import datetime

from controller.resources import meta, releasestatus

Phase = releasestatus.Phase
_DEGRADED = frozenset({Phase.ROLLED_BACK, Phase.BLOCKED, Phase.FAILED})


def build_conditions(
    status: releasestatus.ModelReleaseStatus, generation: int | None, now: datetime
) -> tuple[meta.Condition, ...]:
    reason = status.reason or status.phase.value
    wanted = (
        ("Ready", status.phase == Phase.SUCCEEDED, reason),
        (
            "Progressing",
            status.phase in releasestatus.ROLLOUT_PHASES or status.phase == Phase.PENDING,
            reason,
        ),
        ("Degraded", status.phase in _DEGRADED, reason),
    )
    previous = {c.type: c for c in status.conditions}
    owned = {kind for kind, _, _ in wanted}
    built = []
    for kind, is_true, why in wanted:
        value = meta.ConditionStatus.TRUE if is_true else meta.ConditionStatus.FALSE
        before = previous.get(kind)
        since = before.last_transition_time if before is not None and before.status == value else now
        built.append(
            meta.Condition(
                type=kind,
                status=value,
                reason=why,
                message=status.message,
                last_transition_time=since,
                observed_generation=generation,
            )
        )
    # Conditions not derived from the phase (ReconcileError) are kept as they are.
    built.extend(c for c in status.conditions if c.type not in owned)
    return tuple(built)


RECONCILE_ERROR = "ReconcileError"


def reconcile_failing(
    status: releasestatus.ModelReleaseStatus, reason: str, message: str, now: datetime
) -> tuple[meta.Condition, ...]:
    """`ReconcileError` True with what failed; its transition time is when it started failing."""
    previous = next((c for c in status.conditions if c.type == RECONCILE_ERROR), None)
    failing = previous is not None and previous.status == meta.ConditionStatus.TRUE
    since = previous.last_transition_time if previous is not None and failing else now
    condition = meta.Condition(
        type=RECONCILE_ERROR,
        status=meta.ConditionStatus.TRUE,
        reason=reason,
        message=message,
        last_transition_time=since,
    )
    return (*(c for c in status.conditions if c.type != RECONCILE_ERROR), condition)


def recovered(status: releasestatus.ModelReleaseStatus, now: datetime) -> releasestatus.ModelReleaseStatus:
    """After a reconcile that went through, a ReconcileError condition that was True turns False."""
    failing = next((c for c in status.conditions if c.type == RECONCILE_ERROR), None)
    if failing is None or failing.status != meta.ConditionStatus.TRUE:
        return status
    cleared = failing.model_copy(
        update={
            "status": meta.ConditionStatus.FALSE,
            "reason": "Recovered",
            "message": f"reconciled again after: {failing.message}",
            "last_transition_time": now,
        }
    )
    return status.model_copy(
        update={"conditions": tuple(cleared if c.type == RECONCILE_ERROR else c for c in status.conditions)}
    )
