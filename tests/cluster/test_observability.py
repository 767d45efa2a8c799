"""The controller's /metrics and the Grafana dashboard on a real Prometheus.

The controller process runs two rollouts judged on a real Prometheus (model 2 promoted after a
shadow that agrees, model 3 rolled back for disagreeing on 10 % of requests, as in test_shadow.py),
with two of its API calls refused on the way (by a fault proxy in front of the real API server);
the same Prometheus scrapes the controller's /metrics. Then every query of every panel of
deploy/monitoring/grafana-dashboard.json is asked as Grafana would (a range query over the test's
span, Grafana's variables filled in) and must return series. Its health endpoint — the Deployment's
probes — answers 200.
"""

from __future__ import annotations

import json
import pathlib
import time
import urllib.request

from controller.tooling import fleet
from tests.cluster import harness, test_shadow
from tests.controlplane import faultproxy
from tests.controlplane.faultproxy import FaultRule
from tests.integration import prometheus_server

DASHBOARD = harness.ROOT / "deploy/monitoring/grafana-dashboard.json"


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def as_grafana_asks(expr: str, span: float) -> str:
    # $__range: the dashboard's time range; $__rate_interval: at least four scrape intervals (1 s here).
    return expr.replace("$__range", f"{int(span) + 1}s").replace("$__rate_interval", "15s")


def test_every_dashboard_panel_returns_series_from_a_prometheus_that_scraped_the_controller(
    world: harness.World, tmp_path: pathlib.Path, fault_proxy: faultproxy.FaultProxy
) -> None:
    proxy = fault_proxy
    metrics_port, health_port = prometheus_server.free_port(), prometheus_server.free_port()
    scenario = fleet.FleetScenario.from_document(
        {"requestsPerSecond": 3000, "versions": {"2": {"disagreement": 0.005}, "3": {"disagreement": 0.10}}}
    )
    serving = fleet.ServingFleet(world.kube, scenario, seed=7, namespace=world.namespace)
    server = fleet.FleetServer(serving, tmp_path / "targets.json", clock=time.time, tick=0.2).start()
    prometheus = prometheus_server.PrometheusServer(
        tmp_path, [f"127.0.0.1:{metrics_port}"], file_sd=tmp_path / "targets.json"
    ).start()
    world.create(test_shadow.SHADOW_TEMPLATE)
    world.create(test_shadow.ROUTE)
    flags = (
        *("--analysis", "prometheus", "--prometheus", prometheus.url),
        *("--metrics-port", str(metrics_port), "--metrics-host", "127.0.0.1"),
        *("--health-port", str(health_port)),
    )
    controller = harness.Controller(world, tmp_path / "controller.log", *flags, proxy=proxy).start()
    started = time.time()
    try:
        world.create(test_shadow.shadow_release())
        world.wait_for_phase("ranker", "Succeeded")
        # A misspelt command: a Warning Event early on, so its panel has a series over the whole run
        # (the rollback's comes last, too late for `increase` to see it move).
        command = {"metadata": {"annotations": {"modelrelease.dev/command-promot": "typo"}}}
        world.patch_release("ranker", command)
        world.wait_until(
            lambda: [e for e in world.events() if e["reason"] == "UnknownCommand"] or None,
            timeout=10,
            what="the UnknownCommand Warning",
        )
        # Two refused reads of the release: the controller's API errors and reconcile errors.
        proxy.add(FaultRule(times=2, code=503, verb="get", plural="modelreleases"))
        world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
        world.wait_for_status(
            "ranker", lambda s: s.get("stableModelVersion") == "2", timeout=120, what="model 2"
        )
        world.patch_release("ranker", {"spec": {"model": {"version": "3"}}})
        world.wait_for_phase("ranker", "RolledBack", timeout=120)
        with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/healthz", timeout=5) as health:
            assert health.status == 200
        ended = time.time()
        world.wait_until(
            lambda: prometheus.query('modelrelease_rollouts_total{outcome="RolledBack"}') or None,
            timeout=30,
            what="the rollback scraped",
        )
        empty: list[str] = []
        for title, expr in panel_queries():
            series = prometheus.query_range(as_grafana_asks(expr, ended - started), started, time.time(), 1)
            if not series:
                empty.append(f"{title}: {expr}")
    finally:
        controller.stop()
        prometheus.stop()
        server.stop()
    assert empty == [], "panels with no data:\n" + "\n".join(empty)
    assert len(panel_queries()) >= 15


def test_the_dashboard_queries_only_metrics_the_controller_exports() -> None:
    from controller.runtime import telemetry

    text = telemetry.prometheus_client.generate_latest(telemetry.ControllerMetrics().registry).decode()
    exported = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    names: set[str] = set()
    for _, expr in panel_queries():
        names.update(word for word in _words(expr) if word.startswith("modelrelease_"))
    suffixes = ("_bucket", "_count", "_sum", "_total")
    for name in names:
        base = next((name.removesuffix(s) for s in suffixes if name.endswith(s)), name)
        assert name in exported or base in exported, f"{name} is not a metric the controller exports"


def _words(expr: str) -> list[str]:
    word = ""
    found: list[str] = []
    for char in expr + " ":
        if char.isalnum() or char == "_":
            word += char
        else:
            if word:
                found.append(word)
            word = ""
    return found
