"""The phase transitions a ModelRelease may make: the one table every phase change passes.

Read it as the rollout's life. From the stable phases (Succeeded, RolledBack) a release starts a
rollout, or waits without one. A rollout walks Progressing, Paused, AwaitingApproval and Promoting
and ends Succeeded (promoted, or the spec went back to stable) or RolledBack. The halted phases —
Pending (waiting: the registry, a retry), Blocked (the new revision cannot start, stable serves)
and Failed (nothing serves as the spec asks, or the object itself is invalid) — can be entered from
anywhere, because the registry, the spec and the API can fail at any moment; a rollout halted mid-way
keeps its canary and resumes where it was, which is why they lead back to every phase.

Same-phase changes (the next step, a new reason) are not phase changes and are not listed.
docs/architecture.md draws this table; a test holds the two together.

Every phase change is also named: `Event` lists what moves a release (a step completed, a halt, a
promotion…), each with the phases it may lead to, and `TRANSITIONS`, keyed by (phase, event), is
what a status change is checked against — an event unlisted for the current phase, or a phase the
event does not lead to, raises. Its pairs are ALLOWED's, each split by the events that reach it.
"""

from __future__ import annotations

import enum

from controller.resources import releasestatus

Phase = releasestatus.Phase

HALTED = frozenset({Phase.PENDING, Phase.BLOCKED, Phase.FAILED})
EVERY = frozenset(Phase)


def _except(phase: Phase, *others: Phase) -> frozenset[Phase]:
    return EVERY - {phase, *others}


ALLOWED: dict[Phase, frozenset[Phase]] = {
    # Halted: a retry, a fix of the spec, the budget or the route, or the registry answering, resumes
    # whatever was under way — a first deploy, any step of a rollout, its promotion or its rollback.
    Phase.PENDING: _except(Phase.PENDING),
    Phase.BLOCKED: _except(Phase.BLOCKED),
    Phase.FAILED: _except(Phase.FAILED),
    # Walking the steps. Progressing enters every kind of step; a pause or an inconclusive analysis
    # (Paused) and an approval gate (AwaitingApproval) lead back to Progressing, or to Promoting
    # (their step was the last, or promote --full). Any of them may roll back, be superseded by a
    # new revision (Progressing again), see the spec go back to stable (Succeeded) or halt. An
    # approval gate whose timeout passed with `onTimeout: pause` closes (Paused) until an operator.
    Phase.PROGRESSING: _except(Phase.PROGRESSING),
    Phase.PAUSED: _except(Phase.PAUSED, Phase.AWAITING_APPROVAL),
    Phase.AWAITING_APPROVAL: _except(Phase.AWAITING_APPROVAL),
    Phase.PROMOTING: _except(Phase.PROMOTING, Phase.PAUSED, Phase.AWAITING_APPROVAL),
    # Stable: a new revision starts a rollout (Progressing) or halts before it starts; a rolled-back
    # release is Succeeded again when the spec returns to the stable revision (Git write-back).
    Phase.SUCCEEDED: HALTED | {Phase.PROGRESSING},
    Phase.ROLLED_BACK: HALTED | {Phase.PROGRESSING, Phase.SUCCEEDED},
}


class Event(enum.Enum):
    """What changes a release's phase; the value says it as the diagram does."""

    HALTED = "halted: the plan does not fit, the model is unresolvable, the spec is invalid, an API error"
    SPEC_AT_STABLE = "the spec is back at the stable revision"
    RETRY = "retry requested"
    FIRST_DEPLOY_STARTED = "first deploy started"
    FIRST_DEPLOY_WARM = "first deploy warm"
    ROLLOUT_STARTED = "a new revision's rollout started"
    STEPS_EDITED = "steps edited mid-rollout: back to step 0"
    PAUSED = "pause step, analysis Inconclusive or maxDuration reached, approval timed out"
    APPROVAL_STEP = "approval step reached"
    ANALYSIS_STARTED = "analysis step started"
    STEP_COMPLETED = "step completed"
    PROMOTE_FULL = "promote --full"
    LAST_STEP_DONE = "every step complete"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled back"


# The phases each event may lead to.
TARGETS: dict[Event, frozenset[Phase]] = {
    Event.HALTED: HALTED,
    Event.SPEC_AT_STABLE: frozenset({Phase.SUCCEEDED}),
    Event.RETRY: frozenset({Phase.PENDING}),
    Event.FIRST_DEPLOY_STARTED: frozenset({Phase.PROGRESSING}),
    Event.FIRST_DEPLOY_WARM: frozenset({Phase.SUCCEEDED}),
    Event.ROLLOUT_STARTED: frozenset({Phase.PROGRESSING}),
    Event.STEPS_EDITED: frozenset({Phase.PROGRESSING}),
    Event.PAUSED: frozenset({Phase.PAUSED}),
    Event.APPROVAL_STEP: frozenset({Phase.AWAITING_APPROVAL}),
    Event.ANALYSIS_STARTED: frozenset({Phase.PROGRESSING}),
    Event.STEP_COMPLETED: frozenset({Phase.PROGRESSING, Phase.PROMOTING}),
    Event.PROMOTE_FULL: frozenset({Phase.PROMOTING}),
    Event.LAST_STEP_DONE: frozenset({Phase.PROMOTING}),
    Event.PROMOTED: frozenset({Phase.SUCCEEDED}),
    Event.ROLLED_BACK: frozenset({Phase.ROLLED_BACK}),
}

# The phases an event can happen in, where the machine guards it (every phase otherwise: a halted
# rollout resumes into whatever was under way, so most events also come from the halted phases).
# Narrowed only where the code that raises the event checks the phase first; a pair left out that
# the machine can reach would fail every reconcile of that release.
SOURCES: dict[Event, frozenset[Phase]] = {
    Event.RETRY: frozenset({Phase.ROLLED_BACK, Phase.FAILED, Phase.BLOCKED}),  # steering._retry
    Event.PROMOTED: frozenset({Phase.PROMOTING}),  # steps._promote_when_warm: Promoting first
    Event.FIRST_DEPLOY_WARM: EVERY - {Phase.FAILED},  # situations.first_deploy leaves Failed alone
}

# (phase, event) → the phases that event may lead to from that phase (the phase itself included: an
# event may leave the phase as it is, like the next step of Progressing). A pair not listed raises.
TRANSITIONS: dict[tuple[Phase, Event], frozenset[Phase]] = {
    (phase, event): reachable
    for event, targets in TARGETS.items()
    for phase in SOURCES.get(event, EVERY)
    if (reachable := targets & (ALLOWED[phase] | {phase}))
}


class IllegalTransitionError(AssertionError):
    """A phase change the table does not list: a bug in the machine, never a user error."""


def check(current: Phase, event: Event, new: Phase) -> None:
    reachable = TRANSITIONS.get((current, event))
    if reachable is None:
        raise IllegalTransitionError(
            f"{current.value} → {new.value} ({event.name}): {event.name} is not an event of {current.value}"
        )
    if new not in reachable:
        raise IllegalTransitionError(
            f"{current.value} → {new.value} ({event.name}) is not an allowed phase transition"
        )
