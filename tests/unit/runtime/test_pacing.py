"""How long a release's daemon waits: the engine's requeue, bounded against spinning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.domain import actions, engine, machine
from controller.runtime import pacing

POLL = timedelta(seconds=30)
START = actions.StartAnalysis(
    run="r-a1-s1",
    template="t",
    step_index=1,
    canary_revision="c",
    canary_track=actions.Track.CANARY,
    canary_model_version="7",
    baseline_revision="s",
    start=datetime(2026, 1, 1, tzinfo=UTC),
    max_duration=timedelta(minutes=10),
)


def test_a_fixed_point_whose_wake_up_is_already_due_looks_again_at_the_poll_interval_not_at_once() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert engine.build_requeue(now - timedelta(seconds=5), now, stopped_early=False) == machine.POLL
    assert engine.build_requeue(now + timedelta(seconds=5), now, stopped_early=False) == timedelta(seconds=5)
    assert engine.build_requeue(None, now, stopped_early=False) is None
    assert engine.build_requeue(None, now, stopped_early=True) == timedelta(0)


def test_the_same_actions_decided_again_without_effect_back_off_up_to_the_poll_interval() -> None:
    pace = None
    waits = []
    for _ in range(12):
        pace = pacing.plan_wait(
            pace, requeue_after=timedelta(0), decided=(START,), status_written=False, poll_interval=POLL
        )
        waits.append(pace.wait)
    assert waits[0] == timedelta(0)  # the first time is taken at its word
    assert waits[1] == pacing.FIRST_REPEAT_DELAY
    assert waits == sorted(waits)
    assert waits[-1] == POLL


def test_progress_resets_the_back_off() -> None:
    slowed = pacing.Pace(wait=POLL, repeats=7, last_actions=(START,))
    moved = pacing.plan_wait(
        slowed, requeue_after=timedelta(0), decided=(START,), status_written=True, poll_interval=POLL
    )
    assert (moved.wait, moved.repeats) == (timedelta(0), 0)


def test_transient_errors_back_off_less_while_a_rollout_is_under_way() -> None:
    assert pacing.plan_retry_delay(8, 60.0, rolling_out=True) == pacing.ROLLOUT_BACKOFF_MAX
    assert pacing.plan_retry_delay(8, 60.0, rolling_out=False) == 60.0
    assert pacing.plan_retry_delay(0, 60.0, rolling_out=True) == 0.5
