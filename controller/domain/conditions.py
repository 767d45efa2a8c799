"""Kubernetes-convention conditions derived from the phase: Ready, Progressing, Degraded.

Other condition types in status belong to the shell and pass through unchanged.

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
    # Conditions the shell sets (e.g. ReconcileError) are kept as they are.
    built.extend(c for c in status.conditions if c.type not in owned)
    return tuple(built)
