"""Canary rollouts, step by step, on the in-memory world."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest

from analysis import verdicts
from controller.domain import actions, engine, machine, naming
from controller.resources import commands, releasestatus
from tests.unit.domain import builders
from tests.unit.domain import world as w

Phase = releasestatus.Phase
Verdict = verdicts.Verdict


def deployed(**spec: Any) -> w.Run:
    """A release serving model 6 as stable, with the spec then moved to model 7."""
    world = w.World(model_version="6", gpu_budget=spec.pop("gpu_budget", None))
    run = w.Run(builders.release_spec(version="6", **spec), world).settle()
    assert run.status.phase == Phase.SUCCEEDED
    world.model_version = "7"
    world.log.clear()
    run.set_spec(builders.release_spec(version="7", **spec))
    return run


def canary_revision(run: w.Run) -> str:
    return naming.build_revision(run.spec.serving, "fraud", "7")


def test_the_first_deploy_becomes_stable_without_steps_once_it_is_warm() -> None:
    world = w.World(model_version="6")
    run = w.Run(builders.release_spec(version="6"), world)
    run.reconcile()
    revision = run.status.canary_revision
    assert revision is not None
    assert [type(a) for _, a in world.log] == [actions.CreateWorkload]
    assert world.traffic is None, "no traffic before the first deploy is warm"
    run.settle()
    assert run.status.phase == Phase.SUCCEEDED
    assert run.status.stable_revision == revision
    assert world.traffic == w.obs_.Traffic(stable_revision=revision, canary_revision=None, canary_weight=0)
    assert [a.version for a in world.executed(actions.PromoteModel)] == ["6"]


def test_the_first_deploy_is_routed_to_before_it_is_called_stable() -> None:
    # A route still aimed at the production Service when the next rollout begins would reach its canary.
    # Decision by decision: the spec may change between any two (the runtime writes each status).
    world = w.World(model_version="6")
    spec, status = builders.release_spec(version="6"), releasestatus.ModelReleaseStatus()
    for _ in range(200):
        decision = engine.reconcile(spec, status, world.observe(), now=world.now)
        for action in decision.actions:
            world.execute(action)
        status = decision.status
        if status.phase == Phase.SUCCEEDED:
            break
        world.tick(decision.requeue_after or timedelta(seconds=5))
    assert status.phase == Phase.SUCCEEDED
    assert world.traffic is not None, "routed to before Succeeded"
    assert world.traffic.stable_revision == status.stable_revision


def test_the_canary_deployment_is_named_after_the_release_and_its_revision() -> None:
    run = deployed()
    run.reconcile()
    [create] = run.world.executed(actions.CreateWorkload)
    assert create.name == f"fraud-{canary_revision(run)}"
    assert create.model_uri == "models:/fraud/7"
    assert create.replicas == 1


def test_no_canary_traffic_is_set_until_the_canary_is_ready_and_warmed_up() -> None:
    run = deployed(warmup="90s")
    run.until(lambda r: r.world.traffic is not None and r.world.traffic.canary_weight == 25)
    [create_time] = [t for t, a in run.world.log if isinstance(a, actions.CreateWorkload)]
    [weight_time] = [
        t for t, a in run.world.log if isinstance(a, actions.SetTrafficWeight) and a.canary_weight == 25
    ]
    ready_after = run.world.start_delay
    assert weight_time - create_time >= ready_after + timedelta(seconds=90)


def test_a_full_canary_walks_every_step_and_promotes() -> None:
    run = deployed(gpu_budget=6)
    run.settle()
    weights = [a.canary_weight for a in run.world.executed(actions.SetTrafficWeight) if a.canary_revision]
    assert weights == [0, 25, 50, 100]
    revision = canary_revision(run)
    assert run.status.phase == Phase.SUCCEEDED
    assert run.status.reason == "Promoted"
    assert run.status.stable_revision == revision
    assert run.status.stable_model_version == "7"
    assert run.status.canary_revision is None
    assert [a.alias for a in run.world.executed(actions.PromoteModel)] == ["production"]
    assert list(run.world.deployments) == [w.workload(revision)]


def test_a_registry_outage_at_promotion_holds_nothing_and_the_alias_move_is_asked_again_until_done() -> None:
    run = deployed()
    run.world.registry_down = True
    run.until(lambda r: (r.status.phase, r.status.stable_model_version) == (Phase.SUCCEEDED, "7"))
    run.until(lambda r: bool(r.status.registry_owed) and r.status.registry_owed[0].attempts >= 1)
    owed, logged = run.status.registry_owed  # the alias move, then the rollout's run
    assert (owed.version, owed.alias) == ("7", "production")
    assert logged.run is not None
    assert logged.run.record.outcome == "Promoted"
    for attempts in range(owed.attempts, owed.attempts + 6):
        wait = min(5 * 2 ** (attempts - 1), 60)  # seconds: doubling from 5 s to each minute
        assert owed.attempted_at is not None
        run.world.now = owed.attempted_at + timedelta(seconds=wait - 1)
        run.reconcile()
        assert run.status.registry_owed[0].attempts == attempts, f"asked again before {wait}s"
        run.world.now = owed.attempted_at + timedelta(seconds=wait)
        run.reconcile()
        owed = run.status.registry_owed[0]
        assert owed.attempts == attempts + 1
    run.world.registry_down = False
    run.world.tick(timedelta(minutes=1))
    run.until(lambda r: not r.status.registry_owed, limit=timedelta(minutes=5))
    assert "RegistryUpdated" in [e.reason for d in run.decisions[-3:] for e in d.events]
    assert "PromoteModel 7" in run.world.registry_writes.values()
    [record] = run.status.history
    assert record.mlflow_run == f"runs:/{logged.key}"  # the history entry links its run


def test_a_rolled_back_rollout_is_logged_as_a_run_with_every_analysis_it_ran() -> None:
    analysis = {"analysis": {"template": "latency-and-errors", "maxDuration": "15m"}}
    run = deployed(steps=[{"setWeight": 25}, analysis, {"setWeight": 50}, analysis, {"setWeight": 100}])
    # the analysis of the first step passes, the second's fails
    run.world.verdict = lambda started, now: Verdict.PASS if started.step_index == 1 else Verdict.FAIL
    run.settle()
    assert run.status.phase == Phase.ROLLED_BACK
    [logged] = run.world.executed(actions.LogRolloutRun)
    assert logged.run.record.outcome == "RolledBack"
    assert [a.verdict for a in logged.run.analysis] == [Verdict.PASS, Verdict.FAIL]
    assert run.status.history[-1].mlflow_run == f"runs:/{logged.key}"


def test_the_old_stable_is_removed_only_after_the_scale_down_delay() -> None:
    run = deployed()
    run.until(lambda r: r.status.reason == "Promoted")
    promoted_at = run.world.now
    old = next(n for n in run.world.deployments if not n.endswith(canary_revision(run)))
    assert run.status.retiring[0].name == old
    run.settle()
    [(deleted_at, _)] = [(t, a) for t, a in run.world.log if isinstance(a, actions.DeleteWorkload)]
    assert deleted_at - promoted_at >= timedelta(seconds=30)


@pytest.mark.parametrize(
    ("pause", "expect_wait"),
    [({"duration": "5m"}, timedelta(minutes=5)), ({"duration": "90s"}, timedelta(seconds=90))],
)
def test_a_timed_pause_holds_the_step_for_its_duration(pause: dict[str, str], expect_wait: timedelta) -> None:
    run = deployed(steps=[{"setWeight": 20}, {"pause": pause}, {"setWeight": 50}])
    run.in_phase(Phase.PAUSED)
    paused_at = run.world.now
    assert run.decisions[-1].requeue_after == expect_wait
    run.until(lambda r: r.status.phase != Phase.PAUSED)
    assert run.world.now - paused_at >= expect_wait
    assert run.status.current_step_index == 2


def test_an_indefinite_pause_waits_until_promoted() -> None:
    run = deployed(steps=[{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}])
    run.in_phase(Phase.PAUSED)
    run.world.tick(timedelta(hours=5))
    run.reconcile()
    assert run.status.phase == Phase.PAUSED
    assert run.decisions[-1].requeue_after is None
    run.world.commands = run.world.commands.with_token(commands.Command.PROMOTE, "t1")
    run.reconcile()
    assert run.status.current_step_index == 2
    assert run.status.phase == Phase.PROGRESSING
    run.settle()
    assert run.status.phase == Phase.SUCCEEDED


def test_the_time_a_rollout_waits_for_people_is_kept_apart_in_its_history_entry() -> None:
    # An open pause waits five hours for a person; a timed pause of 5m is the rollout's own time.
    steps = [{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"pause": {}}, {"setWeight": 50}]
    run = deployed(steps=steps)
    run.until(lambda r: r.status.current_step_index == 2)
    run.world.tick(timedelta(hours=5))
    run.world.commands = run.world.commands.with_token(commands.Command.PROMOTE, "t1")
    run.settle()
    [record] = run.status.history[-1:]
    assert record.waited_for_people_seconds == timedelta(hours=5).total_seconds()
    assert record.started_at is not None
    assert (record.ended_at - record.started_at).total_seconds() > record.waited_for_people_seconds + 300


@pytest.mark.parametrize(
    ("verdict", "phase", "reason"),
    [
        (Verdict.PASS, Phase.PROGRESSING, "StepCompleted"),
        (Verdict.FAIL, Phase.ROLLED_BACK, "AnalysisFailed"),
        (Verdict.INCONCLUSIVE, Phase.PAUSED, "AnalysisInconclusive"),
    ],
)
def test_an_analysis_verdict_decides_the_step(verdict: Verdict, phase: Phase, reason: str) -> None:
    run = deployed()
    run.world.verdict = w.always(verdict)
    run.until(lambda r: r.status.analysis and r.status.analysis[0].verdict != Verdict.RUNNING)
    assert run.status.phase == phase
    assert run.status.reason == reason
    assert run.status.analysis[0].verdict == verdict
    assert run.status.analysis[0].finished_at is not None
    assert run.world.executed(actions.StopAnalysis)


def test_a_running_analysis_keeps_the_step_and_asks_to_be_looked_at_again() -> None:
    run = deployed()
    run.world.verdict = w.always(Verdict.RUNNING)
    run.until(lambda r: bool(r.status.analysis))
    decision = run.reconcile()
    assert decision.actions == ()
    assert run.status.current_step_index == 1
    assert decision.requeue_after == timedelta(seconds=30)


def test_an_analysis_still_running_at_max_duration_is_inconclusive_never_a_pass() -> None:
    run = deployed()
    run.world.verdict = w.always(Verdict.RUNNING)
    run.until(lambda r: bool(r.status.analysis))
    started = run.status.analysis[0].started_at
    run.until(lambda r: r.status.phase == Phase.PAUSED)
    assert run.world.now - started >= timedelta(minutes=15)
    assert run.status.reason == "AnalysisInconclusive"
    assert run.status.analysis[0].verdict == Verdict.INCONCLUSIVE
    assert "maxDuration 15m reached" in (run.status.analysis[0].rule or "")
    assert run.status.current_step_index == 1, "an inconclusive analysis does not advance"


def test_after_an_inconclusive_analysis_promote_continues_and_abort_rolls_back() -> None:
    run = deployed()
    run.world.verdict = w.always(Verdict.INCONCLUSIVE)
    run.in_phase(Phase.PAUSED)
    run.world.commands = run.world.commands.with_token(commands.Command.PROMOTE, "go")
    run.reconcile()
    assert run.status.current_step_index == 2

    run = deployed()
    run.world.verdict = w.always(Verdict.INCONCLUSIVE)
    run.in_phase(Phase.PAUSED)
    run.world.commands = run.world.commands.with_token(commands.Command.ABORT, "stop")
    run.reconcile()
    assert run.status.phase == Phase.ROLLED_BACK
    assert run.status.reason == "Aborted"


BACKGROUND = {"template": "whole-rollout", "startingStep": 1}


def _background_then(step: Verdict | w.VerdictScript, background: w.VerdictScript) -> w.VerdictScript:
    step_script = w.always(step) if isinstance(step, Verdict) else step

    def script(run: actions.StartAnalysis, now: Any) -> Verdict:
        return (background if run.step_index == releasestatus.BACKGROUND_STEP else step_script)(run, now)

    return script


def test_a_background_analysis_runs_beside_the_steps_from_its_starting_step_until_promotion() -> None:
    run = deployed(background=BACKGROUND)
    run.world.verdict = _background_then(Verdict.PASS, w.always(Verdict.RUNNING))
    run.until(lambda r: any(a.run.endswith("-bg") for a in r.status.analysis))
    started = [a for a in run.world.executed(actions.StartAnalysis) if isinstance(a, actions.StartAnalysis)]
    background = next(a for a in started if a.run.endswith("-bg"))
    step_run = next(a for a in started if not a.run.endswith("-bg"))
    assert step_run.step_index == 1
    assert started.index(background) < started.index(step_run), "it starts on entering step 1"
    weights = [a for _, a in run.world.log if isinstance(a, actions.SetTrafficWeight)]
    assert weights, "and not before step 0 moved the traffic"
    assert background.template == "whole-rollout"
    assert background.evidence_since == run.status.rollout_started_at, "it reads the canary's whole traffic"
    run.settle()
    assert run.status.phase == Phase.SUCCEEDED
    record = next(a for a in run.status.analysis if a.run.endswith("-bg"))
    assert record.verdict == Verdict.INCONCLUSIVE
    assert record.rule == "the rollout was promoted"
    assert actions.StopAnalysis(run=record.run) in run.world.executed(actions.StopAnalysis)


def test_a_background_analysis_that_fails_at_a_later_step_rolls_back_at_once() -> None:
    run = deployed(background={"template": "whole-rollout", "startingStep": 0})
    run.world.verdict = _background_then(
        w.passes_after(timedelta(minutes=2)), w.fails_after(timedelta(minutes=4))
    )
    run.until(lambda r: r.status.phase == Phase.ROLLED_BACK)
    assert run.status.reason == "AnalysisFailed"
    step_record = next(a for a in run.status.analysis if a.step_index == 1)
    assert step_record.verdict == Verdict.PASS, "the analysis step had passed; the background caught it later"
    assert "background analysis whole-rollout at step 2 (setWeight 50): Fail" in run.status.message
    record = next(a for a in run.status.analysis if a.run.endswith("-bg"))
    assert record.verdict == Verdict.FAIL


def test_a_background_analysis_starting_beyond_the_last_step_is_refused_by_field() -> None:
    with pytest.raises(ValueError, match=r"analysis.startingStep: 9 is beyond the last step \(3\)"):
        builders.release_spec(background={"template": "whole-rollout", "startingStep": 9})


def _judge_reports(run: w.Run, metrics: tuple[verdicts.MetricResult, ...], rule: str) -> None:
    """Every analysis the world answers for carries these per-metric results and this rule."""
    original_observe = run.world.observe

    def observe() -> w.obs_.Observations:
        seen = original_observe()
        summaries = {
            k: v.model_copy(update={"metrics": metrics, "rule": rule}) for k, v in seen.analysis.items()
        }
        return seen.model_copy(update={"analysis": summaries})

    run.world.observe = observe  # type: ignore[method-assign]


def test_a_failed_analysis_keeps_its_evidence_in_the_rollback() -> None:
    evidence = verdicts.MetricResult(
        name="p99", verdict=Verdict.FAIL, baseline=0.2, canary=0.3, effect=0.5, evidence=80.0
    )

    def judged(run: actions.StartAnalysis, now: Any) -> Verdict:
        return Verdict.FAIL

    run = deployed()
    run.world.verdict = judged
    _judge_reports(run, (evidence,), "p99 evidence 80 > 1/α")
    run.in_phase(Phase.ROLLED_BACK)
    rollback = run.status.last_rollback
    assert rollback is not None
    assert rollback.reason == "AnalysisFailed"
    assert rollback.evidence == (evidence,)
    assert rollback.model_version == "7"
    assert "p99 evidence 80" in rollback.message


def test_a_running_analysis_shows_its_latest_figures_in_status_before_any_verdict() -> None:
    progress = verdicts.MetricResult(name="errors", verdict=Verdict.RUNNING, evidence=3.2, power=0.4)
    run = deployed()
    run.world.verdict = w.always(Verdict.RUNNING)
    _judge_reports(run, (progress,), "collecting evidence on errors")
    run.until(lambda r: bool(r.status.analysis) and bool(r.status.analysis[0].metrics))
    record = run.status.analysis[0]
    assert record.verdict == Verdict.RUNNING
    assert record.finished_at is None
    assert record.metrics == (progress,)
    assert record.rule == "collecting evidence on errors"
    before = run.status
    run.reconcile()
    assert run.status == before, "unchanged figures change nothing"


def test_the_rollback_sends_traffic_back_to_stable_before_the_canary_is_scaled_down() -> None:
    run = deployed()
    run.world.verdict = w.always(Verdict.FAIL)
    run.settle()
    log = [a for _, a in run.world.log]
    revision = canary_revision(run)
    back = next(
        i for i, a in enumerate(log) if isinstance(a, actions.SetTrafficWeight) and a.canary_revision is None
    )
    removed = next(
        i
        for i, a in enumerate(log)
        if isinstance(a, actions.DeleteWorkload) and a.name == w.workload(revision)
    )
    assert back < removed
    assert run.status.phase == Phase.ROLLED_BACK
    assert set(run.world.deployments) == {w.workload(run.status.stable_revision or "")}
    assert run.world.deployments[w.workload(run.status.stable_revision or "")].replicas == 4


def test_a_rollback_tags_the_version_and_writes_the_previous_version_back_to_git() -> None:
    run = deployed(write_back=True)
    run.world.verdict = w.always(Verdict.FAIL)
    run.settle()
    [tag] = run.world.executed(actions.TagRolledBack)
    assert (tag.version, tag.reason) == ("7", "AnalysisFailed")
    [write_back] = run.world.executed(actions.WriteBackToGit)
    assert (write_back.restore_version, write_back.rolled_back_version) == ("6", "7")
    assert run.status.last_rollback is not None
    assert run.status.last_rollback.git_write_back is not None
    assert run.status.last_rollback.git_write_back.commit == "commit-1"


def test_a_git_outage_holds_neither_the_rollback_nor_the_return_of_traffic_and_the_write_is_retried() -> None:
    run = deployed(write_back=True)
    run.world.git_down = True
    run.world.verdict = w.always(Verdict.FAIL)
    run.until(
        lambda r: (
            r.status.phase == Phase.ROLLED_BACK
            and not r.world.deployments.keys() - {w.workload(r.status.stable_revision or "")}
        )
    )
    assert run.world.traffic is not None
    assert run.world.traffic.canary_weight == 0
    tries = len(run.world.executed(actions.WriteBackToGit))
    assert tries >= 1
    run.world.tick(timedelta(minutes=3))
    run.reconcile()
    assert len(run.world.executed(actions.WriteBackToGit)) > tries  # asked for again while owed
    run.world.git_down = False
    run.settle()
    assert run.status.last_rollback is not None
    assert run.status.last_rollback.git_write_back is not None
    assert run.status.last_rollback.git_write_back.commit == "commit-1"
    assert len(run.world.git_commits) == 1


def test_a_write_back_still_owed_when_the_release_moves_on_is_dropped_not_pushed_as_a_downgrade() -> None:
    # Pushes refused while version 7 was retried and promoted: the revert to 6 must never reach Git.
    run = deployed(write_back=True)
    run.world.git_down = True
    run.world.verdict = w.always(Verdict.FAIL)
    run.in_phase(Phase.ROLLED_BACK)
    run.world.verdict = w.always(Verdict.PASS)
    run.world.commands = run.world.commands.with_token(commands.Command.RETRY, "r1")
    run.settle()
    assert run.status.phase == Phase.SUCCEEDED
    assert run.status.stable_model_version == "7"
    run.world.git_down = False
    run.world.tick(timedelta(minutes=5))
    run.settle()
    assert run.world.git_commits == {}
    assert run.status.last_rollback is not None
    owed = run.status.last_rollback.git_write_back
    assert owed is not None
    assert owed.settled
    assert owed.commit is None
    assert owed.outcome is not None
    assert "moved on" in owed.outcome
    said = [e for d in run.decisions for e in d.events if e.reason == "GitWriteBackDropped"]
    assert len(said) == 1


def test_a_repository_that_keeps_refusing_the_write_back_is_asked_less_and_less_often() -> None:
    run = deployed(write_back=True)
    run.world.git_down = True
    run.world.verdict = w.always(Verdict.FAIL)
    run.in_phase(Phase.ROLLED_BACK)
    start = run.world.now
    run.until(lambda r: r.world.now >= start + timedelta(hours=2))
    tries = run.world.executed(actions.WriteBackToGit)
    # 1, 2, 4, 8, 16 then every 30 minutes: at 0, 1, 3, 7, 15, 31, 61, 91 (and 121) minutes.
    assert 8 <= len(tries) <= 9
    assert [t.attempt for t in tries] == list(range(1, len(tries) + 1))
    assert run.status.last_rollback is not None
    assert run.status.last_rollback.git_write_back is not None
    assert run.status.last_rollback.git_write_back.attempts == len(tries)


def test_events_about_owed_writes_are_named_by_the_write_not_by_the_rollout_status_is_on() -> None:
    # Posted before the status write that records it, such an Event is said again when that write is
    # lost (a kill, a 409 from a spec edit) and the next reconcile is on another revision: it must
    # carry the same name then (test_kill_and_restart said RegistryUpdateSkipped 14 times, not 13).
    run = deployed(write_back=True)
    run.world.verdict = w.always(Verdict.FAIL)
    run.settle()
    said = [e for d in run.decisions for e in d.events]
    owed = [e for e in said if e.reason in ("RegistryUpdated", "RegistryUpdateSkipped", "GitWriteBack")]
    assert {e.reason for e in owed} == {"RegistryUpdated", "GitWriteBack"}
    for event in owed:
        assert event.scope is not None, event
    assert run.status.last_rollback is not None
    assert run.status.last_rollback.git_write_back is not None
    assert any(e.scope == f"writeback/{run.status.last_rollback.git_write_back.key}" for e in owed)


def test_a_metrics_outage_ends_the_analysis_step_at_max_duration_by_pausing_and_names_the_outage() -> None:
    run = deployed()
    run.world.verdict = w.always(Verdict.RUNNING)
    run.until(lambda r: any(a.finished_at is None for a in r.status.analysis))
    started = run.status.analysis[-1].started_at
    run.world.metrics_down = "GET /api/v1/query_range: connection refused"
    run.in_phase(Phase.PAUSED)
    assert run.status.reason == "AnalysisInconclusive"
    assert run.world.now >= started + timedelta(minutes=15)
    assert run.world.now <= started + timedelta(minutes=15, seconds=30)
    assert (
        "the metrics backend is unavailable: GET /api/v1/query_range: connection refused"
        in run.status.message
    )
    said = [e for d in run.decisions for e in d.events if e.reason == "AnalysisMetricsUnavailable"]
    assert len(said) == 1
    assert said[0].type == "Warning"
    assert run.world.traffic is not None
    assert run.world.traffic.canary_weight == 25, "never a silent promotion"


def test_abort_acts_at_once_while_the_metrics_backend_is_down() -> None:
    run = deployed()
    run.world.verdict = w.always(Verdict.RUNNING)
    run.until(lambda r: any(a.finished_at is None for a in r.status.analysis))
    run.world.metrics_down = "timed out"
    run.world.tick(timedelta(minutes=2))
    run.reconcile()
    run.world.commands = run.world.commands.with_token(commands.Command.ABORT, "stop")
    run.reconcile()
    assert run.status.phase == Phase.ROLLED_BACK
    assert run.status.reason == "Aborted"


def test_a_rolled_back_revision_is_not_rolled_out_again_by_later_reconciles() -> None:
    run = deployed()
    run.world.verdict = w.always(Verdict.FAIL)
    run.settle()
    run.world.log.clear()
    run.world.tick(timedelta(hours=1))
    decision = run.reconcile()
    assert decision.actions == ()
    assert run.status.phase == Phase.ROLLED_BACK


def test_an_unrelated_spec_edit_does_not_roll_out_a_rolled_back_revision_again() -> None:
    run = deployed()
    run.world.verdict = w.always(Verdict.FAIL)
    run.settle()
    run.set_spec(run.spec.model_copy(update={"progress_deadline": timedelta(minutes=20)}))
    run.reconcile()
    assert run.status.phase == Phase.ROLLED_BACK
    assert not run.world.executed(actions.CreateWorkload)[1:]


def test_retry_rolls_a_rolled_back_revision_out_again_from_step_0() -> None:
    run = deployed()
    run.world.verdict = w.always(Verdict.FAIL)
    run.settle()
    run.world.verdict = w.passes_after(timedelta(minutes=2))
    run.world.commands = run.world.commands.with_token(commands.Command.RETRY, "r1")
    run.reconcile()
    assert run.status.phase == Phase.PROGRESSING
    assert run.status.attempt == 2
    assert run.status.current_step_index == 0
    run.settle()
    assert run.status.phase == Phase.SUCCEEDED
    assert run.status.stable_model_version == "7"


def test_a_new_spec_after_a_rollback_rolls_out_its_revision() -> None:
    run = deployed()
    run.world.verdict = w.always(Verdict.FAIL)
    run.settle()
    run.world.verdict = w.passes_after(timedelta(minutes=2))
    run.world.model_version = "8"
    run.set_spec(builders.release_spec(version="8"))
    run.settle()
    assert run.status.stable_model_version == "8"


def test_manual_abort_rolls_back_with_the_reason() -> None:
    run = deployed()
    run.until(lambda r: r.status.current_step_index == 1)
    run.world.commands = run.world.commands.with_token(commands.Command.ABORT, "a1")
    run.reconcile()
    assert run.status.phase == Phase.ROLLED_BACK
    assert run.status.reason == "Aborted"
    assert "step 1 (analysis latency-and-errors)" in run.status.message


def test_an_abort_token_is_acted_on_once() -> None:
    run = deployed()
    run.until(lambda r: r.status.current_step_index == 1)
    run.world.commands = run.world.commands.with_token(commands.Command.ABORT, "a1")
    run.settle()
    run.world.commands = run.world.commands.with_token(commands.Command.RETRY, "r1")
    run.until(lambda r: r.status.current_step_index == 1)
    assert run.status.phase == Phase.PROGRESSING, "the old abort token does not abort the retried rollout"


def test_an_abort_with_no_rollout_in_progress_changes_nothing_but_is_recorded() -> None:
    run = deployed()
    run.settle()
    run.world.commands = run.world.commands.with_token(commands.Command.ABORT, "late")
    decision = run.reconcile()
    assert decision.actions == ()
    assert run.status.phase == Phase.SUCCEEDED
    assert run.status.handled_commands.abort == "late"
    assert [e.reason for e in decision.events] == ["AbortIgnored"]


def test_promote_full_skips_the_remaining_steps_and_promotes_when_the_canary_is_whole() -> None:
    run = deployed(steps=[{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"approval": {}}])
    run.in_phase(Phase.PAUSED)
    run.world.commands = run.world.commands.with_token(commands.Command.PROMOTE_FULL, "pf")
    run.reconcile()
    assert run.status.phase == Phase.PROMOTING
    assert run.status.approvals[-1].via == "promote-full"
    run.settle()
    assert run.status.reason == "Promoted"
    assert not run.world.executed(actions.RequestApproval)


@pytest.mark.parametrize(
    ("decision", "phase"),
    [
        (releasestatus.ApprovalDecision.APPROVE, Phase.SUCCEEDED),
        (releasestatus.ApprovalDecision.REJECT, Phase.ROLLED_BACK),
    ],
)
def test_an_approval_gate_waits_for_a_decision_on_this_revision_and_step(
    decision: releasestatus.ApprovalDecision, phase: Phase
) -> None:
    run = deployed(steps=[{"setWeight": 10}, {"approval": {"slack": True}}, {"setWeight": 50}])
    run.in_phase(Phase.AWAITING_APPROVAL)
    [request] = run.world.executed(actions.RequestApproval)
    assert (request.step_index, request.slack, request.channel) == (1, True, "#ml-releases")
    revision = canary_revision(run)
    run.world.approve("0000000000", 1, decision)  # another revision
    run.world.approve(revision, 0, decision)  # another step
    run.world.tick(timedelta(minutes=1))
    run.reconcile()
    assert run.status.phase == Phase.AWAITING_APPROVAL
    run.world.approve(revision, 1, decision, by="ana")
    run.settle()
    assert run.status.phase == phase
    assert [(a.by, a.decision) for a in run.status.approvals] == [("ana", decision)]
    assert len(run.world.executed(actions.RequestApproval)) == 1
    told = [n for n in run.world.executed(actions.Notify) if n.event == actions.NotificationEvent.APPROVAL]
    assert [(n.step_index, "by ana" in n.message) for n in told] == [(1, True)]


def test_a_quorum_gate_passes_on_the_second_different_approver_and_says_who_it_waits_for() -> None:
    run = deployed(steps=[{"setWeight": 10}, {"approval": {"approvals": 2}}, {"setWeight": 50}])
    run.in_phase(Phase.AWAITING_APPROVAL)
    assert "waiting for 2 approvals (by different people)" in run.status.message
    revision = canary_revision(run)
    run.world.approve(revision, 1, releasestatus.ApprovalDecision.APPROVE, by="ana")
    run.world.tick(timedelta(seconds=10))
    run.world.approve(revision, 1, releasestatus.ApprovalDecision.APPROVE, by="ana")  # pressed twice
    run.world.tick(timedelta(minutes=1))
    run.reconcile()
    assert run.status.phase == Phase.AWAITING_APPROVAL
    assert "1 of 2 approvals (ana); waiting for 1 more" in run.status.message
    run.world.approve(revision, 1, releasestatus.ApprovalDecision.APPROVE, by="bo")
    run.settle()
    assert run.status.phase == Phase.SUCCEEDED
    assert [a.by for a in run.status.approvals] == ["ana", "bo"]
    told = [n for n in run.world.executed(actions.Notify) if n.event == actions.NotificationEvent.APPROVAL]
    assert [(n.closes_gate, "(1 of 2)" in n.message or "(2 of 2)" in n.message) for n in told] == [
        (False, True),
        (True, True),
    ]


def test_without_a_registry_its_skipped_updates_are_normal_events_not_warnings() -> None:
    run = deployed()
    run.world.registry_pinned = True
    run.settle()
    skipped = [e for d in run.decisions for e in d.events if e.reason == "RegistryUpdateSkipped"]
    assert skipped
    assert {e.type.value for e in skipped} == {"Normal"}


def test_an_approval_after_the_gate_timed_out_is_said_to_decide_nothing() -> None:
    gate = {"approval": {"timeout": "1h", "onTimeout": "pause"}}
    run = deployed(steps=[{"setWeight": 10}, gate, {"setWeight": 50}])
    run.in_phase(Phase.AWAITING_APPROVAL)
    run.until(lambda r: r.status.phase == Phase.PAUSED)
    run.world.approve(canary_revision(run), 1, releasestatus.ApprovalDecision.APPROVE, by="late-larry")
    for _ in range(3):
        run.world.tick(timedelta(minutes=1))
        run.reconcile()
    assert run.status.phase == Phase.PAUSED
    said = [e for d in run.decisions for e in d.events if e.reason == "ApprovalIgnored"]
    assert len(said) == 1
    assert "came after step 1 timed out and closed" in said[0].message
    assert said[0].regarding_approval == "approval-0"


def test_one_identity_never_meets_a_quorum_of_two_whatever_names_it_writes() -> None:
    # One ServiceAccount wrote Approvals `by: alice` and `by: bob`: one voice, not two.
    run = deployed(steps=[{"setWeight": 10}, {"approval": {"approvals": 2}}, {"setWeight": 50}])
    run.in_phase(Phase.AWAITING_APPROVAL)
    revision = canary_revision(run)
    robot = "kubernetes:system:serviceaccount:ml:ci"
    run.world.approve(revision, 1, releasestatus.ApprovalDecision.APPROVE, by="alice", identity=robot)
    run.world.approve(revision, 1, releasestatus.ApprovalDecision.APPROVE, by="bob", identity=robot)
    run.world.tick(timedelta(minutes=1))
    run.reconcile()
    assert run.status.phase == Phase.AWAITING_APPROVAL
    assert "1 of 2 approvals (alice)" in run.status.message
    run.world.approve(
        revision, 1, releasestatus.ApprovalDecision.APPROVE, by="carol", identity="slack:U0CAROL"
    )
    run.settle()
    assert run.status.phase == Phase.SUCCEEDED
    assert [a.identity for a in run.status.approvals] == [robot, "slack:U0CAROL"]


@pytest.mark.parametrize(("on_timeout", "phase"), [("rollback", Phase.ROLLED_BACK), ("pause", Phase.PAUSED)])
def test_an_approval_gate_that_times_out_rolls_back_or_closes_until_an_operator_decides(
    on_timeout: str, phase: Phase
) -> None:
    gate = {"approval": {"timeout": "4h", "onTimeout": on_timeout}}
    run = deployed(steps=[{"setWeight": 10}, gate, {"setWeight": 50}])
    run.in_phase(Phase.AWAITING_APPROVAL)
    opened = run.world.now
    decision = run.reconcile()
    assert decision.requeue_after is not None
    assert decision.requeue_after <= timedelta(hours=4)
    run.world.tick(timedelta(hours=3, minutes=59))
    run.reconcile()
    assert run.status.phase == Phase.AWAITING_APPROVAL
    run.world.tick(timedelta(minutes=2))
    run.until(lambda r: r.status.phase == phase, limit=timedelta(minutes=30))
    assert run.status.reason == "ApprovalTimedOut" or run.status.history[-1].reason == "ApprovalTimedOut"
    assert run.world.now - opened >= timedelta(hours=4)
    if phase == Phase.PAUSED:
        run.world.approve(canary_revision(run), 1, releasestatus.ApprovalDecision.APPROVE)  # too late
        run.world.tick(timedelta(minutes=1))
        run.reconcile()
        assert run.status.phase == Phase.PAUSED
        run.world.commands = run.world.commands.with_token(commands.Command.PROMOTE, "go")
        run.settle()
        assert run.status.phase == Phase.SUCCEEDED


def test_an_approval_from_a_previous_attempt_does_not_pass_the_gate_of_a_retry() -> None:
    run = deployed(steps=[{"setWeight": 10}, {"approval": {}}, {"setWeight": 50}])
    run.in_phase(Phase.AWAITING_APPROVAL)
    revision = canary_revision(run)
    run.world.approve(revision, 1, releasestatus.ApprovalDecision.REJECT)
    run.settle()
    run.world.tick(timedelta(minutes=1))
    run.world.approvals.clear()
    run.world.approve(revision, 1, releasestatus.ApprovalDecision.APPROVE)
    run.world.tick(timedelta(minutes=1))
    run.world.commands = run.world.commands.with_token(commands.Command.RETRY, "again")
    run.in_phase(Phase.AWAITING_APPROVAL)
    run.world.tick(timedelta(minutes=5))
    run.reconcile()
    assert run.status.phase == Phase.AWAITING_APPROVAL


def test_editing_the_steps_mid_rollout_starts_again_at_step_0_with_traffic_lowered_first() -> None:
    run = deployed(steps=[{"setWeight": 40}, {"pause": {}}, {"setWeight": 60}])
    run.in_phase(Phase.PAUSED)
    assert run.world.traffic is not None
    assert run.world.traffic.canary_weight == 40
    run.world.log.clear()
    run.set_spec(
        builders.release_spec(version="7", steps=[{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}])
    )
    decision = run.reconcile()
    assert run.status.reason in ("StepsChanged", "StepCompleted", "PauseStep")
    assert "StepsChanged" in [e.reason for e in decision.events]
    assert run.status.attempt == 2
    first = next(
        a for a in decision.actions if isinstance(a, actions.SetTrafficWeight | actions.ScaleWorkload)
    )
    assert isinstance(first, actions.SetTrafficWeight)
    assert first.canary_weight == 10, "traffic drops to the new step's weight before the canary shrinks"
    run.in_phase(Phase.PAUSED)
    assert run.world.traffic.canary_weight == 10
    assert run.status.current_step_index == 1


def test_a_new_revision_mid_rollout_abandons_the_old_canary_safely_and_starts_the_new_one() -> None:
    run = deployed(gpu_budget=6)
    run.until(lambda r: r.world.traffic is not None and r.world.traffic.canary_weight == 25)
    old = w.workload(canary_revision(run))
    run.world.log.clear()
    run.world.model_version = "8"
    run.set_spec(builders.release_spec(version="8"))
    decision = run.reconcile()
    new_revision = naming.build_revision(run.spec.serving, "fraud", "8")
    world_changes = [a for a in decision.actions if not isinstance(a, actions.StopAnalysis | actions.Notify)]
    kinds = [
        (type(a).__name__, getattr(a, "name", getattr(a, "canary_revision", None))) for a in world_changes
    ]
    assert kinds[0] == ("SetTrafficWeight", new_revision), "traffic leaves the old canary first"
    first = world_changes[0]
    assert isinstance(first, actions.SetTrafficWeight)
    assert first.canary_weight == 0
    assert kinds.index(("DeleteWorkload", old)) < kinds.index(("CreateWorkload", w.workload(new_revision)))
    assert "RolloutSuperseded" in [e.reason for e in decision.events]
    assert run.status.canary_revision == new_revision
    run.settle()
    assert run.status.stable_model_version == "8"


def test_a_spec_reverted_to_stable_mid_rollout_abandons_the_canary() -> None:
    run = deployed()
    run.until(lambda r: r.status.current_step_index == 1)
    run.world.model_version = "6"
    run.set_spec(builders.release_spec(version="6"))
    run.settle()
    assert run.status.phase == Phase.SUCCEEDED
    assert run.status.canary_revision is None
    assert len(run.world.deployments) == 1
    assert run.world.executed(actions.StopAnalysis)


def test_a_canary_that_never_becomes_ready_fails_the_step_at_the_progress_deadline() -> None:
    run = deployed(deadline="5m", warmup="60s")
    run.world.never_ready.add(naming.build_revision(run.spec.serving, "fraud", "7"))
    run.in_phase(Phase.ROLLED_BACK)
    assert run.status.reason == "ProgressDeadlineExceeded"
    assert run.status.message == (
        f"step 0 (setWeight 25): {w.workload(canary_revision(run))} has 0/1 ready replicas after 6m"
    )
    rollback = run.status.last_rollback
    assert rollback is not None
    assert rollback.at - run.world.log[0][0] >= timedelta(minutes=6), "not before the deadline + warm-up"
    assert run.world.deployments.keys() == {w.workload(run.status.stable_revision or "")}


def test_a_first_deploy_that_never_becomes_ready_fails_and_is_left_for_debugging() -> None:
    world = w.World(model_version="6")
    spec = builders.release_spec(version="6", deadline="3m", warmup="0s")
    world.never_ready.add(naming.build_revision(spec.serving, "fraud", "6"))
    run = w.Run(spec, world).settle()
    assert run.status.phase == Phase.FAILED
    assert run.status.reason == "ProgressDeadlineExceeded"
    assert len(world.deployments) == 1


def test_the_engine_raises_if_the_machine_never_settles(monkeypatch: pytest.MonkeyPatch) -> None:
    from controller.domain import machine

    def restless(spec: Any, status: releasestatus.ModelReleaseStatus, obs: Any, now: Any) -> machine.Move:
        return machine.Move(status.model_copy(update={"attempt": status.attempt + 1}))

    monkeypatch.setattr(machine, "advance", restless)
    with pytest.raises(engine.EngineDidNotSettleError):
        engine.reconcile(
            builders.release_spec(), releasestatus.ModelReleaseStatus(), w.World().observe(), now=w.T0
        )


def test_retry_after_a_failed_first_deploy_waits_a_fresh_progress_deadline() -> None:
    world = w.World(model_version="6")
    spec = builders.release_spec(version="6", deadline="3m", warmup="0s")
    revision = naming.build_revision(spec.serving, "fraud", "6")
    world.never_ready.add(revision)
    run = w.Run(spec, world).settle()
    assert run.status.phase == Phase.FAILED
    world.never_ready.clear()
    world.commands = world.commands.with_token(commands.Command.RETRY, "again")
    run.settle()
    assert run.status.phase == Phase.SUCCEEDED
    assert run.status.stable_revision == revision
    assert len(world.executed(actions.CreateWorkload)) == 1, "the same Deployment is reused"


def test_resuming_from_a_status_older_than_a_finished_rollback_never_routes_to_a_new_cold_canary() -> None:
    run = deployed(steps=[{"setWeight": 25}, {"approval": {}}, {"setWeight": 50}])
    run.in_phase(Phase.AWAITING_APPROVAL)
    stale = run.status
    run.world.approve(canary_revision(run), 1, releasestatus.ApprovalDecision.REJECT)
    run.reconcile()  # rolls back fully: traffic to stable, canary deleted
    assert run.status.phase == Phase.ROLLED_BACK
    assert run.world.deployments.keys() == {w.workload(run.status.stable_revision or "")}
    run.status = stale  # the controller died before this status was written
    decision = run.reconcile()
    assert not [a for a in decision.actions if isinstance(a, actions.CreateWorkload)]
    assert run.status.phase == Phase.ROLLED_BACK


def test_traffic_toward_a_workload_that_is_not_ready_is_held_until_it_is() -> None:
    run = deployed()
    run.until(lambda r: r.world.traffic is not None and r.world.traffic.canary_weight == 25)
    revision = canary_revision(run)
    run.world.deployments.pop(w.workload(revision))  # someone deleted the canary
    run.world.traffic = w.obs_.Traffic(
        stable_revision=run.status.stable_revision or "", canary_revision=revision, canary_weight=0
    )
    decision = run.reconcile()
    assert [type(a) for a in decision.actions] == [actions.CreateWorkload]
    assert decision.requeue_after == timedelta(seconds=30)
    run.until(lambda r: r.world.traffic is not None and r.world.traffic.canary_weight == 25)
    assert run.world.ready_replicas(run.world.deployments[w.workload(revision)]) >= 1


def test_an_analysis_skipped_by_promote_is_recorded_as_finished_without_a_verdict() -> None:
    run = deployed()
    run.world.verdict = w.always(Verdict.RUNNING)
    run.until(lambda r: bool(r.status.analysis))
    run.world.commands = run.world.commands.with_token(commands.Command.PROMOTE, "p1")
    run.reconcile()
    [record] = run.status.analysis
    assert record.finished_at is not None
    assert (record.verdict, record.rule) == (Verdict.INCONCLUSIVE, "skipped by promote")


def test_a_previous_stable_removed_early_by_a_new_rollout_is_said_in_an_event() -> None:
    run = deployed()  # the default scale-down delay (minutes) keeps model 6 retiring after promotion
    run.until(lambda r: r.status.phase == Phase.SUCCEEDED and r.status.stable_model_version == "7")
    [retiring] = run.status.retiring
    run.world.model_version = "8"
    run.set_spec(builders.release_spec(version="8"))
    run.until(lambda r: r.status.canary_model_version == "8")
    said = [e.message for d in run.decisions for e in d.events if e.reason == "ScaledDown"]
    assert said == [
        f"previous stable {retiring.name} removed before its scale-down delay ended: a new rollout starts"
    ]
    assert retiring.name not in run.world.deployments


def test_a_running_analysis_keeps_the_judges_compact_state_in_status_and_hands_it_back_at_the_next_look() -> (
    None
):
    """The judge's state lives in the run's record (never in the controller's memory): each look's
    new state is recorded, the next look's run descriptor carries it, an outage leaves it as it was,
    and a finished run drops it."""
    run = deployed()
    run.world.verdict = w.fails_after(timedelta(minutes=5))
    looks = itertools.count(1)
    original_observe = run.world.observe

    def observe() -> w.obs_.Observations:
        seen = original_observe()
        state = verdicts.EvidenceRecord(basis="window", intervals=next(looks))
        summaries = {
            name: summary if summary.unavailable else summary.model_copy(update={"evidence": state})
            for name, summary in seen.analysis.items()
        }
        return seen.model_copy(update={"analysis": summaries})

    run.world.observe = observe  # type: ignore[method-assign]
    run.until(lambda r: any(a.evidence is not None and a.evidence.intervals >= 3 for a in r.status.analysis))
    (record,) = run.status.analysis
    (descriptor,) = machine.build_running_analyses(run.spec, run.status)
    assert descriptor.run == record.run
    assert descriptor.evidence == record.evidence
    run.world.metrics_down = "connection refused"
    run.reconcile()
    assert run.status.analysis[0].evidence == record.evidence, "an outage brings no state and keeps the last"
    run.world.metrics_down = None
    run.until(lambda r: r.status.phase == Phase.ROLLED_BACK)
    assert run.status.analysis[0].verdict == Verdict.FAIL
    assert all(a.evidence is None for a in run.status.analysis), "a finished run's state leaves status"
