"""A rollout judged by the Prometheus judge: controller process, real control plane, real Prometheus.

The canary's pods are simulated by the live exporter with the revisions the controller chose;
Prometheus scrapes them every second; the controller's analysis step reads them through the
`AnalysisBackend` port (`--analysis prometheus`) and rolls back on the judge's Fail.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterator

import pytest

from analysis import reference
from analysis.tooling import openmetrics, traffic_simulator
from controller.tooling import exporter
from tests.cluster import harness
from tests.integration import prometheus_server


@pytest.fixture
def scrape_port() -> int:
    return prometheus_server.free_port()


@pytest.fixture
def prometheus(tmp_path: pathlib.Path, scrape_port: int) -> Iterator[prometheus_server.PrometheusServer]:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    server = prometheus_server.PrometheusServer(folder, scrape_targets=[f"127.0.0.1:{scrape_port}"]).start()
    yield server
    server.stop()


def _folded(status: dict[str, object]) -> int:
    """Intervals the running analysis's compact state in status has folded (-1 without one)."""
    runs = status.get("analysis") or []
    assert isinstance(runs, list)
    running = [r for r in runs if r.get("finishedAt") is None and r.get("evidence")]
    return int(running[-1]["evidence"]["intervals"]) if running else -1


def test_a_canary_serving_errors_is_rolled_back_on_the_judges_evidence_by_a_controller_that_restarted_mid_run(
    world: harness.World,
    tmp_path: pathlib.Path,
    prometheus: prometheus_server.PrometheusServer,
    scrape_port: int,
) -> None:
    """The first controller folds intervals (without traffic yet) into the run's state in status and
    is killed; the second continues from that state once the canary serves errors."""
    template = reference.reference_manifest(name="quality", interval="2s")
    template["metadata"]["namespace"] = world.namespace
    template["spec"]["metrics"] = [{**template["spec"]["metrics"][0], "minDuration": "10s"}]
    world.create(template)
    controller = harness.Controller(
        world, tmp_path / "controller.log", "--analysis", "prometheus", "--prometheus", prometheus.url
    ).start()
    try:
        world.create(harness.release_body("ranker", "1"))
        world.wait_for_phase("ranker", "Succeeded")
        world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
        world.wait_for_status("ranker", lambda s: _folded(s) >= 2, what="a compact state of two intervals")
        controller.kill()
        status = world.status("ranker")
        broken = dataclasses.replace(traffic_simulator.Behaviour(), error_rate=0.2)
        fleet = openmetrics.PodFleet(
            traffic_simulator.Scenario("broken", rps=400, canary=broken, canary_weight=0.25),
            namespace=world.namespace,
            release="ranker",
            canary=status["canaryRevision"],
            baseline=status["stableRevision"],
            seed=21,
        )
        metrics_server, _ = exporter.serve(fleet, scrape_port)
        try:
            controller.start()
            rolled = world.wait_for_phase("ranker", "RolledBack", timeout=90)
        finally:
            metrics_server.shutdown()
            metrics_server.server_close()
    finally:
        controller.stop()
    assert rolled["reason"] == "AnalysisFailed"
    run = rolled["analysis"][-1]
    assert run["verdict"] == "Fail"
    assert "evidence" not in run  # a finished run's state leaves status
    assert run["rule"].startswith("errors: evidence")
    (errors,) = run["metrics"]
    assert errors["canaryRequests"] > 0
    assert errors["evidence"] >= 1 / errors["alpha"]
    assert errors["canary"] > 0.1 > errors["baseline"]
