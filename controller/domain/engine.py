"""`reconcile`: the one entry point of the pure core.

It calls the state machine until a move acts or nothing more moves: status-only moves are
chained, and the first move with actions (or marked a checkpoint) ends the decision. The shell
executes those actions, writes the status and reconciles again at once (`requeue_after` zero), so
the world is never more than one move ahead of status, whatever instant the controller is killed
at — the machine's resume rules are built for exactly that.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.domain import actions, conditions, delivery, machine
from controller.domain import decision as decisions
from controller.domain import observations as obs_
from controller.resources import modelrelease, releasestatus

MAX_MOVES = 200  # far above any real chain of moves; reaching it is a bug in the machine


class EngineDidNotSettleError(RuntimeError):
    """The machine kept moving on one snapshot: a transition is not guarded by state."""


def reconcile(
    spec: modelrelease.ModelReleaseSpec,
    status: releasestatus.ModelReleaseStatus,
    observations: obs_.Observations,
    *,
    now: datetime,
) -> decisions.Decision:
    """Decide up to the first move that acts; `requeue_after` zero says more moves are due at once.

    Deciding several acting moves at once would let a process killed between executing them and
    writing status, again and again, run the world several moves ahead of status (docs/testing.md).
    """
    done: tuple[actions.Action, ...] = ()
    events: list[decisions.Event] = []
    stopped_early = False
    for _ in range(MAX_MOVES):
        move = machine.advance(spec, status, observations, now)
        if not move.actions and move.status == status:
            break
        events.extend(move.events)
        status = move.status
        if move.actions or move.checkpoint:
            done = move.actions
            stopped_early = True
            break
    else:
        raise EngineDidNotSettleError(f"no fixed point after {MAX_MOVES} moves; last status {status!r}")
    status = _observed(conditions.recovered(status, now), observations.release.generation, now)
    status = delivery.record_delivery(status, observations.notifications, now)
    requeue = build_requeue(move.wake_at, now, stopped_early=stopped_early)
    return decisions.Decision(actions=done, status=status, requeue_after=requeue, events=tuple(events))


def halt(
    status: releasestatus.ModelReleaseStatus, reason: str, message: str, *, generation: int, now: datetime
) -> decisions.Decision:
    """The release cannot be reconciled until someone edits it: its spec does not validate, or the API
    refuses what it asks for good (a quota, an admission webhook, a forbidden call).

    Blocked while a stable revision serves (the new rollout is stuck, the service is not down), else
    Failed; whatever was under way is kept to resume from after the edit. The conditions are built
    as for every other decision, so a Succeeded release whose spec turns invalid reads `Ready=False`
    with the reason. A Warning Event says it (posted once: its name is the reason and message).
    """
    phase = releasestatus.Phase.BLOCKED if status.stable_revision else releasestatus.Phase.FAILED
    halted = _observed(machine.changes.halted(status, phase, reason, message), generation, now)
    warning = decisions.Event(type=decisions.EventType.WARNING, reason=reason, message=message)
    return decisions.Decision(actions=(), status=halted, requeue_after=None, events=(warning,))


def reconcile_failed(
    status: releasestatus.ModelReleaseStatus, reason: str, message: str, *, now: datetime
) -> decisions.Decision:
    """A reconcile that failed on something passing (the API or a backend timing out): the phase stays,
    the `ReconcileError` condition says what failed and since when; the next reconcile that goes
    through turns it False (`conditions.recovered`)."""
    failing = status.model_copy(
        update={"conditions": conditions.reconcile_failing(status, reason, message, now)}
    )
    return decisions.Decision(actions=(), status=failing, requeue_after=None)


def _observed(
    status: releasestatus.ModelReleaseStatus, generation: int, now: datetime
) -> releasestatus.ModelReleaseStatus:
    status = status.model_copy(update={"observed_generation": generation})
    return status.model_copy(update={"conditions": conditions.build_conditions(status, generation, now)})


def build_requeue(wake_at: datetime | None, now: datetime, *, stopped_early: bool) -> timedelta | None:
    """When to look again. Zero only when the decision stopped at a move that acts: the next is due now.

    At a fixed point a wake-up that is already due cannot change anything by time alone: every
    `now >= moment` test it stands for already holds, so what the machine waits for is the world
    (a watch event wakes the shell) and the poll interval is soon enough. Requeueing at zero
    there would spin as fast as the API answers.
    """
    if stopped_early:
        return timedelta(0)
    if wake_at is None:
        return None
    if wake_at <= now:
        return machine.POLL
    return wake_at - now
