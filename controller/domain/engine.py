"""`reconcile`: the one entry point of the pure core.

It calls the state machine until nothing more moves on this snapshot, applying its own
actions to the snapshot as it goes (`observations.project`), so a single call goes as far as
the world allows and replaying its decision on its own output yields no new actions.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.domain import actions, conditions, machine
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
    one_acting_move: bool = False,
) -> decisions.Decision:
    """Decide as far as this snapshot allows; with `one_acting_move`, stop after the first move that acts.

    The shell writes status after running a decision's actions. A process killed in between, again
    and again, would let the world run several moves ahead of status if each decision spanned many
    moves; deciding one acting move at a time keeps the world at most one move ahead of status,
    which the machine's resume rules are built for. The shell reconciles again at once.
    """
    done: list[actions.Action] = []
    events: list[decisions.Event] = []
    snapshot = observations
    stopped_early = False
    for _ in range(MAX_MOVES):
        move = machine.advance(spec, status, snapshot, now)
        if not move.actions and move.status == status:
            break
        done.extend(move.actions)
        events.extend(move.events)
        status = move.status
        snapshot = obs_.project(snapshot, move.actions)
        if one_acting_move and move.actions:
            stopped_early = True
            break
    else:
        raise EngineDidNotSettleError(f"no fixed point after {MAX_MOVES} moves; last status {status!r}")
    generation = observations.release.generation
    status = status.model_copy(update={"observed_generation": generation})
    status = status.model_copy(update={"conditions": conditions.build_conditions(status, generation, now)})
    requeue = build_requeue(move.wake_at, now, stopped_early=stopped_early)
    return decisions.Decision(actions=tuple(done), status=status, requeue_after=requeue, events=tuple(events))


def build_requeue(wake_at: datetime | None, now: datetime, *, stopped_early: bool) -> timedelta | None:
    """When to look again. Zero only when moves were left undone on purpose (`one_acting_move`).

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
