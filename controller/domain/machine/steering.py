"""Operator commands: abort, promote, promote --full and retry, each token acted on once.

A command that does not apply where the rollout is (abort with no rollout, promote at a setWeight
step) is said in an Event and otherwise ignored; its token is still handled, so it is not acted on
later by surprise.
"""

from __future__ import annotations

from controller.domain import planning
from controller.domain.machine import changes, endings, steps, turns
from controller.resources import commands, releasestatus

Command = commands.Command
Phase = releasestatus.Phase


def act_on_commands(turn: turns.Turn, target: changes.Target) -> bool:
    """Act on the first fresh command, in this precedence; True if one was taken."""
    for command, handler in (
        (Command.RETRY, _retry),
        (Command.ABORT, _abort),
        (Command.PROMOTE_FULL, _promote_full),
        (Command.PROMOTE, _promote),
    ):
        if _take(turn, command):
            handler(turn, target)
            return True
    return _report_unknown(turn, target)


def _take(turn: turns.Turn, command: Command) -> bool:
    """True once per fresh command token; the token is then recorded as handled."""
    token = turn.obs.commands.tokens.get(command)
    if token is None or token == turn.status.handled_commands.token(command):
        return False
    turn.change(changes.command_handled(turn.status, command, token))
    return True


def _report_unknown(turn: turns.Turn, target: changes.Target) -> bool:
    """A misspelt command annotation is said once per token (and per rollout), never ignored silently."""
    reported = False
    for entry in turn.obs.commands.unknown:
        key = turn.once_key(target.revision, f"unknown-command/{entry}")
        if key in turn.status.notifications:
            continue
        annotation = entry.partition("=")[0]
        turn.change(changes.noted(turn.status, key))
        turn.event(
            "UnknownCommand",
            f"annotation {annotation} is not a command (known: {commands.describe_known()}); it is ignored",
            warning=True,
            key=entry,
        )
        reported = True
    return reported


def _retry(turn: turns.Turn, target: changes.Target) -> None:
    if turn.status.phase in (Phase.ROLLED_BACK, Phase.FAILED, Phase.BLOCKED):
        turn.change(changes.retry_requested(turn.status, turn.now))
        turn.event("RetryRequested", f"retrying revision {target.revision}")
    else:
        turn.event("RetryIgnored", f"nothing to retry in phase {turn.status.phase.value}")


def _abort(turn: turns.Turn, target: changes.Target) -> None:
    if turn.in_rollout(target):
        endings.roll_back(turn, target, "Aborted", f"aborted by an operator at {turn.step_label()}")
    else:
        turn.event("AbortIgnored", f"no rollout in progress (phase {turn.status.phase.value})")


def _promote_full(turn: turns.Turn, target: changes.Target) -> None:
    plan = turn.plan
    if not turn.in_rollout(target) or isinstance(plan, planning.Refusal):
        turn.event("PromoteIgnored", f"no rollout to promote (phase {turn.status.phase.value})")
        return
    turn.stop_running_analyses("skipped by promote --full")
    steps.record_approval(turn, target, releasestatus.ApprovalDecision.APPROVE, "operator", "promote-full")
    turn.change(changes.promoted_full(turn.status, len(plan.steps), turn.now))
    turn.event("PromotedFull", "remaining steps skipped by an operator")


def _promote(turn: turns.Turn, target: changes.Target) -> None:
    """Past the current gate (pause, approval, analysis): the step is complete."""
    plan = turn.plan
    index = turn.status.current_step_index
    if (
        not turn.in_rollout(target)
        or isinstance(plan, planning.Refusal)
        or index is None
        or index >= len(plan.steps)
        or plan.steps[index].kind in (planning.StepKind.WEIGHT, planning.StepKind.HEADER_ROUTE)
    ):
        turn.event("PromoteIgnored", f"no gate to promote past at {turn.step_label()}")
        return
    entry = plan.steps[index]
    turn.stop_running_analyses("skipped by promote")
    if entry.kind == planning.StepKind.APPROVAL:
        steps.record_approval(turn, target, releasestatus.ApprovalDecision.APPROVE, "operator", "promote")
    steps.complete_step(turn, target, index, entry)
