"""Benchmark (not a test): one controller, N releases rolling out at once (1,000 in 20 namespaces).

    python -m controller.tooling.scale_benchmark [--releases 1000] [--namespaces 20] [--no-slack]
                                                 [--out docs/benchmarks.md]

The real control plane (tests/controlplane) with KWOK nodes holding one GPU per pod, the controller
process as deploy/'s ServiceAccount (Kopf, the production default 30 s poll, `--analysis
prometheus`: the judge), a real Prometheus, and the traffic-following fleet serving every pod.
Each release runs one replica and rolls model 2 out: 50 % (one canary pod beside the stable),
a 30 s pause, an analysis of errors on Prometheus, a 30 s pause, promotion.

The fleet is the one the tests and the demo use (same counters, same routing), scraped as **one
page** with every pod's series labelled by the fleet (`honor_labels`) instead of one target per
pod: at 2,000 pods a Python HTTP server answering 2,000 scrapes a period would measure itself, not
the controller. What the controller and the judge see is the same series with the same labels; what
differs is only Prometheus' scrape count (one target), so Prometheus' load below is its query load
plus one large scrape, not a per-pod scrape load.

Figures: time to deploy model 1 everywhere; at rest (every release Succeeded) API requests per
release per minute and controller CPU; during the rollout, the delay from a timed pause's end
(`stepStartedAt` + duration) to the status write that leaves it, p50/p99 (from the API server's
audit log, which keeps each status write's response), API requests per step transition, Prometheus
queries per analysis look and Prometheus' own CPU and RSS, controller CPU-seconds and peak RSS, and
Slack calls per rollout: every release follows its rollout in a Slack thread, posted through
slack-sdk's WebClient (the production path) to the loopback stand-in the tests use.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from analysis import markdown
from controller.tooling import benchcluster, fleet, processes, prometheus_process, slackstandin
from tests.controlplane import audit
from tests.controlplane.kube import wait_until

GROUP = "modelrelease.dev"
PAUSE_SECONDS = 30.0
INTERVAL = "30s"
STEPS = [
    {"setWeight": 50},
    {"pause": {"duration": f"{PAUSE_SECONDS:g}s"}},
    {"analysis": {"template": "errors", "maxDuration": "10m"}},
    {"pause": {"duration": f"{PAUSE_SECONDS:g}s"}},
]
PAUSES = (1, 3)  # the timed pauses' step indices
SLACK_CHANNEL = "ml-releases"
SLACK_TOKEN = "xoxb-scale-benchmark"  # the stand-in's, on loopback


def _release(namespace: str, name: str, slack: bool) -> dict[str, Any]:
    notifications = {"notifications": {"slack": {"channel": f"#{SLACK_CHANNEL}"}}} if slack else {}
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": name, "version": "1"},
            "serving": {
                "image": "registry.example.com/triton:24.08",
                "replicas": 1,
                "resources": {"limits": {fleet.GPU: 1}},
                "warmup": "10s",
            },
            "strategy": {"canary": {"steps": STEPS, "scaleDownDelay": "0s"}},
            "gpuBudget": {"maxExtraGPUs": 1},
            **notifications,
        },
    }


def _template(namespace: str) -> dict[str, Any]:
    arm = 'namespace="{{namespace}}", release="{{release}}", revision="{{revision}}"'
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "errors", "namespace": namespace},
        "spec": {
            "interval": INTERVAL,
            "metrics": [
                {
                    "name": "errors",
                    "kind": "errorRate",
                    "errorRate": {
                        "requests": f"inference_requests_total{{{arm}}}",
                        "errors": f"inference_errors_total{{{arm}}}",
                    },
                    "margin": {"relative": 0.2, "absolute": 0.001},
                    "minRequests": 500,
                }
            ],
        },
    }


def _prometheus_queries(url: str) -> float:
    """Range and instant queries Prometheus has answered (its own counter)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("prometheus_http_requests_total{") and (
            'handler="/api/v1/query_range"' in line or 'handler="/api/v1/query"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


@dataclasses.dataclass(frozen=True)
class Figures:
    releases: int
    namespaces: int
    deploy_seconds: float
    rest_requests_per_release_minute: float
    rest_cpu_share: float
    rollout_seconds: float
    promoted: int
    rolled_back: int
    unfinished: int
    pause_delays: tuple[float, ...]
    requests_per_transition: float
    transitions: int
    queries_per_look: float
    looks: int
    prometheus_cpu_seconds: float
    prometheus_rss_mb: float
    controller_cpu_seconds: float
    controller_peak_rss_mb: float
    slack_calls_per_rollout: Mapping[str, float]
    slack_threads: int  # rollouts with a thread of their own (one each: none lost, none twice)


History = dict[tuple[str, str], list[tuple[datetime, dict[str, Any]]]]


def _status_writes(calls: Sequence[audit.Call]) -> History:
    """Each release's status as every successful status write left it, in order (the audit log keeps
    the response of each)."""
    writes: History = {}
    for call in calls:
        if call.plural != "modelreleases" or call.subresource != "status" or call.code >= 300:
            continue
        if call.object:
            status = call.object.get("status") or {}
            writes.setdefault((call.namespace, call.name), []).append((call.at, status))
    return writes


def _promoted(status: dict[str, Any]) -> bool:
    return status.get("phase") in ("Promoting", "Succeeded") and status.get("stableModelVersion") == "2"


def _pause_delays(writes: History) -> list[float]:
    """Per release and timed pause: seconds from the pause's end to the write that moved past it."""
    delays = []
    for history in writes.values():
        for pause in PAUSES:
            started = next(
                (s.get("stepStartedAt") for _, s in history if s.get("currentStepIndex") == pause), None
            )
            left = next(
                (at for at, s in history if (s.get("currentStepIndex") or 0) > pause or _promoted(s)), None
            )
            if started is None or left is None:
                continue
            due = datetime.fromisoformat(started.replace("Z", "+00:00")) + timedelta(seconds=PAUSE_SECONDS)
            delays.append((left - due).total_seconds())
    return delays


def _transitions(writes: History) -> int:
    """Status writes that moved a release to another step or phase."""
    count = 0
    for history in writes.values():
        previous: tuple[Any, Any] | None = None
        for _, status in history:
            now = (status.get("currentStepIndex"), status.get("phase"))
            if previous is not None and now != previous:
                count += 1
            previous = now
    return count


def _looks(releases: Sequence[dict[str, Any]]) -> int:
    """Analysis looks made: each run's span over the template's interval (one look per interval)."""
    seconds = float(INTERVAL.rstrip("s"))
    looks = 0
    for release in releases:
        for record in (release.get("status") or {}).get("analysis") or []:
            if record.get("finishedAt"):
                started = datetime.fromisoformat(record["startedAt"].replace("Z", "+00:00"))
                finished = datetime.fromisoformat(record["finishedAt"].replace("Z", "+00:00"))
                looks += max(1, int((finished - started).total_seconds() // seconds) + 1)
    return looks


def run(releases: int, namespaces: int, work: pathlib.Path, say: Any, *, slack_on: bool = True) -> Figures:
    per_namespace = -(-releases // namespaces)
    nodes = max(4, -(-2 * releases // 100) + 1)  # 110 pods a node; each release peaks at 2 pods
    with benchcluster.running(work, nodes=nodes, gpus_per_node=110) as bench:
        kube = bench.kube
        scenario = fleet.FleetScenario(requests_per_second=1000.0, warmup_seconds=10.0)
        serving = fleet.ServingFleet(kube, scenario, seed=28)
        server = fleet.FleetServer(serving, work / "targets.json", clock=time.time, tick=2.0).start()
        (work / "prometheus").mkdir()
        prometheus = prometheus_process.PrometheusServer(
            work / "prometheus", scrape_interval="5s", fleet_page=server.address
        ).start()
        prometheus_pid = prometheus.pid
        slack = slackstandin.SlackStandIn(
            token=SLACK_TOKEN, signing_secret="unused", channels={SLACK_CHANNEL: "C0SCALE"}
        ).__enter__()
        (work / "slack-token").write_text(SLACK_TOKEN)
        controller = bench.start_controller(
            work / "controller.log",
            "--analysis",
            "prometheus",
            "--prometheus",
            prometheus.url,
            *(
                ("--slack-token-file", str(work / "slack-token"), "--slack-api-url", slack.api_url)
                if slack_on
                else ()
            ),
            scripted=False,
        )
        try:
            names: list[tuple[str, str]] = []
            for n in range(namespaces):
                namespace = f"scale-{n:02d}"
                kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
                kube.create(_template(namespace))
                for i in range(per_namespace):
                    if len(names) < releases:
                        names.append((namespace, f"model-{i:03d}"))
                        kube.create(_release(namespace, names[-1][1], slack_on))
            began = time.monotonic()

            def count(check: Any) -> int:
                return sum(
                    1
                    for n in range(namespaces)
                    for r in kube.objects("modelreleases", f"scale-{n:02d}", group=GROUP)
                    if check(r.get("status") or {})
                )

            wait_until(
                lambda: count(lambda s: s.get("phase") == "Succeeded") == releases,
                timeout=3600,
                what="every release serving model 1",
                every=10,
            )
            deploy_seconds = time.monotonic() - began
            say(f"{releases} releases serving model 1 after {deploy_seconds:.0f} s")

            rest_began, rest_cpu = datetime.now(UTC), processes.cpu_seconds(controller.pid)
            rest_until = time.monotonic() + 120
            wait_until(lambda: time.monotonic() >= rest_until, timeout=180, what="the rest window", every=1)
            rest_calls = bench.controller_calls(since=rest_began)
            rest_cpu = processes.cpu_seconds(controller.pid) - rest_cpu
            rest_seconds = (datetime.now(UTC) - rest_began).total_seconds()

            rollout_began = datetime.now(UTC)
            cpu_before = processes.cpu_seconds(controller.pid)
            prometheus_cpu_before = processes.cpu_seconds(prometheus_pid)
            queries_before = _prometheus_queries(prometheus.url)
            slack_before = len(slack.calls)
            started = time.monotonic()
            for namespace, name in names:
                kube.patch(
                    "modelreleases", namespace, name, {"spec": {"model": {"version": "2"}}}, group=GROUP
                )

            def finished(status: dict[str, Any]) -> bool:
                return status.get("phase") == "RolledBack" or (
                    status.get("phase") == "Succeeded" and status.get("stableModelVersion") == "2"
                )

            with_deadline = time.monotonic() + 3600
            done = 0
            while time.monotonic() < with_deadline:
                done = count(finished)
                if done == releases:
                    break
                say(f"  {done} of {releases} finished after {time.monotonic() - started:.0f} s")
                time.sleep(20)  # polling 1,000 objects: every 20 s, bounded by the deadline
            rollout_seconds = time.monotonic() - started
            controller_cpu = processes.cpu_seconds(controller.pid) - cpu_before
            prometheus_cpu = processes.cpu_seconds(prometheus_pid) - prometheus_cpu_before
            queries = _prometheus_queries(prometheus.url) - queries_before
            every_release = [
                r
                for n in range(namespaces)
                for r in kube.objects("modelreleases", f"scale-{n:02d}", group=GROUP)
            ]
            promoted = sum(
                1 for r in every_release if (r.get("status") or {}).get("stableModelVersion") == "2"
            )
            rolled_back = sum(
                1 for r in every_release if (r.get("status") or {}).get("phase") == "RolledBack"
            )
            calls = bench.controller_calls(since=rollout_began)
            writes = _status_writes(calls)
            transitions = _transitions(writes)
            looks = _looks(every_release)
            slack_calls: dict[str, float] = {}
            for call in slack.calls[slack_before:]:
                slack_calls[call.method] = slack_calls.get(call.method, 0.0) + 1 / releases
            threads = {
                thread
                for r in every_release
                for thread in [((r.get("status") or {}).get("slack") or {}).get("threadTs")]
                if thread
            }
            return Figures(
                releases=releases,
                namespaces=namespaces,
                deploy_seconds=deploy_seconds,
                rest_requests_per_release_minute=len(rest_calls) / releases / (rest_seconds / 60),
                rest_cpu_share=rest_cpu / rest_seconds,
                rollout_seconds=rollout_seconds,
                promoted=promoted,
                rolled_back=rolled_back,
                unfinished=releases - done,
                pause_delays=tuple(_pause_delays(writes)),
                requests_per_transition=len(calls) / max(1, transitions),
                transitions=transitions,
                queries_per_look=queries / max(1, looks),
                looks=looks,
                prometheus_cpu_seconds=prometheus_cpu,
                prometheus_rss_mb=processes.peak_rss_mb(prometheus_pid),
                controller_cpu_seconds=controller_cpu,
                controller_peak_rss_mb=processes.peak_rss_mb(controller.pid),
                slack_calls_per_rollout=slack_calls,
                slack_threads=len(threads),
            )
        finally:
            processes.stop(controller)
            slack.__exit__(None, None, None)
            prometheus.stop()
            server.stop()


def report(f: Figures, command: str) -> str:
    delays = np.asarray(f.pause_delays) if f.pause_delays else np.asarray([np.nan])
    return "\n".join(
        [
            f"## One controller, {f.releases:,} releases rolling out at once (issue 28)",
            "",
            f"Command: `{command}` ({datetime.now(UTC):%Y-%m-%d}, 2 cores, 24 GB). Method and what the "
            "lighter scrape changes: controller/tooling/scale_benchmark.py's docstring. One controller "
            "process (Kopf, 30 s poll, the judge on a real Prometheus), the control plane, KWOK, the "
            "fleet and Prometheus share the 2 cores.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| releases / namespaces | {f.releases:,} / {f.namespaces} |",
            f"| model 1 deployed everywhere | {f.deploy_seconds:.0f} s |",
            f"| at rest: API requests / release / minute | {f.rest_requests_per_release_minute:.1f} |",
            f"| at rest: controller CPU | {100 * f.rest_cpu_share:.0f} % of a core |",
            f"| rollout of model 2 everywhere | {f.rollout_seconds:.0f} s: {f.promoted} promoted, "
            f"{f.rolled_back} rolled back, {f.unfinished} unfinished |",
            f"| pause end → next step's write, p50 / p99 / max ({len(f.pause_delays)} pauses) "
            f"| {np.nanpercentile(delays, 50):.1f} / {np.nanpercentile(delays, 99):.1f} "
            f"/ {np.nanmax(delays):.1f} s |",
            f"| API requests per step transition ({f.transitions:,} transitions) "
            f"| {f.requests_per_transition:.1f} |",
            f"| Prometheus queries per analysis look ({f.looks:,} looks) | {f.queries_per_look:.1f} |",
            f"| Prometheus during the rollout: CPU, peak RSS | {f.prometheus_cpu_seconds:.0f} s, "
            f"{f.prometheus_rss_mb:.0f} MB |",
            f"| controller during the rollout: CPU | {f.controller_cpu_seconds:.0f} s |",
            f"| controller peak RSS | {f.controller_peak_rss_mb:.0f} MB |",
            "| Slack calls per rollout (a stand-in on loopback, through slack-sdk) | "
            + (
                ", ".join(
                    f"{method} {count:.2f}" for method, count in sorted(f.slack_calls_per_rollout.items())
                )
                + f"; {f.slack_threads:,} releases with a thread of their own |"
                if f.slack_calls_per_rollout
                else "off (`--no-slack`) |"
            ),
            "| Git / MLflow calls per rollout | not configured here: a promoted rollout writes nothing to "
            "Git (write-back is for rollbacks) and the model is pinned (`--registry pinned`) |",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller.tooling.scale_benchmark", description=__doc__)
    parser.add_argument("--releases", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--work", type=pathlib.Path, help="keep logs here (default: a temporary folder)")
    parser.add_argument("--out", type=pathlib.Path, help="Markdown file to update (docs/benchmarks.md)")
    parser.add_argument("--no-slack", action="store_true", help="releases without Slack notifications")
    args = parser.parse_args(argv)
    command = "python -m controller.tooling.scale_benchmark " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or pathlib.Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        figures = run(args.releases, args.namespaces, work, print, slack_on=not args.no_slack)
    print(json.dumps(dataclasses.asdict(figures), default=str)[:2000])
    text = report(figures, command.strip())
    print(text)
    if args.out:
        markdown.write_section(args.out, "scale-benchmark", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
