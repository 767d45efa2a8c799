"""How a rollout ends without promotion: rolled back (with its one-shot writes) or abandoned.

Both only change status here; the hold and steady paths then converge traffic back to stable
first and remove the canary after.
"""

from __future__ import annotations

from analysis import verdicts
from controller.domain import actions
from controller.domain.machine import changes
from controller.domain.machine import turn as turn_
from controller.resources import releasestatus


def roll_back(
    turn: turn_.Turn,
    target: changes.Target,
    reason: str,
    message: str,
    evidence: tuple[verdicts.MetricResult, ...] = (),
) -> None:
    """Give all traffic back to stable, tag the version, write Git back if asked, and say why."""
    st = turn.status
    turn.stop_running_analyses(f"rolled back: {reason}")
    turn.act(
        actions.TagRolledBack(model_name=turn.spec.model.name, version=target.model_version, reason=reason)
    )
    if turn.spec.git_write_back.enabled and st.stable_model_version is not None:
        turn.act(
            actions.WriteBackToGit(
                key=turn.once_key(target.revision, "writeback"),
                model_name=turn.spec.model.name,
                restore_version=st.stable_model_version,
                rolled_back_version=target.model_version,
                reason=f"{reason}: {message}",
            )
        )
    rollback = releasestatus.Rollback(
        revision=target.revision,
        model_version=target.model_version,
        reason=reason,
        message=message,
        at=turn.now,
        evidence=evidence,
    )
    turn.notify(actions.NotificationEvent.ROLLED_BACK, target.revision, "rolledback", f"{reason}: {message}")
    turn.change(changes.rolled_back(turn.status, rollback))
    turn.event(reason, message, warning=True, key="rolled-back")  # once per attempt


def abandon_canary(turn: turn_.Turn, reason: str, message: str) -> None:
    """The canary is no longer wanted (superseded, spec back at stable, model unresolvable)."""
    turn.stop_running_analyses("rollout abandoned")
    turn.change(changes.canary_cleared(turn.status))
    turn.event(reason, message)


def promote_model(turn: turn_.Turn, target: changes.Target) -> actions.PromoteModel:
    return actions.PromoteModel(
        model_name=turn.spec.model.name, version=target.model_version, alias=turn.spec.model.promote_alias
    )
