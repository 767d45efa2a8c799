"""Reads and whole seconds: prometheus-api-client sends `round(start)`, so a window must never
ask for a start that rounds up past a running pod's first sample (it would look newly started and
its first warm-up of traffic would vanish from every look — the demo's flaky Inconclusive)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analysis import counters
from controller.adapters.prometheus import prometheus_source


class RoundingClient:
    """PrometheusConnect as it is, for one counter growing 1000/s and scraped every second (a quarter
    second past it) since long before the query: `custom_query` of a range vector answers the raw
    samples in (time - range, time]; `custom_query_range` evaluates at whole-second start and end."""

    def custom_query(self, query: str, params: dict[str, str]) -> Any:
        found = re.fullmatch(r"(.+)\[(\d+)ms\]", query)
        assert found is not None, f"not a range vector: {query}"
        end = float(params["time"])
        start = end - int(found.group(2)) / 1000
        times = [k + 0.25 for k in range(math.floor(start), math.ceil(end)) if start < k + 0.25 <= end]
        return [{"metric": {"pod": "stable-0"}, "values": [[t, str(1000.0 * t)] for t in times]}]

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
        # The value at each step is the last sample at or before it.
        return [{"metric": {}, "values": [[t, str(1000.0 * (math.floor(t - 0.25) + 0.25))] for t in times]}]


@pytest.mark.parametrize("query", ["requests_total", "sum(requests_total)"])
@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.5, 0.7, 0.999])
def test_a_pod_running_before_the_window_counts_from_its_first_interval_whatever_the_start_fraction(
    fraction: float, query: str
) -> None:
    """A plain selector is read raw (a range vector), an expression by a range query: either way
    the read reaches back far enough that the running pod is never taken for a new one."""
    started = datetime(2026, 11, 23, 20, 0, 0, tzinfo=UTC) + timedelta(seconds=fraction)
    window = prometheus_source.build_window(
        started, started + timedelta(seconds=20), timedelta(seconds=2), timedelta(seconds=3)
    )
    assert window.start >= started.timestamp()
    assert window.start == int(window.start)
    source = prometheus_source.PrometheusSource("http://127.0.0.1:9")
    source._client = RoundingClient()  # type: ignore[assignment]
    [series] = source.fetch_series(query, window)
    increases, present = counters.counter_increases(series, window)
    assert present.all()
    assert list(increases) == [2000.0] * window.count  # every interval, none lost to a false warm-up
    source.close()
