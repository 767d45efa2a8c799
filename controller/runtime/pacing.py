"""How long a release's daemon waits before the next reconcile: the engine's word, bounded.

The engine asks for a zero requeue only when it left moves undone on purpose. If the same actions
come back with no status change, they had no effect the engine can see (a backend that forgets what
it started, an object the API keeps refusing): reconciling again at once would spin as fast as the
API answers. Such repeats wait with a growing delay up to the poll interval, and are logged, so a
bug of this class costs a few requests per second at most instead of hundreds.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from controller.domain import actions

FIRST_REPEAT_DELAY = timedelta(milliseconds=250)


@dataclasses.dataclass(frozen=True)
class Pace:
    wait: timedelta
    repeats: int  # consecutive reconciles that decided the same actions and wrote nothing
    last_actions: tuple[actions.Action, ...]


def plan_wait(
    previous: Pace | None,
    *,
    requeue_after: timedelta | None,
    decided: tuple[actions.Action, ...],
    status_written: bool,
    poll_interval: timedelta,
) -> Pace:
    wait = poll_interval if requeue_after is None else min(poll_interval, requeue_after)
    repeated = (
        previous is not None and bool(decided) and not status_written and decided == previous.last_actions
    )
    repeats = previous.repeats + 1 if repeated and previous is not None else 0
    if repeats:
        backoff = FIRST_REPEAT_DELAY * 2 ** min(repeats - 1, 16)
        wait = max(wait, min(backoff, poll_interval))
    return Pace(wait=wait, repeats=repeats, last_actions=decided)


def plan_retry_delay(retry: int, backoff_max: float, *, rolling_out: bool) -> float:
    """Backoff after a transient error; short while a rollout is under way, where time is exposure."""
    cap = min(backoff_max, ROLLOUT_BACKOFF_MAX) if rolling_out else backoff_max
    return float(min(cap, 0.5 * 2 ** min(retry, 8)))


ROLLOUT_BACKOFF_MAX = 10.0
