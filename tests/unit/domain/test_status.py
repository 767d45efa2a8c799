"""What status says: model resolution, conditions, generations, notifications."""

from __future__ import annotations

from datetime import timedelta

from analysis import verdicts
from controller.domain import actions, engine
from controller.domain import decision as decisions
from controller.domain import observations as obs_
from controller.domain.machine import changes
from controller.resources import meta, modelrelease, releasestatus
from tests.unit.domain import builders
from tests.unit.domain import world as w

Phase = releasestatus.Phase


def conditions(status: releasestatus.ModelReleaseStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status.value, c.reason) for c in status.conditions}


def test_conditions_follow_the_phase_with_kubernetes_conventions() -> None:
    world = w.World(model_version="6")
    run = w.Run(builders.release_spec(version="6"), world)
    run.reconcile()
    assert conditions(run.status) == {
        "Ready": ("False", "FirstDeploy"),
        "Progressing": ("True", "FirstDeploy"),
        "Degraded": ("False", "FirstDeploy"),
    }
    run.settle()
    assert conditions(run.status)["Ready"] == ("True", "Deployed")
    assert conditions(run.status)["Progressing"][0] == "False"


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    world = w.World(model_version="6")
    run = w.Run(builders.release_spec(version="6"), world).settle()
    ready = next(c for c in run.status.conditions if c.type == "Ready")
    world.tick(timedelta(hours=1))
    run.reconcile()
    again = next(c for c in run.status.conditions if c.type == "Ready")
    assert again.last_transition_time == ready.last_transition_time
    assert again.status == meta.ConditionStatus.TRUE


def test_observed_generation_follows_the_release_generation() -> None:
    world = w.World(model_version="6")
    run = w.Run(builders.release_spec(version="6"), world).settle()
    assert run.status.observed_generation == 1
    run.set_spec(builders.release_spec(version="6", replicas=5))
    run.reconcile()
    assert run.status.observed_generation == 2
    assert all(c.observed_generation == 2 for c in run.status.conditions)


def test_a_succeeded_release_whose_spec_turns_invalid_is_blocked_and_not_ready_with_the_reason() -> None:
    world = w.World(model_version="6")
    run = w.Run(builders.release_spec(version="6"), world).settle()
    assert conditions(run.status)["Ready"] == ("True", "Deployed")
    halted = engine.halt(
        run.status, "InvalidSpec", "spec.progressDeadline: 0s is out of range", generation=2, now=world.now
    )
    assert halted.status.phase == Phase.BLOCKED, "the stable still serves: the new rollout is what is stuck"
    assert halted.status.observed_generation == 2
    assert conditions(halted.status) == {
        "Ready": ("False", "InvalidSpec"),
        "Progressing": ("False", "InvalidSpec"),
        "Degraded": ("True", "InvalidSpec"),
    }
    assert all(c.message == "spec.progressDeadline: 0s is out of range" for c in halted.status.conditions)
    assert [(e.type, e.reason) for e in halted.events] == [(decisions.EventType.WARNING, "InvalidSpec")]
    assert halted.status.stable_revision == run.status.stable_revision, "what serves is kept to resume from"


def test_a_release_that_never_served_halts_failed() -> None:
    fresh = releasestatus.ModelReleaseStatus()
    halted = engine.halt(fresh, "Forbidden", "deployments is forbidden", generation=1, now=w.World().now)
    assert halted.status.phase == Phase.FAILED
    assert conditions(halted.status)["Ready"] == ("False", "Forbidden")


def test_a_reconcile_failing_on_something_passing_keeps_the_phase_and_the_next_good_one_recovers() -> None:
    world = w.World(model_version="6")
    run = w.Run(builders.release_spec(version="6"), world).settle()
    failed = engine.reconcile_failed(
        run.status, "Unavailable", "API timed out; retrying in 4s", now=world.now
    )
    assert failed.status.phase == run.status.phase
    assert conditions(failed.status)["ReconcileError"] == ("True", "Unavailable")
    world.tick(timedelta(seconds=5))
    again = engine.reconcile_failed(
        failed.status, "Unavailable", "API timed out; retrying in 8s", now=world.now
    )
    error = next(c for c in again.status.conditions if c.type == "ReconcileError")
    assert error.last_transition_time == next(
        c.last_transition_time for c in failed.status.conditions if c.type == "ReconcileError"
    ), "failing since the first failure"
    run.status = again.status
    run.reconcile()
    assert conditions(run.status)["ReconcileError"] == ("False", "Recovered")


def test_changing_only_replicas_scales_stable_in_place_without_a_rollout() -> None:
    world = w.World(model_version="6")
    run = w.Run(builders.release_spec(version="6"), world).settle()
    revision = run.status.stable_revision
    run.set_spec(builders.release_spec(version="6", replicas=6))
    run.settle()
    assert run.status.stable_revision == revision
    assert [d.replicas for d in world.deployments.values()] == [6]
    assert run.status.stable_replicas == 6


def test_an_alias_is_resolved_once_and_pinned_while_the_model_reference_is_unchanged() -> None:
    spec = modelrelease.ModelReleaseSpec.model_validate(
        {**builders.release_spec().to_manifest(), "model": {"name": "fraud", "alias": "champion"}}
    )
    world = w.World(model_version="6")
    run = w.Run(spec, world).settle()
    assert run.status.resolved_model is not None
    assert run.status.resolved_model.version == "6"
    world.model_version = "9"  # the alias moves in the registry; the release does not follow by itself
    world.tick(timedelta(minutes=5))
    decision = run.reconcile()
    assert decision.actions == ()
    assert run.status.stable_model_version == "6"


def test_a_model_missing_a_required_tag_waits_before_anything_starts_and_starts_once_it_is_set() -> None:
    world = w.World(model_version="6", model_tags={"validation": "failed"})
    run = w.Run(builders.release_spec(version="6", require_tags={"validation": "passed"}), world)
    run.reconcile()
    assert run.status.phase == Phase.PENDING
    assert run.status.reason == "RequiredTagsMissing"
    assert run.status.message == (
        "model fraud version 6 lacks the required tags validation=passed; it starts once it holds"
    )
    assert world.log == []
    world.model_tags = {"validation": "passed"}
    run.settle()
    assert (run.status.phase, run.status.stable_model_version) == (Phase.SUCCEEDED, "6")


def test_a_version_still_registering_waits_with_its_registry_status_and_starts_once_ready() -> None:
    world = w.World(model_version="6", model_status="PENDING_REGISTRATION")
    run = w.Run(builders.release_spec(version="6"), world)
    run.reconcile()
    assert (run.status.phase, run.status.reason) == (Phase.PENDING, "ModelVersionNotReady")
    assert "version 6 is PENDING_REGISTRATION in the registry, not READY" in run.status.message
    assert world.log == []
    world.model_status = "READY"
    run.settle()
    assert run.status.phase == Phase.SUCCEEDED


def test_a_model_the_registry_cannot_resolve_is_pending_then_failed_with_the_registry_error() -> None:
    spec = builders.release_spec(version="6")
    status = releasestatus.ModelReleaseStatus()
    seen = obs_.Observations(release=obs_.ReleaseIdentity(name="fraud"))
    waiting = engine.reconcile(spec, status, seen, now=w.T0)
    assert (waiting.status.phase, waiting.status.reason) == (Phase.PENDING, "ResolvingModel")
    failed = engine.reconcile(
        spec, waiting.status, seen.model_copy(update={"model_error": "version 6 not found"}), now=w.T0
    )
    assert failed.status.phase == Phase.FAILED
    assert failed.status.message == "cannot resolve fraud version 6: version 6 not found"


def test_notification_keys_are_recorded_so_each_message_is_sent_once() -> None:
    world = w.World(model_version="6")
    run = w.Run(builders.release_spec(version="6"), world).settle()
    world.model_version = "7"
    run.set_spec(builders.release_spec(version="7"))
    run.settle()
    keys = [a.key for a in world.executed(actions.Notify)]
    assert len(keys) == len(set(keys))
    suffixes = [k.split("/")[1] for k in run.status.notifications]
    assert suffixes == ["started", "step-0", "analysis-1", "step-1", "step-2", "step-3", "promoted"]


def test_without_a_slack_channel_no_notifications_are_emitted() -> None:
    world = w.World(model_version="6")
    run = w.Run(builders.release_spec(version="6", slack=False), world).settle()
    assert world.executed(actions.Notify) == []
    assert run.status.notifications == ()


def test_status_reports_step_weight_versions_and_analysis_mid_rollout() -> None:
    world = w.World(model_version="6")
    run = w.Run(builders.release_spec(version="6"), world).settle()
    world.model_version = "7"
    run.set_spec(builders.release_spec(version="7"))
    run.until(lambda r: r.status.current_step_index == 2)
    status = run.status
    assert (status.phase, status.current_step_index, status.canary_weight) == (Phase.PROGRESSING, 2, 25)
    assert (status.stable_model_version, status.canary_model_version) == ("6", "7")
    assert status.last_verdict == "Pass"
    assert status.analysis[0].template == "latency-and-errors"
    manifest = status.to_manifest()
    assert manifest["currentStepIndex"] == 2
    assert manifest["analysis"][0]["verdict"] == "Pass"


def test_a_decision_stops_at_the_first_move_that_acts_and_asks_to_come_back_at_once() -> None:
    spec = builders.release_spec(version="6")
    observed = obs_.Observations(
        release=obs_.ReleaseIdentity(name="fraud"),
        model=obs_.RegistryVersion(version="6", uri="models:/fraud/6"),
    )
    first = engine.reconcile(spec, releasestatus.ModelReleaseStatus(), observed, now=w.T0)
    # Status-only moves (pin the model, note the revision, start the first deploy) chain; the
    # Deployment's creation is the first move that acts, and the decision ends there.
    assert [type(a) for a in first.actions] == [actions.CreateWorkload]
    assert (first.status.phase, first.status.reason) == (Phase.PROGRESSING, "FirstDeploy")
    assert first.requeue_after == timedelta(0)


def test_history_keeps_each_finished_rollout_with_its_outcome_newest_last() -> None:
    spec = builders.release_spec(version="6")
    run = w.Run(spec, w.World(model_version="6")).settle()
    for version, verdict in (("7", verdicts.Verdict.PASS), ("8", verdicts.Verdict.FAIL)):
        run.world.model_version = version
        run.world.verdict = w.always(verdict)
        run.set_spec(builders.release_spec(version=version))
        run.settle()
    history = run.status.history
    assert [(h.model_version, h.from_model_version, h.outcome.value, h.reason) for h in history] == [
        ("7", "6", "Promoted", "Promoted"),
        ("8", "7", "RolledBack", "AnalysisFailed"),
    ]
    assert all(h.started_at is not None and h.started_at <= h.ended_at for h in history)


def test_history_keeps_only_the_last_ten_rollouts() -> None:
    status = releasestatus.ModelReleaseStatus(
        phase=releasestatus.Phase.PROGRESSING, canary_revision="abc", canary_model_version="9"
    )
    for index in range(releasestatus.HISTORY_LIMIT + 2):
        rollback = releasestatus.Rollback(
            revision="abc", reason=f"Reason{index}", message="m", at=w.T0 + timedelta(minutes=index)
        )
        status = changes.rolled_back(status, rollback).model_copy(
            update={"phase": releasestatus.Phase.PROGRESSING, "canary_revision": "abc"}
        )
    assert len(status.history) == releasestatus.HISTORY_LIMIT
    assert status.history[-1].reason == f"Reason{releasestatus.HISTORY_LIMIT + 1}"
