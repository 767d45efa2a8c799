"""A Prometheus outage mid-analysis, with the real server killed under the controller process: an
abort acts within a poll, and an analysis step ends by its policy at maxDuration (paused, never a
silent pass) with Events naming the outage — no reconcile fails for it."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from analysis import reference
from controller.adapters import labels
from tests.cluster import harness
from tests.integration import prometheus_server


@pytest.fixture
def prometheus(tmp_path: pathlib.Path) -> Iterator[prometheus_server.PrometheusServer]:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    server = prometheus_server.PrometheusServer(folder, scrape_targets=[]).start()
    yield server
    server.stop()


def _release(name: str, max_duration: str) -> dict[str, object]:
    steps = [
        {"setWeight": 25},
        {"analysis": {"template": "quality", "maxDuration": max_duration}},
        {"setWeight": 50},
    ]
    return harness.release_body(name, "1", strategy={"canary": {"steps": steps, "scaleDownDelay": "0s"}})


def _analysing(status: dict[str, object]) -> bool:
    runs = status.get("analysis") or []
    assert isinstance(runs, list)
    return bool(runs) and runs[-1].get("verdict") == "Running"


def test_with_prometheus_killed_mid_analysis_abort_acts_and_the_step_pauses_at_max_duration(
    world: harness.World,
    tmp_path: pathlib.Path,
    prometheus: prometheus_server.PrometheusServer,
) -> None:
    template = reference.reference_manifest(name="quality", interval="2s")
    template["metadata"]["namespace"] = world.namespace
    world.create(template)
    controller = harness.Controller(
        world, tmp_path / "controller.log", "--analysis", "prometheus", "--prometheus", prometheus.url
    ).start()
    try:
        for name, max_duration in (("ranker", "40s"), ("scorer", "30m")):
            world.create(_release(name, max_duration))
        for name in ("ranker", "scorer"):
            world.wait_for_phase(name, "Succeeded")
            world.patch_release(name, {"spec": {"model": {"version": "2"}}})
        for name in ("ranker", "scorer"):
            world.wait_for_status(name, _analysing, what="analysing on an empty Prometheus", timeout=60)
        prometheus.stop()  # killed mid-analysis

        world.patch_release(
            "scorer", {"metadata": {"annotations": {f"{labels.COMMAND_PREFIX}abort": "outage-1"}}}
        )
        aborted = world.wait_for_phase("scorer", "RolledBack", timeout=10)
        assert aborted["reason"] == "Aborted"

        paused = world.wait_for_phase("ranker", "Paused", timeout=90)
        assert paused["reason"] == "AnalysisInconclusive"
        assert (
            "maxDuration 40s reached without a verdict; the metrics backend is unavailable"
            in paused["message"]
        )
    finally:
        controller.stop()
    said = [e for e in world.events() if e["reason"] == "AnalysisMetricsUnavailable"]
    assert "ranker" in {e["involvedObject"]["name"] for e in said}
    # The outage was an observation, never a failed reconcile (no retry with backoff for it).
    port = prometheus.url.rsplit(":", 1)[-1]
    failed = [
        line for line in controller.log.read_text().splitlines() if "will retry" in line and port in line
    ]
    assert failed == []
    assert not [
        c
        for c in world.status("ranker")["conditions"]
        if c["type"] == "ReconcileError" and c["status"] == "True"
    ]
