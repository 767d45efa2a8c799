"""Alias-driven releases: when the alias a release follows moves, propose the new version in Git.

The release keeps pinning a version; the registry's alias only ever becomes a commit (on the
release's branch, or a bump branch for a pull request), so the release still goes through Git,
its review and its PR checks, and Argo CD or the GitSource applies it like any other change.

Exactly one commit per version the alias moves to: the proposal is recorded in status before it
is asked for, its key (release and version) goes in the commit's trailer, and Git is looked at for
the key before each ask — so a controller killed right after pushing finds its commit. Asked again
after a minute while Git fails, doubling to every half hour; the alias is looked at every
`pollInterval` even without a webhook.
"""

from __future__ import annotations

import dataclasses

from controller.domain import actions
from controller.domain.machine import changes, endings, turns
from controller.domain.machine.turns import earliest
from controller.resources import releasestatus


def build_key(namespace: str, name: str, version: str) -> str:
    return f"bump/{namespace}/{name}/{version}"


def propose_owed(turn: turns.Turn, idle: turns.Move) -> turns.Move:
    """When nothing else moves: notice an alias move, then get its bump committed, once."""
    follow, pinned = turn.spec.model.follow, turn.spec.model.version
    if follow is None or pinned is None:
        return idle
    poll_at = earliest(idle.wake_at, turn.now + follow.poll_interval)  # the backstop to the webhook
    owed, followed = turn.status.proposal, turn.obs.followed
    seen = followed.version if followed is not None else None
    # Committed, a version the gate refuses would only sit Pending: propose what the gate would start.
    held = (followed.unmet(turn.spec.model.require_tags) or None) if followed is not None else None
    moved = seen is not None and seen != pinned and (owed is None or owed.version != seen)
    if moved or (owed is not None and owed.commit is None and owed.version == seen and owed.held != held):
        assert seen is not None
        identity = turn.obs.release
        proposal = releasestatus.Proposal(
            key=build_key(identity.namespace, identity.name, seen),
            alias=follow.alias,
            version=seen,
            from_version=pinned,
            held=held,
        )
        turn.change(changes.proposal_owed(turn.status, proposal))
        if held is not None:
            turn.event(
                "ModelVersionNotProposed",
                f"alias {follow.alias} of {turn.spec.model.name} moved to version {seen}, which {held}: "
                "not proposed until the gate would start it",
                scope=f"held/{proposal.key}/{held}",
            )
        else:
            turn.event(
                "ModelVersionProposed",
                f"alias {follow.alias} of {turn.spec.model.name} moved to version {seen}: "
                f"proposing it in Git (spec pins {pinned})",
                scope=f"proposed/{proposal.key}",
            )
        return turn.move(poll_at)
    if owed is None or owed.commit is not None:
        return dataclasses.replace(idle, wake_at=poll_at)
    if seen == pinned:  # the alias went back to what Git pins before the bump was committed
        turn.change(changes.proposal_withdrawn(turn.status))
        turn.event(
            "ModelVersionProposalWithdrawn",
            f"alias {follow.alias} is back on version {pinned}: version {owed.version} not proposed",
            scope=f"withdrawn/{owed.key}",
        )
        return turn.move(poll_at)
    if owed.held is not None:
        return dataclasses.replace(idle, wake_at=poll_at)  # looked at again at the next poll
    found = turn.obs.proposed
    if found is not None and found.key == owed.key:
        outcome = (
            f"Git already names version {owed.version} at {found.commit[:12]}; nothing to commit"
            if found.superseded
            else f"committed {found.commit[:12]}: {turn.spec.model.name} version {owed.version} "
            f"({follow.target.value})"
        )
        turn.change(changes.proposal_committed(turn.status, found.commit, outcome))
        turn.event("ModelVersionBumped", outcome, scope=f"bumped/{owed.key}")
        return turn.move(poll_at)
    if owed.attempted_at is not None:
        again = owed.attempted_at + endings.git_retry_backoff(owed.attempts)  # 1 min, doubling to 30
        if turn.now < again:
            return turn.move(earliest(poll_at, again))
    turn.change(changes.proposal_attempted(turn.status, turn.now))
    turn.act(
        actions.ProposeBump(
            key=owed.key,
            model_name=turn.spec.model.name,
            alias=owed.alias,
            from_version=owed.from_version,
            version=owed.version,
            target=follow.target,
            attempt=owed.attempts + 1,
        )
    )
    return turn.move(poll_at)
