"""Reading what the fleet served from a real Prometheus, exactly: advance the fleet to a moment, wait
until every pod has been scraped after it, and sum the counters by a label."""

from __future__ import annotations

import time

from controller.tooling import fleet, prometheus_process
from tests.controlplane.kube import wait_until


def served_until(
    serving: fleet.ServingFleet,
    prometheus: prometheus_process.PrometheusServer,
    now: float,
    series: str,
    *,
    pods: int,
    by: str,
) -> dict[str, float]:
    """Requests served up to fleet time `now` per value of label `by`, once Prometheus has scraped
    all `pods` after the fleet reached `now` (so the counts carry no scrape-timing error)."""
    serving.advance(now)
    since = time.time()

    def scraped() -> bool:
        stamps = prometheus.query(f"timestamp({series})")
        return len(stamps) >= pods and min(float(row["value"][1]) for row in stamps) > since  # type: ignore[index]

    wait_until(scraped, timeout=30, what=f"every pod of {series} scraped after fleet time {now}")
    totals: dict[str, float] = {}
    for row in prometheus.query(series):
        value = str(row["metric"][by])  # type: ignore[index]
        totals[value] = totals.get(value, 0.0) + float(row["value"][1])  # type: ignore[index]
    return totals
