"""Every state transition of a ModelRelease: the state machine, split by concern.

`advance` looks at the spec, the stored status and a snapshot of the world, and makes at most
one move: a status transition (with its one-shot actions: notify, registry, Git), or the
desired-state actions that bring the world in line with the status, or nothing (wait, with the
time to look again). The engine calls it until a move acts.

Order of precedence in one move: resolve the model; act on a fresh operator command; then the
situation — first deploy, steady on stable, holding a rollback, starting a rollout, or walking
the planned steps of one.

- `table`: the allowed phase transitions; every phase change passes it.
- `changes`: the named status changes, the only way status changes.
- `turn`: one turn's inputs, plan and accumulated decisions.
- `resolve`, `commands`, `situations`, `steps`, `endings`, `converge`, `proposals`: the deciding,
  by concern.
"""

from __future__ import annotations

from datetime import datetime

from controller.domain import actions, planning
from controller.domain import observations as obs_
from controller.domain.machine import (
    changes,
    endings,
    proposals,
    resolve,
    situations,
    steering,
    steps,
    table,
    turns,
)
from controller.resources import modelrelease, releasestatus

Phase = releasestatus.Phase
Move = turns.Move
POLL = turns.POLL
ALLOWED = table.ALLOWED


def advance(
    spec: modelrelease.ModelReleaseSpec,
    status: releasestatus.ModelReleaseStatus,
    observations: obs_.Observations,
    now: datetime,
) -> Move:
    move = _advance_release(spec, status, observations, now)
    # Last, when the release itself is settled, one at a time: what a rollback owes Git, what
    # rollouts owe the registry, a version the followed alias moved to, proposed in Git, the adopted
    # Deployment scaled to zero, and the size /scale reads.
    settles = (
        endings.write_back_owed,
        endings.registry_owed,
        proposals.propose_owed,
        situations.idle_adopted,
        situations.size_said,
    )
    for settle in settles:
        if move.actions or move.status != status:
            return move
        move = settle(turns.Turn(spec, status, observations, now), move)
    return move


def _advance_release(
    spec: modelrelease.ModelReleaseSpec,
    status: releasestatus.ModelReleaseStatus,
    observations: obs_.Observations,
    now: datetime,
) -> Move:
    turn = turns.Turn(spec, status, observations, now)
    target = resolve.resolve(turn)
    if target is None:
        return resolve.without_target(turn)
    if steering.act_on_commands(turn, target):
        return turn.move()
    st = turn.status
    if st.revision != target.revision:
        turn.change(changes.revision_seen(st, target.revision))
        return turn.move()
    if st.stable_revision is None:
        return situations.first_deploy(turn, target)
    if target.revision == st.stable_revision:
        return situations.steady(turn, target)
    rolled_back = st.last_rollback is not None and st.last_rollback.revision == target.revision
    if st.phase == Phase.ROLLED_BACK and rolled_back:
        return situations.hold(turn)
    if st.canary_revision != target.revision:
        return situations.begin(turn, target)
    return steps.progress(turn, target)


def build_running_analyses(
    spec: modelrelease.ModelReleaseSpec, status: releasestatus.ModelReleaseStatus
) -> tuple[actions.StartAnalysis, ...]:
    """The runs the status says are running, as the descriptors the analysis backend is asked about.

    A run the current spec no longer describes (its steps were edited, the plan no longer fits) is
    left out: this reconcile stops it.
    """
    if status.canary_revision is None or status.stable_revision is None:
        return ()
    plan = planning.plan_against_status(spec, status)
    if isinstance(plan, planning.Refusal):
        return ()
    return tuple(
        turns.build_analysis_run(spec, status, record, plan)
        for record in status.analysis
        if record.finished_at is None
        and record.step_index < len(plan.steps)
        and plan.steps[record.step_index].analysis is not None
    )
