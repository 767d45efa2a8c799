"""The controller's metrics, derived from the status each reconcile read and the one it wrote."""

from __future__ import annotations

from datetime import datetime, timedelta

import prometheus_client

from controller import ports
from controller.domain import engine
from controller.resources import commands, modelrelease, releasestatus
from controller.runtime import reconciler, telemetry
from tests.unit.domain import builders
from tests.unit.domain import world as w

Phase = releasestatus.Phase
STEPS = [
    {"setWeight": 25},
    {"analysis": {"template": "t", "maxDuration": "15m"}},
    {"pause": {}},
    {"setWeight": 50},
]


def _value(metrics: telemetry.ControllerMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


class Observed:
    """The engine decision by decision (as the runtime writes each status), feeding the metrics."""

    def __init__(self, world: w.World, spec: modelrelease.ModelReleaseSpec) -> None:
        self.world, self.spec = world, spec
        self.status = releasestatus.ModelReleaseStatus()
        self.metrics = telemetry.ControllerMetrics()

    def until(self, done: object, limit: int = 2000) -> None:
        for _ in range(limit):
            decision = engine.reconcile(self.spec, self.status, self.world.observe(), now=self.world.now)
            for action in decision.actions:
                self.world.execute(action)
            ref = ports.ReleaseRef(namespace="ml", name="fraud", uid="u1", spec=self.spec)
            reconciler.observe_metrics(self.metrics, ref, self.status, decision.status, self.world.now)
            self.status = decision.status
            if callable(done) and done(self.status):
                return
            self.world.tick(min(decision.requeue_after or timedelta(seconds=30), timedelta(seconds=30)))
        raise AssertionError(f"not reached: {self.status.phase} {self.status.message}")


def test_a_promoted_rollout_counts_its_steps_verdicts_and_time_with_and_without_waiting_for_people() -> None:
    world = w.World(model_version="6")
    run = Observed(world, builders.release_spec(version="6", steps=STEPS))
    run.until(lambda s: s.phase == Phase.SUCCEEDED)
    world.model_version = "7"
    run.spec = builders.release_spec(version="7", steps=STEPS)
    run.until(lambda s: s.phase == Phase.PAUSED)
    world.tick(timedelta(hours=2))  # the pause waits two hours for someone
    world.commands = world.commands.with_token(commands.Command.PROMOTE, "t1")
    run.until(lambda s: s.phase == Phase.SUCCEEDED and s.canary_revision is None)
    m = run.metrics

    assert _value(m, "modelrelease_rollouts_total", outcome="Promoted", reason="Promoted") == 1
    assert _value(m, "modelrelease_verdicts_total", metric="", verdict="Pass") == 1
    for kind in ("setWeight", "analysis"):
        assert _value(m, "modelrelease_step_duration_seconds_count", kind=kind, waits_for_people="false") >= 1
    paused = _value(m, "modelrelease_step_duration_seconds_sum", kind="pause", waits_for_people="true")
    assert paused >= 7200
    included = _value(m, "modelrelease_rollout_duration_seconds_sum", outcome="Promoted", waiting="included")
    excluded = _value(m, "modelrelease_rollout_duration_seconds_sum", outcome="Promoted", waiting="excluded")
    assert included - excluded == paused
    assert 0 < excluded < 3600, "the rollout's own time: warm-up, steps and the 5-minute analysis"
    assert _value(m, "modelrelease_releases", namespace="ml", phase="Succeeded") == 1
    assert _value(m, "modelrelease_releases", namespace="ml", phase="Progressing") == 0


def test_a_rolled_back_rollout_counts_the_rollback_by_reason_and_a_failing_metric_once() -> None:
    world = w.World(model_version="6", verdict=w.fails_after(timedelta(minutes=2)))
    run = Observed(world, builders.release_spec(version="6", steps=STEPS))
    run.until(lambda s: s.phase == Phase.SUCCEEDED)
    world.model_version = "7"
    run.spec = builders.release_spec(version="7", steps=STEPS)
    run.until(lambda s: s.phase == Phase.ROLLED_BACK)
    for _ in range(5):  # later reconciles see the same finished analysis: not counted again
        run.until(lambda s: True)
    m = run.metrics
    assert _value(m, "modelrelease_rollouts_total", outcome="RolledBack", reason="AnalysisFailed") == 1
    assert _value(m, "modelrelease_verdicts_total", metric="", verdict="Fail") == 1
    assert _value(m, "modelrelease_releases", namespace="ml", phase="RolledBack") == 1


def test_warnings_about_outside_systems_count_as_delivery_failures_by_target() -> None:
    m = telemetry.ControllerMetrics()
    for reason in ("SlackUndelivered", "GitWriteBackFailed", "RegistryUpdateFailed", "RegistryUpdateFailed"):
        m.count_warning(reason)
    m.count_warning("ProgressDeadlineExceeded")
    assert _value(m, "modelrelease_delivery_failures_total", target="slack", reason="SlackUndelivered") == 1
    assert _value(m, "modelrelease_delivery_failures_total", target="git", reason="GitWriteBackFailed") == 1
    assert (
        _value(m, "modelrelease_delivery_failures_total", target="mlflow", reason="RegistryUpdateFailed") == 2
    )
    assert _value(m, "modelrelease_warning_events_total", reason="ProgressDeadlineExceeded") == 1
    text = prometheus_client.generate_latest(m.registry).decode()
    assert 'modelrelease_delivery_failures_total{reason="SyncFailed",target="git"} 0.0' in text


def test_a_release_that_is_gone_leaves_the_phase_gauge() -> None:
    m = telemetry.ControllerMetrics()
    before = releasestatus.ModelReleaseStatus()
    after = before.model_copy(update={"phase": Phase.PROGRESSING})
    m.observe_transition("ml", "fraud", before, after, None, False, datetime(2026, 1, 1))
    assert _value(m, "modelrelease_releases", namespace="ml", phase="Progressing") == 1
    m.forget("ml", "fraud")
    assert _value(m, "modelrelease_releases", namespace="ml", phase="Progressing") == 0


def test_the_series_alerts_count_on_exist_at_zero_before_their_first_event() -> None:
    # increase() over a series born at 1 is 0: the first rollback of a process would not alert.
    text = prometheus_client.generate_latest(telemetry.ControllerMetrics().registry).decode()
    assert 'modelrelease_rollouts_total{outcome="RolledBack",reason="AnalysisFailed"} 0.0' in text
    assert 'modelrelease_verdicts_total{metric="",verdict="Fail"} 0.0' in text
    assert 'modelrelease_rollout_duration_seconds_count{outcome="Promoted",waiting="excluded"} 0.0' in text
