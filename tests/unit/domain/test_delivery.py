"""Status says how Slack delivery goes: the rollout's thread, and a condition that turns False while
messages keep failing and True again once they got through — its transition time moving only then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.domain import delivery, observations
from controller.resources import meta, releasestatus

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def condition(status: releasestatus.ModelReleaseStatus) -> meta.Condition:
    return next(c for c in status.conditions if c.type == delivery.CONDITION)


def test_without_slack_status_says_nothing_about_delivery() -> None:
    status = releasestatus.ModelReleaseStatus()
    assert delivery.record_delivery(status, None, NOW) == status


def test_the_thread_is_recorded_and_failures_flip_the_condition_only_when_they_start_and_end() -> None:
    fine = observations.NotificationDelivery(channel="#ml", rollout="abc.1", thread_ts="1795471545.000100")
    status = delivery.record_delivery(releasestatus.ModelReleaseStatus(), fine, NOW)
    assert status.slack == releasestatus.SlackThread(
        channel="#ml", rollout="abc.1", thread_ts="1795471545.000100"
    )
    assert (condition(status).status, condition(status).last_transition_time) == (
        meta.ConditionStatus.TRUE,
        NOW,
    )

    failing = fine.model_copy(
        update={
            "undelivered": 2,
            "failing_since": NOW,
            "last_error": "Slack answered 503 service_unavailable",
        }
    )
    later = NOW + timedelta(minutes=1)
    status = delivery.record_delivery(status, failing, later)
    assert condition(status).status == meta.ConditionStatus.FALSE
    assert "2 message(s) to #ml not delivered" in condition(status).message
    assert "503 service_unavailable" in condition(status).message
    status = delivery.record_delivery(status, failing, later + timedelta(minutes=1))
    assert condition(status).last_transition_time == later

    status = delivery.record_delivery(status, fine, later + timedelta(minutes=5))
    assert (condition(status).status, condition(status).last_transition_time) == (
        meta.ConditionStatus.TRUE,
        later + timedelta(minutes=5),
    )
