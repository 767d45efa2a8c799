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
) -> decisions.Decision:
    done: list[actions.Action] = []
    events: list[decisions.Event] = []
    snapshot = observations
    for _ in range(MAX_MOVES):
        move = machine.advance(spec, status, snapshot, now)
        if not move.actions and move.status == status:
            break
        done.extend(move.actions)
        events.extend(move.events)
        status = move.status
        snapshot = obs_.project(snapshot, move.actions)
    else:
        raise EngineDidNotSettleError(f"no fixed point after {MAX_MOVES} moves; last status {status!r}")
    generation = observations.release.generation
    status = status.model_copy(update={"observed_generation": generation})
    status = status.model_copy(update={"conditions": conditions.build_conditions(status, generation, now)})
    requeue = None if move.wake_at is None else max(move.wake_at - now, timedelta(0))
    return decisions.Decision(actions=tuple(done), status=status, requeue_after=requeue, events=tuple(events))
