"""Native histograms on a real Prometheus: scraped in the protobuf format, read by the source, judged.

Two simulated releases of a continuous-batching server (bimodal body, lognormal slow path) at
4,000 requests/s, 10 % canary, export their latency as native histograms of schema 3 (9 %
buckets) and no classic buckets; Prometheus (Debian's 2.42, `--enable-feature=native-histograms`)
scrapes them every second. The template names the classic `_bucket` series, as every template
does: the source finds the native histogram beside it and reads it at 19 % edges. One canary's
p99 is 50 % slower, the other's is the baseline's.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from analysis import judge, reference, specs, verdicts
from analysis.tooling import judge_benchmark, openmetrics, traffic_simulator
from controller.adapters.prometheus import prometheus_source
from controller.tooling import native_exposition
from tests.integration import prometheus_server

RELEASES = {
    "slow-tail": judge_benchmark.BATCHING.with_quantile_change(0.99, 0.5),
    "good": judge_benchmark.BATCHING,
}
LOWEST, HIGHEST = -112, 56
P99_ONLY = specs.AnalysisTemplateSpec.model_validate(
    {
        **reference.reference_manifest(interval="2s")["spec"],
        "metrics": [
            dict(reference.reference_manifest()["spec"]["metrics"][2], minDuration="10s"),
        ],
    }
)


@dataclasses.dataclass(frozen=True)
class Scraped:
    prometheus: prometheus_server.PrometheusServer
    started: float


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    folder = tmp_path_factory.mktemp("native")
    servers, targets = [], []
    for index, (name, canary) in enumerate(RELEASES.items()):
        fleet = openmetrics.PodFleet(
            traffic_simulator.Scenario(
                name, rps=4000, baseline=judge_benchmark.BATCHING, canary=canary, baseline_pods=3
            ),
            namespace="ml",
            release=name,
            canary="c1",
            baseline="s1",
            seed=40 + index,
            edges=native_exposition.schema_edges(LOWEST, HIGHEST),
        )
        port = prometheus_server.free_port()
        servers.append(native_exposition.serve(fleet, port, first_index=LOWEST))
        targets.append(f"127.0.0.1:{port}")
    server = prometheus_server.PrometheusServer(
        folder, scrape_targets=targets, native_histograms=True
    ).start()
    try:
        yield Scraped(server, time.time())
    finally:
        server.stop()
        for one in servers:
            one.shutdown()
            one.server_close()


def _scraped_seconds(served: Scraped, release: str) -> float:
    found = served.prometheus.query(
        f'count_over_time(histogram_count(inference_latency_seconds{{release="{release}",track="canary"}})[1m:1s])'
    )
    return float(found[0]["value"][1]) if found else 0.0  # type: ignore[index]


def _judged(served: Scraped, release: str) -> verdicts.AnalysisSummary:
    deadline = time.monotonic() + 90
    while _scraped_seconds(served, release) < 30 and time.monotonic() < deadline:
        time.sleep(0.5)  # waiting on a real server's scrapes, with a deadline
    assert _scraped_seconds(served, release) >= 30, "Prometheus did not scrape the native histograms"
    target = prometheus_source.Target(
        namespace="ml",
        release=release,
        canary=prometheus_source.ArmSelector("c1", "canary"),
        baseline=prometheus_source.ArmSelector("s1", "stable"),
        model="7",
    )
    window = prometheus_source.build_window(
        datetime.fromtimestamp(served.started + 3, UTC),
        datetime.now(UTC) - timedelta(seconds=1),
        P99_ONLY.interval,
        timedelta(0),
    )
    with prometheus_source.PrometheusSource(served.prometheus.url) as source:
        series = source.fetch_observations(P99_ONLY, target, window)
    [(_name, intervals)] = series.items()
    edges = {edge for interval in intervals for edge in (interval.baseline.buckets or {})}
    assert "0.5" in edges  # 2^-1: a boundary of schema 2
    assert "0.594604" in edges  # 2^-0.75: no classic layout has it
    assert "0.25" in edges
    return judge.assess(P99_ONLY, series)


def test_a_p99_half_again_as_slow_is_rolled_back_on_native_histograms(scraped: Scraped) -> None:
    summary = _judged(scraped, "slow-tail")
    [p99] = summary.metrics
    assert summary.verdict == verdicts.Verdict.FAIL, summary.rule
    assert p99.resolution is not None
    assert "buckets 1.19× apart there" in p99.resolution


def test_a_good_canary_is_not_rolled_back_on_native_histograms(scraped: Scraped) -> None:
    summary = _judged(scraped, "good")
    assert summary.verdict != verdicts.Verdict.FAIL, summary.rule
    [p99] = summary.metrics
    assert p99.canary_requests is not None
    assert p99.canary_requests > 5000
