"""What status says about notifications getting through: the rollout's Slack thread, and the
`NotificationsDelivered` condition, False while messages keep failing (they are retried, never lost).

Derived from the Slack adapter's record (an observation), so the domain stays the only writer of
status while delivery runs in the background.
"""

from __future__ import annotations

from datetime import datetime

from controller.domain import observations
from controller.resources import meta, releasestatus

CONDITION = "NotificationsDelivered"


def record_delivery(
    status: releasestatus.ModelReleaseStatus,
    delivery: observations.NotificationDelivery | None,
    now: datetime,
) -> releasestatus.ModelReleaseStatus:
    if delivery is None:
        return status
    thread = status.slack
    if delivery.thread_ts is not None and delivery.rollout is not None:
        thread = releasestatus.SlackThread(
            channel=delivery.channel, rollout=delivery.rollout, thread_ts=delivery.thread_ts
        )
    if delivery.undelivered:
        since = delivery.failing_since.isoformat() if delivery.failing_since else "now"
        value, reason = meta.ConditionStatus.FALSE, "SlackUnavailable"
        message = (
            f"{delivery.undelivered} message(s) to {delivery.channel} not delivered since {since}: "
            f"{delivery.last_error or 'unknown error'}; retrying"
        )
    else:
        value, reason, message = (
            meta.ConditionStatus.TRUE,
            "Delivered",
            f"every message reached {delivery.channel}",
        )
    before = next((c for c in status.conditions if c.type == CONDITION), None)
    moved = before is None or before.status != value
    condition = meta.Condition(
        type=CONDITION,
        status=value,
        reason=reason,
        message=message,
        last_transition_time=now if moved or before is None else before.last_transition_time,
    )
    others = tuple(c for c in status.conditions if c.type != CONDITION)
    return status.model_copy(update={"slack": thread, "conditions": (*others, condition)})
