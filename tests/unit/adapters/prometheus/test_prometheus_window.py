"""Range queries and whole seconds: prometheus-api-client sends `round(start)`, so a window must never
ask for a start that rounds up past a running pod's first sample (it would look newly started and
its first warm-up of traffic would vanish from every look — the demo's flaky Inconclusive)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analysis import counters
from controller.adapters.prometheus import prometheus_source


class RoundingClient:
    """PrometheusConnect.custom_query_range as it is: whole-second start and end, evaluation every step,
    for one counter growing 1000/s since long before the query."""

    def custom_query_range(self, query: str, start_time: datetime, end_time: datetime, step: str) -> Any:
        start, end, every = (
            round(start_time.timestamp()),
            round(end_time.timestamp()),
            float(step.rstrip("s")),
        )
        times = []
        t = float(start)
        while t <= end:
            times.append(t)
            t += every
        return [{"metric": {"pod": "stable-0"}, "values": [[t, str(1000.0 * t)] for t in times]}]


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.5, 0.7, 0.999])
def test_a_pod_running_before_the_window_counts_from_its_first_interval_whatever_the_start_fraction(
    fraction: float,
) -> None:
    started = datetime(2026, 11, 23, 20, 0, 0, tzinfo=UTC) + timedelta(seconds=fraction)
    window = prometheus_source.build_window(
        started, started + timedelta(seconds=20), timedelta(seconds=2), timedelta(seconds=3)
    )
    assert window.start >= started.timestamp()
    assert window.start == int(window.start)
    source = prometheus_source.PrometheusSource("http://127.0.0.1:9")
    source._client = RoundingClient()  # type: ignore[assignment]
    [series] = source.fetch_series("requests_total", window)
    increases, present = counters.counter_increases(series, window)
    assert present.all()
    assert list(increases) == [2000.0] * window.count  # every interval, none lost to a false warm-up
    source.close()
