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
"""

from __future__ import annotations

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


class IllegalTransitionError(AssertionError):
    """A phase change the table does not list: a bug in the machine, never a user error."""


def check(current: Phase, new: Phase) -> None:
    if new != current and new not in ALLOWED[current]:
        raise IllegalTransitionError(f"{current.value} → {new.value} is not an allowed phase transition")
