"""Alias-driven releases in the pure core: an alias move becomes one proposed commit, found again
after a crash, withdrawn when the alias goes back, and the alias is looked at again on a timer."""

from __future__ import annotations

from datetime import timedelta

from controller.domain import actions, engine
from controller.resources import releasestatus
from tests.unit.domain import builders
from tests.unit.domain import world as w

FOLLOW = {"alias": "champion-candidate", "target": "bumpBranch", "pollInterval": "2m"}


def serving(version: str = "6") -> w.Run:
    world = w.World(model_version=version, followed_alias_at=version)
    run = w.Run(builders.release_spec(version=version, follow=FOLLOW), world)
    run.until(lambda r: r.status.phase == releasestatus.Phase.SUCCEEDED)
    return run


def test_an_alias_move_is_proposed_in_git_exactly_once() -> None:
    run = serving()
    run.world.followed_alias_at = "7"
    run.until(lambda r: r.status.proposal is not None and r.status.proposal.commit is not None)
    [bump] = run.world.executed(actions.ProposeBump)
    assert (bump.version, bump.from_version, bump.alias) == ("7", "6", "champion-candidate")
    assert bump.target == "bumpBranch"
    assert bump.key == "bump/default/fraud/7"
    for _ in range(20):  # time passes, the alias stays: nothing more is committed
        run.world.tick(timedelta(minutes=1))
        run.reconcile()
    assert len(run.world.executed(actions.ProposeBump)) == 1
    reasons = [e.reason for d in run.decisions for e in d.events]
    assert (reasons.count("ModelVersionProposed"), reasons.count("ModelVersionBumped")) == (1, 1)
    assert run.spec.model.version == "6", "the release itself waits for Git to say 7"


def test_a_bump_pushed_by_a_controller_killed_before_writing_status_is_found_not_made_again() -> None:
    run = serving()
    run.world.followed_alias_at = "7"
    run.until(lambda r: bool(r.world.bumps))  # pushed...
    owed = run.status.proposal
    assert owed is not None
    # ...and the status write that followed it never happened
    run.status = run.status.model_copy(update={"proposal": owed.model_copy(update={"attempted_at": None})})
    run.until(lambda r: r.status.proposal is not None and r.status.proposal.commit is not None)
    assert len(run.world.executed(actions.ProposeBump)) == 1
    assert run.status.proposal is not None
    assert run.status.proposal.commit == "bump-1"


def test_git_down_asks_again_less_and_less_often_not_in_a_loop() -> None:
    run = serving()
    run.world.git_down = True
    run.world.followed_alias_at = "7"
    run.until(lambda r: bool(r.world.executed(actions.ProposeBump)))
    for _ in range(10 * 60 // 10):  # ten minutes in 10 s ticks
        run.world.tick(timedelta(seconds=10))
        run.reconcile()
    # Asked at 0, 1, 3 and 7 minutes (a minute, doubling to half an hour), each try numbered.
    tries = run.world.executed(actions.ProposeBump)
    assert [t.attempt for t in tries] == [1, 2, 3, 4]
    assert run.status.proposal is not None
    assert run.status.proposal.attempts == 4
    run.world.git_down = False
    run.until(lambda r: r.status.proposal is not None and r.status.proposal.commit is not None)


def test_an_alias_back_on_the_pinned_version_before_the_commit_withdraws_the_proposal() -> None:
    run = serving()
    run.world.git_down = True
    run.world.followed_alias_at = "7"
    run.until(lambda r: r.status.proposal is not None)
    run.world.followed_alias_at = "6"
    run.until(lambda r: r.status.proposal is None)
    run.world.git_down = False
    run.world.tick(timedelta(minutes=5))
    run.reconcile()
    assert not run.world.bumps


def test_a_release_that_follows_an_alias_looks_at_it_again_within_its_poll_interval() -> None:
    run = serving()
    decision = engine.reconcile(run.spec, run.status, run.world.observe(), now=run.world.now)
    assert decision.requeue_after is not None
    assert decision.requeue_after <= timedelta(minutes=2)


def test_a_version_the_gate_would_refuse_is_not_proposed_and_an_event_says_why() -> None:
    world = w.World(model_version="6", followed_alias_at="6", model_tags={"validation": "passed"})
    spec = builders.release_spec(version="6", follow=FOLLOW, require_tags={"validation": "passed"})
    run = w.Run(spec, world).until(lambda r: r.status.phase == releasestatus.Phase.SUCCEEDED)
    run.world.followed_alias_at = "7"
    run.world.followed_status = "PENDING_REGISTRATION"
    run.world.tick(timedelta(minutes=3))
    run.reconcile()
    run.world.followed_status = "READY"  # registered, but not yet validated
    run.world.tick(timedelta(minutes=3))
    run.reconcile()
    assert run.world.executed(actions.ProposeBump) == []
    assert run.status.proposal is not None
    assert run.status.proposal.held == "lacks the required tags validation=passed"
    said = [e.message for d in run.decisions for e in d.events if e.reason == "ModelVersionNotProposed"]
    assert any("is PENDING_REGISTRATION in the registry, not READY" in m for m in said)
    assert any("lacks the required tags validation=passed" in m for m in said)
    run.world.followed_tags = {"validation": "passed"}  # the gate would start it now
    run.until(lambda r: r.status.proposal is not None and r.status.proposal.commit is not None)
    [bump] = run.world.executed(actions.ProposeBump)
    assert bump.version == "7"
