"""How a rollout ends without promotion: rolled back (with its one-shot writes) or abandoned.

Both only change status here; the hold and steady paths then converge traffic back to stable
first and remove the canary after.
"""

from __future__ import annotations

from datetime import timedelta

from analysis import verdicts
from controller.domain import actions
from controller.domain.machine import changes, turns
from controller.domain.machine.turns import earliest
from controller.resources import releasestatus


def roll_back(
    turn: turns.Turn,
    target: changes.Target,
    reason: str,
    message: str,
    evidence: tuple[verdicts.MetricResult, ...] = (),
) -> None:
    """Give all traffic back to stable, tag the version, write Git back if asked, and say why."""
    st = turn.status
    turn.stop_running_analyses(f"rolled back: {reason}")
    owe_registry(
        turn,
        releasestatus.RegistryWrite(
            key=turn.once_key(target.revision, "registry-rolled-back"),
            model_name=turn.spec.model.name,
            version=target.model_version,
            reason=reason,
        ),
    )
    owed = None
    follows_alias = turn.spec.model.version is None
    if turn.spec.git_write_back.enabled and follows_alias:
        turn.event(
            "GitWriteBackSkipped",
            f"the release follows alias {turn.spec.model.alias}: no version in Git to restore",
            key="writeback-skipped",
        )
    elif turn.spec.git_write_back.enabled and st.stable_model_version is not None:
        # Owed, not done here: the commit waits until traffic is back on stable (write_back_owed),
        # so a Git outage can never hold a canary that failed.
        owed = releasestatus.GitWriteBack(
            key=turn.once_key(target.revision, "writeback"),
            model_name=turn.spec.model.name,
            restore_version=st.stable_model_version,
            rolled_back_version=target.model_version,
            reason=f"{reason}: {message}",
            evidence=tuple(describe_failure(m) for m in evidence if m.verdict == verdicts.Verdict.FAIL),
        )
    rollback = releasestatus.Rollback(
        revision=target.revision,
        model_version=target.model_version,
        reason=reason,
        message=message,
        at=turn.now,
        evidence=evidence,
        git_write_back=owed,
    )
    turn.notify(actions.NotificationEvent.ROLLED_BACK, target.revision, "rolledback", f"{reason}: {message}")
    turn.change(changes.rolled_back(turn.status, rollback))
    owe_rollout_run(turn, target)
    turn.event(reason, message, warning=True, key="rolled-back")  # once per attempt


WRITE_BACK_RETRY = timedelta(minutes=1)
WRITE_BACK_MAX_RETRY = timedelta(minutes=30)


def describe_failure(metric: verdicts.MetricResult) -> str:
    """One failing metric in a line: the arms, the effect with its interval, the evidence."""
    parts = [metric.name]
    if metric.canary is not None and metric.baseline is not None:
        parts.append(f"canary {metric.canary:.4g} vs stable {metric.baseline:.4g}")
    if metric.effect is not None:  # relative: canary against baseline
        interval = (
            f" (CI {metric.ci_low:+.1%} to {metric.ci_high:+.1%})"
            if metric.ci_low is not None and metric.ci_high is not None
            else ""
        )
        parts.append(f"effect {metric.effect:+.1%}{interval}")
    if metric.evidence is not None:
        bound = f" against 1/alpha = {1 / metric.alpha:.3g}" if metric.alpha else ""
        parts.append(f"evidence {metric.evidence:.3g}{bound}")
    return ", ".join(parts)


def write_back_owed(turn: turns.Turn, idle: turns.Move) -> turns.Move:
    """When nothing else moves: settle the Git write-back a rollback owes, once.

    Git is looked at for the key first, so a commit pushed by a process killed before it could
    write status is found, not made again. Until found, the write is asked for again each minute
    (the attempt's time is in status, so a failing repository is not retried in a tight loop).
    """
    rollback = turn.status.last_rollback
    owed = rollback.git_write_back if rollback is not None else None
    if owed is None or owed.settled:
        return idle
    assert rollback is not None
    started = turn.status.rollout_started_at
    if (
        started is not None and started > rollback.at
    ) or turn.status.stable_model_version != owed.restore_version:
        # The release moved on since (a retry, a newer version, a promotion): reverting Git now
        # would roll production back to a version it has since left.
        outcome = (
            f"not written: the release moved on ({turn.status.phase.value}, stable version "
            f"{turn.status.stable_model_version}) before Git took the commit"
        )
        turn.change(changes.write_back_dropped(turn.status, outcome))
        turn.event("GitWriteBackDropped", outcome, scope=f"writeback-dropped/{owed.key}")
        return turn.move()
    found = turn.obs.written_back
    if found is not None and found.key == owed.key:
        outcome = (
            f"Git already no longer names version {owed.rolled_back_version} at {found.commit[:12]}; "
            "nothing to write"
            if found.superseded
            else f"committed {found.commit[:12]}: {owed.model_name} back to version {owed.restore_version}"
        )
        turn.change(changes.written_back(turn.status, found.commit, outcome))
        turn.event("GitWriteBack", outcome, scope=f"writeback/{owed.key}")
        return turn.move()
    if owed.attempted_at is not None:
        again = owed.attempted_at + git_retry_backoff(owed.attempts)
        if turn.now < again:
            return turn.move(wake_at=earliest(idle.wake_at, again))
    turn.change(changes.write_back_attempted(turn.status, turn.now))
    turn.act(
        actions.WriteBackToGit(
            key=owed.key,
            model_name=owed.model_name,
            restore_version=owed.restore_version,
            rolled_back_version=owed.rolled_back_version,
            reason=owed.reason,
            evidence=owed.evidence,
            attempt=owed.attempts + 1,
        )
    )
    return turn.move()


def git_retry_backoff(attempts: int) -> timedelta:
    """How long after the last try a Git commit (a rollback's write-back, an alias bump) is asked for
    again: a minute, doubling to half an hour, so a repository that refuses pushes is not hammered
    and a passing outage costs little."""
    doubled: timedelta = WRITE_BACK_RETRY * 2 ** min(max(attempts - 1, 0), 10)
    return min(doubled, WRITE_BACK_MAX_RETRY)


def abandon_canary(turn: turns.Turn, reason: str, message: str) -> None:
    """The canary is no longer wanted (superseded, spec back at stable, model unresolvable)."""
    turn.stop_running_analyses("rollout abandoned")
    turn.change(changes.canary_cleared(turn.status))
    turn.event(reason, message)


def owe_promotion(turn: turns.Turn, target: changes.Target) -> None:
    """The promotion alias is to point at the promoted version (done later: registry_owed)."""
    owe_registry(
        turn,
        releasestatus.RegistryWrite(
            key=turn.once_key(target.revision, "registry-promoted"),
            model_name=turn.spec.model.name,
            version=target.model_version,
            alias=turn.spec.model.promote_alias,
        ),
    )


def owe_rollout_run(turn: turns.Turn, target: changes.Target) -> None:
    """The rollout that just ended (the newest history entry) is to be logged as an MLflow run, with
    the analyses it ran; they are copied into the owed write because the next rollout replaces them."""
    record = turn.status.history[-1]
    identity = turn.obs.release
    owe_registry(
        turn,
        releasestatus.RegistryWrite(
            key=turn.once_key(target.revision, "registry-run"),
            model_name=turn.spec.model.name,
            version=target.model_version,
            run=releasestatus.RolloutRun(
                release=f"{identity.namespace}/{identity.name}", record=record, analysis=turn.status.analysis
            ),
        ),
    )


def owe_registry(turn: turns.Turn, write: releasestatus.RegistryWrite) -> None:
    """Owed, done later (registry_owed); the move that owes it is a checkpoint, as it was when it
    acted the write at once."""
    turn.change(changes.registry_owed(turn.status, write))
    turn.checkpoint()


def registry_owed(turn: turns.Turn, idle: turns.Move) -> turns.Move:
    """When nothing else moves: the registry writes rollouts owe, oldest first, each until the
    registry is seen to hold it — asked again after 5 s, doubling to each minute — so an outage
    delays them and nothing else."""
    if not turn.status.registry_owed:
        return idle
    write = turn.status.registry_owed[0]
    settled = turn.obs.registry_settled.get(write.key)
    if settled is not None:
        turn.change(changes.registry_settled(turn.status, write.key))
        if write.run is not None and settled.link is not None:
            turn.change(changes.rollout_run_linked(turn.status, write.run.record, settled.link))
        reason = "RegistryUpdateSkipped" if settled.skipped else "RegistryUpdated"
        # Skipped only where no registry is configured: how that install is meant to run, not a warning.
        turn.event(reason, settled.message, scope=f"registry/{write.key}")
        return turn.move()
    if write.attempted_at is not None:
        again = write.attempted_at + min(REGISTRY_FIRST_RETRY * 2 ** (write.attempts - 1), REGISTRY_RETRY)
        if turn.now < again:
            return turn.move(wake_at=earliest(idle.wake_at, again))
    turn.change(changes.registry_attempted(turn.status, write.key, turn.now))
    if write.run is not None:
        turn.act(actions.LogRolloutRun(key=write.key, run=write.run))
    elif write.alias is not None:
        turn.act(
            actions.PromoteModel(
                key=write.key, model_name=write.model_name, version=write.version, alias=write.alias
            )
        )
    else:
        turn.act(
            actions.TagRolledBack(
                key=write.key, model_name=write.model_name, version=write.version, reason=write.reason
            )
        )
    return turn.move()


REGISTRY_FIRST_RETRY = timedelta(seconds=5)
REGISTRY_RETRY = timedelta(minutes=1)
