"""The judge on a real Prometheus: backfilled releases through `modelrelease analyze`, one live scrape.

Four releases are simulated for an hour (1000–3000 rps, 10 % canary, scraped every 30 s with 1 %
missed scrapes and a baseline pod restart) and backfilled with promtool; the CLI then judges
each from minute 3 (after warm-up) to the end, as a run that reached its maxDuration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import json
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from analysis import reference, verdicts
from analysis.tooling import openmetrics, traffic_simulator
from controller.adapters import kubeapi
from controller.adapters.prometheus import prometheus_analysis, prometheus_source
from controller.domain import actions
from controller.ports import ReleaseRef
from controller.resources import modelrelease
from controller.tooling import exporter
from tests.cluster import harness
from tests.integration import prometheus_server

# The buckets a real server exports: prometheus_client's defaults, 1.3–2.5× apart.
EDGES = traffic_simulator.REAL_EDGES["prometheus-default"]
HOUR = 3600.0
GOOD = traffic_simulator.Behaviour()
RELEASES = {
    "good": traffic_simulator.Scenario(
        "good", rps=3000, baseline_pods=2, pod_offset=0.005, warmup_seconds=30
    ),
    "slow-tail": traffic_simulator.Scenario(
        "slow-tail", rps=1000, baseline_pods=2, canary=GOOD.with_quantile_change(0.99, 0.2)
    ),
    "errors": traffic_simulator.Scenario(
        "errors", rps=1000, baseline_pods=2, canary=dataclasses.replace(GOOD, error_rate=0.01)
    ),
    "no-canary-traffic": traffic_simulator.Scenario("silent", rps=1000, baseline_pods=2, canary_weight=0.0),
}
MODELRELEASE = str(pathlib.Path(sys.executable).parent / "modelrelease")


@dataclasses.dataclass(frozen=True)
class Served:
    prometheus: prometheus_server.PrometheusServer
    start: float  # epoch seconds at which the backfilled pods started
    template: pathlib.Path
    live_template: pathlib.Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("prometheus")
    start = float(int(time.time() // 60) * 60 - 3 * HOUR)
    fleets = [
        openmetrics.PodFleet(
            scenario,
            namespace="ml",
            release=name,
            canary="c1",
            baseline="s1",
            seed=index,
            edges=EDGES,
            missing_scrapes=0.01,
            restarts=((f"{name}-s1-1", 1500.0),),
        )
        for index, (name, scenario) in enumerate(RELEASES.items())
    ]
    history = folder / "history.om"
    with history.open("w") as out:
        openmetrics.write_history(fleets, out, start_epoch=start, duration_seconds=HOUR, scrape_seconds=30)
    prometheus_server.backfill(history, folder / "data")
    history.unlink()

    live = openmetrics.PodFleet(
        traffic_simulator.Scenario("live", rps=500),
        namespace="ml",
        release="live",
        canary="c2",
        baseline="s2",
        seed=9,
        edges=EDGES,
    )
    port = prometheus_server.free_port()
    metrics_server, _ = exporter.serve(live, port)
    server = prometheus_server.PrometheusServer(folder, scrape_targets=[f"127.0.0.1:{port}"]).start()
    template = folder / "template.yaml"
    template.write_text(yaml.safe_dump(reference.reference_manifest()))
    live_template = folder / "live-template.yaml"
    live_template.write_text(yaml.safe_dump(reference.reference_manifest(interval="2s")))
    try:
        yield Served(server, start, template, live_template)
    finally:
        server.stop()
        metrics_server.shutdown()
        metrics_server.server_close()


def analyze(
    served: Served, release: str, *extra: str, template: pathlib.Path | None = None
) -> dict[str, Any]:
    completed = subprocess.run(
        [
            MODELRELEASE,
            "analyze",
            f"--prometheus={served.prometheus.url}",
            f"--template={template or served.template}",
            "--namespace=ml",
            f"--release={release}",
            "--canary=c1",
            "--baseline=s1",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def whole_hour(served: Served, release: str) -> dict[str, Any]:
    return analyze(
        served,
        release,
        f"--start={served.start + 180:.0f}",
        f"--end={served.start + HOUR:.0f}",
        "--warmup=60s",
        "--final",
    )


def metric(judgement: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(m for m in judgement["metrics"] if m["name"] == name)
    return found


def test_a_good_release_passes_with_every_metric_inside_its_margin(served: Served) -> None:
    judgement = whole_hour(served, "good")
    assert judgement["verdict"] == verdicts.Verdict.PASS, judgement["rule"]
    errors = metric(judgement, "errors")
    assert errors["canaryRequests"] > 900_000
    assert errors["baselineRequests"] > 8_000_000


def test_a_canary_with_a_p99_twenty_percent_slower_is_rolled_back_on_the_p99(served: Served) -> None:
    judgement = whole_hour(served, "slow-tail")
    assert judgement["verdict"] == verdicts.Verdict.FAIL
    assert judgement["rule"].startswith("latency-p99:")
    p99 = metric(judgement, "latency-p99")
    assert 0.1 < p99["effect"] < 0.3  # the one-edge estimate of a +20 % tail shift
    assert p99["evidence"] >= 1 / p99["alpha"]
    assert "le=0.25s" in p99["resolution"]
    assert metric(judgement, "latency-p50")["verdict"] != verdicts.Verdict.FAIL


def test_a_canary_with_twice_the_errors_is_rolled_back_on_errors(served: Served) -> None:
    judgement = whole_hour(served, "errors")
    assert judgement["verdict"] == verdicts.Verdict.FAIL
    errors = metric(judgement, "errors")
    assert errors["verdict"] == verdicts.Verdict.FAIL
    assert errors["ciLow"] > 0.2  # worse than the 20 % margin, at the judge's confidence
    assert 0.008 < errors["canary"] < 0.012
    assert 0.004 < errors["baseline"] < 0.006


def test_a_canary_without_traffic_is_never_a_pass(served: Served) -> None:
    judgement = whole_hour(served, "no-canary-traffic")
    assert judgement["verdict"] == verdicts.Verdict.INCONCLUSIVE
    assert "no canary data" in judgement["rule"]
    assert metric(judgement, "errors")["canaryRequests"] == 0


def test_analyze_names_a_bad_flag_and_exits_two(served: Served) -> None:
    completed = subprocess.run(
        [
            MODELRELEASE,
            "analyze",
            f"--prometheus={served.prometheus.url}",
            f"--template={served.template}",
            "--namespace=ml",
            "--release=good",
            "--canary=c1",
            "--baseline=s1",
            "--start=yesterday",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert "--start 'yesterday'" in completed.stderr


def test_a_live_scrape_reaches_the_judge_with_requests_on_both_arms(served: Served) -> None:
    def scraped_seconds() -> float:
        found = served.prometheus.query(
            'count_over_time(inference_requests_total{release="live",track="canary"}[1m])'
        )
        return float(found[0]["value"][1]) if found else 0.0  # type: ignore[index]

    deadline = time.monotonic() + 60
    while scraped_seconds() < 8 and time.monotonic() < deadline:
        time.sleep(0.5)  # waiting on a real server's scrapes, with a deadline
    assert scraped_seconds() >= 8, "Prometheus did not scrape the live exporter"
    now = time.time()
    completed = subprocess.run(
        [
            MODELRELEASE,
            "analyze",
            f"--prometheus={served.prometheus.url}",
            f"--template={served.live_template}",
            "--namespace=ml",
            "--release=live",
            "--canary=c2",
            "--baseline=s2",
            f"--start={now - 8:.0f}",
            f"--end={now - 1:.0f}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    judgement = json.loads(completed.stdout)
    errors = metric(judgement, "errors")
    assert errors["canaryRequests"] > 0
    assert errors["baselineRequests"] > errors["canaryRequests"]
    assert judgement["verdict"] == verdicts.Verdict.RUNNING  # seconds of data: well short of minDuration


def _run(name: str, template: str, start: datetime) -> actions.StartAnalysis:
    return actions.StartAnalysis(
        run=name,
        template=template,
        step_index=1,
        canary_revision="c1",
        canary_track=actions.Track.CANARY,
        canary_model_version="7",
        baseline_revision="s1",
        start=start,
        max_duration=timedelta(hours=1),
    )


@contextlib.contextmanager
def _adapter(
    served: Served,
    real_cluster: harness.Cluster,
    tmp_path: pathlib.Path,
    release_name: str,
    clock: Callable[[], datetime],
) -> Iterator[tuple[prometheus_analysis.PrometheusAnalysis, ReleaseRef]]:
    """The controller's Prometheus backend, its template on the real cluster (in namespace `ml`, which
    the served series carry), for one served release."""
    real_cluster.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}})
    template = reference.reference_manifest(name="quality")
    template["metadata"]["namespace"] = "ml"
    real_cluster.kube.apply(template)
    api = kubeapi.KubeApi.from_kubeconfig(str(real_cluster.plane.write_kubeconfig(tmp_path / "kubeconfig")))
    body = harness.release_body(release_name)
    spec = modelrelease.ModelReleaseSpec.model_validate(
        {**body["spec"], "serving": {**body["spec"]["serving"], "warmup": "60s"}}
    )
    release = ReleaseRef(namespace="ml", name=release_name, uid="u1", spec=spec)
    with prometheus_source.PrometheusSource(served.prometheus.url) as source:
        yield prometheus_analysis.PrometheusAnalysis(api, source, clock), release


def _judged_by_the_adapter(
    served: Served,
    real_cluster: harness.Cluster,
    tmp_path: pathlib.Path,
    release_name: str,
    runs: tuple[actions.StartAnalysis, ...],
) -> dict[str, verdicts.AnalysisSummary]:
    """The backend's answer at the end of the served hour."""
    end = datetime.fromtimestamp(served.start + HOUR, UTC)
    with _adapter(served, real_cluster, tmp_path, release_name, lambda: end) as (backend, release):
        return dict(backend.fetch_results(release, runs))


def test_each_look_continues_from_the_state_in_status_reads_only_new_intervals_and_judges_as_a_fresh_read(
    served: Served, real_cluster: harness.Cluster, tmp_path: pathlib.Path
) -> None:
    """The adapter keeps nothing between looks: the judge's compact state comes back in the run's
    descriptor from status (here through its JSON form), as after a restart at every look."""
    started = datetime.fromtimestamp(served.start + 180, UTC)
    now = [started]
    run = _run("run-slow-tail", "quality", started)
    metrics = len(reference.reference_template().metrics)
    recorded: verdicts.EvidenceRecord | None = None
    with _adapter(served, real_cluster, tmp_path, "slow-tail", lambda: now[0]) as (backend, release):
        for minute in range(5, 57, 3):
            now[0] = started + timedelta(minutes=minute)
            before = backend.intervals_read
            looked = backend.fetch_results(release, (run.model_copy(update={"evidence": recorded}),))[run.run]
            read = backend.intervals_read - before
            assert looked == backend.fetch_results(release, (run,))[run.run], f"minute {minute}"
            if minute > 5:  # three new minutes, and the newest two again in case a scrape was late
                assert read == (3 + prometheus_analysis.RESETTLE) * metrics, f"minute {minute}: {read}"
            assert looked.evidence is not None
            recorded = verdicts.EvidenceRecord.model_validate(looked.evidence.to_manifest())
    assert looked.verdict == verdicts.Verdict.FAIL


def test_the_controller_adapter_judges_each_running_run_from_its_descriptor_and_template(
    served: Served, real_cluster: harness.Cluster, tmp_path: pathlib.Path
) -> None:
    started = datetime.fromtimestamp(served.start + 180, UTC)
    runs = (_run("run-a", "quality", started), _run("run-b", "missing", started))
    results = _judged_by_the_adapter(served, real_cluster, tmp_path, "errors", runs)
    assert results["run-a"].verdict == verdicts.Verdict.FAIL
    assert results["run-a"].rule is not None
    assert results["run-a"].rule.startswith("errors:")
    assert results["run-b"].verdict == verdicts.Verdict.INCONCLUSIVE
    assert results["run-b"].rule == "AnalysisTemplate ml/missing does not exist"


def test_a_late_analysis_step_builds_on_the_canary_traffic_of_the_steps_before_it(
    served: Served, real_cluster: harness.Cluster, tmp_path: pathlib.Path
) -> None:
    """Two minutes into its own step the run cannot pass; from the canary's start it has an hour of data."""
    end = datetime.fromtimestamp(served.start + HOUR, UTC)
    step = _run("own-step-only", "quality", end - timedelta(minutes=2))
    whole = step.model_copy(
        update={"run": "whole-rollout", "evidence_since": datetime.fromtimestamp(served.start + 180, UTC)}
    )
    results = _judged_by_the_adapter(served, real_cluster, tmp_path, "good", (step, whole))
    assert results["own-step-only"].verdict == verdicts.Verdict.RUNNING
    assert results["whole-rollout"].verdict == verdicts.Verdict.PASS, results["whole-rollout"].rule


def test_the_look_at_max_duration_judges_the_window_up_to_max_duration_however_late_it_comes(
    served: Served, real_cluster: harness.Cluster, tmp_path: pathlib.Path
) -> None:
    """The final look is the fixed-horizon test, read once: a controller that restarts before it
    recorded the verdict looks again later and must see the same intervals and reach the same verdict."""
    started = datetime.fromtimestamp(served.start + 180, UTC)
    run = _run("half-hour", "quality", started).model_copy(update={"max_duration": timedelta(minutes=30)})
    now = [started + timedelta(minutes=30)]
    with _adapter(served, real_cluster, tmp_path, "good", lambda: now[0]) as (backend, release):
        at_the_end = backend.fetch_results(release, (run,))[run.run]
        now[0] = started + timedelta(minutes=50)
        later = backend.fetch_results(release, (run,))[run.run]  # nothing recorded: as after a restart
        resumed = run.model_copy(update={"evidence": at_the_end.evidence})
        continued = backend.fetch_results(release, (resumed,))[run.run]  # from the state it recorded
        longer = run.model_copy(update={"run": "hour", "max_duration": timedelta(hours=1)})
        uncapped = backend.fetch_results(release, (longer,))[longer.run]
    assert later == at_the_end
    assert continued == at_the_end
    assert at_the_end.verdict in (verdicts.Verdict.PASS, verdicts.Verdict.INCONCLUSIVE), at_the_end.rule
    errors, errors_uncapped = at_the_end.metrics[0], uncapped.metrics[0]
    assert errors.canary_requests is not None
    assert errors_uncapped.canary_requests is not None
    # 30 minutes of canary traffic, not the 50 the clock had reached.
    assert errors.canary_requests < 0.7 * errors_uncapped.canary_requests


def test_an_unreachable_prometheus_is_a_transient_error_for_the_controller(tmp_path: pathlib.Path) -> None:
    source = prometheus_source.PrometheusSource(
        f"http://127.0.0.1:{prometheus_server.free_port()}", timeout=2
    )
    window = prometheus_source.build_window(
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
        timedelta(minutes=1),
        timedelta(0),
    )
    with source, pytest.raises(prometheus_source.SourceError, match="did not answer"):
        source.fetch_series("up", window)


def test_the_bearer_token_is_read_from_its_file_on_every_query(tmp_path: pathlib.Path) -> None:
    """Prometheus 2.42 cannot check bearer tokens, so a loopback stand-in records the header."""
    seen: list[str | None] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = b'{"status": "success", "data": {"resultType": "matrix", "result": []}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    token = tmp_path / "token"
    token.write_text("first\n")
    window = prometheus_source.build_window(
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 2, tzinfo=UTC),
        timedelta(minutes=1),
        timedelta(0),
    )
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with prometheus_source.PrometheusSource(url, token_file=token) as source:
            source.fetch_series("up", window)
            token.write_text("rotated\n")
            source.fetch_series("up", window)
            token.unlink()
            with pytest.raises(prometheus_source.SourceError, match="cannot read the Prometheus token"):
                source.fetch_series("up", window)
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["Bearer first", "Bearer rotated"]
