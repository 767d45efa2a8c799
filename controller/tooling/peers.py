"""Benchmark (not a test): modelrelease, Flagger and Argo Rollouts side by side on the same releases.

    make peers-benchmark        (builds the peers, then runs this)
    python -m controller.tooling.peers [--runs 20] [--scenarios good errors-x2 …] [--out docs/benchmarks.md]

One real control plane (tests/controlplane) with KWOK nodes holding GPUs, the traffic-following fleet
and a real Prometheus (scraping the fleet as one page, every pod's series labelled as a per-pod
scrape labels them, every compressed 15 s; the table says what share of scrapes were answered);
the real Flagger (v1.44.0) and Argo Rollouts (v1.9.2), built by `make peers`, and the modelrelease
controller, each as its own process with its own ServiceAccount. Per scenario, `--runs` releases
per tool roll model 2 out beside model 1 at the same instant, each configured as its documentation
recommends for a service with Prometheus metrics (the objects are built below):

- Flagger: Gateway API provider (`gatewayapi:v1`, its HTTPRoute weights the fleet follows), interval
  1m, threshold 5, stepWeight 10, maxWeight 50, MetricTemplates for the error rate (max 1 %, its
  tutorial's line) and the p99 from the histogram (`histogram_quantile`) on the canary's pods.
- Argo Rollouts: basic canary (replica ratio) 25/50/75 % with a 2m pause after each, and a background
  analysis from the first step: Prometheus provider, error rate ≤ 1 % and p99 ≤ the line, interval 1m,
  failureLimit 3 (its docs' values).
- modelrelease: replica ratio 25 % → analysis → 50 % → analysis, each analysis the template the
  gitops-repo-template ships (errors, p50, p99, GPU, predictions) with a 30m maxDuration.

The p99 line both peers check is calibrated, not guessed: the 99th percentile of the p99 that
Prometheus' `histogram_quantile` reads for model 1 itself over one interval of first-step canary
traffic on these buckets — a line a good canary crosses in about 1 interval in 100.

Time is compressed by configuration, the same for all three: one minute of every tool's
configuration (intervals, pauses, durations, the controllers' polls) is `60 / --compression` seconds
here, and each release serves 100 requests/s × compression, so an interval sees the requests a
minute at 100 requests/s would. Minutes and GPU-seconds are reported in uncompressed time. At most
6×: Flagger floors its analysis interval at 10 s, so a shorter configured minute would slow Flagger
alone (the first table here ran at 12× and Flagger took two compressed minutes per step).

Figures per tool and scenario: share rolled back, promoted, or neither by the deadline (modelrelease
pauses an undecided analysis for a person), median and p90 minutes from the change to the decision,
model 2's requests before a rollback (users exposed to the bad model), extra GPU-seconds beyond the 4
stable GPUs, API requests (the audit log, per ServiceAccount), controller CPU-seconds per release and
peak RSS. The runs of one scenario and tool share one cluster, fleet and controller and run together;
they differ by the fleet's random draws (one seeded generator).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import yaml

from analysis import markdown
from analysis.tooling import traffic_simulator
from controller.tooling import benchcluster, fleet, processes, prometheus_process
from tests.cluster import harness
from tests.controlplane import cluster
from tests.controlplane.kube import KubeError, wait_until
from tests.peers import launch

ROOT = pathlib.Path(__file__).resolve().parents[2]
REPLICAS = 4
STABLE, CANARY = "1", "2"
BASE_RATE = 100.0  # requests/s per release, uncompressed
ERROR_LINE = 0.01  # Flagger's tutorial: error rate max 1 %; Argo's check uses the same line
PEERS_NAMESPACE = "peers-system"
TOOLS = ("modelrelease", "flagger", "argo-rollouts")
DEADLINE_MINUTES = 90.0

SCENARIOS: dict[str, Mapping[str, Any]] = {
    "good": {},
    "errors-x2": {"versions": {CANARY: {"errorRate": 0.01}}},
    "p99+25%": {"versions": {CANARY: {"p99Change": 0.25}}},
    "p50+10%": {"versions": {CANARY: {"p50Change": 0.10}}},
    # A good release on nodes shared with another tenant: every pod, either model, is slowed by half
    # for about two minutes, four times an hour.
    "noisy-neighbour": {"slowEpisodesPerHour": 4.0, "slowEpisodeSeconds": 120.0, "slowEpisodeSlowdown": 0.5},
}
BAD = ("errors-x2", "p99+25%", "p50+10%")


SCRAPE_MINUTES = 0.25  # Prometheus' default scrape interval, 15 s, compressed like the rest


@dataclasses.dataclass(frozen=True)
class Clock:
    """One minute of configuration is `minute` seconds here."""

    compression: float

    @property
    def minute(self) -> float:
        return 60.0 / self.compression

    def duration(self, minutes: float) -> str:
        return f"{minutes * self.minute:g}s"

    def minutes(self, seconds: float) -> float:
        return seconds / self.minute


# ---- the releases, as each tool's documentation has them ----------------------------------------


def _pod_template(name: str, version: str) -> dict[str, Any]:
    labels = {"app": name, fleet.RELEASE: name}
    server = {
        "name": "server",
        "image": "registry.example.com/triton:24.08",
        "ports": [{"name": "http", "containerPort": 8000}],
        "env": [{"name": "MODEL_VERSION", "value": version}],
        "resources": {"limits": {fleet.GPU: 1}},
    }
    return {"metadata": {"labels": labels}, "spec": {"containers": [server]}}


def _canary_pods(name: str) -> str:
    """Flagger's regex for the canary Deployment's pods (`<target>-<hash>-<id>`, not `-primary-`)."""
    return f"{name}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"


def flagger_objects(namespace: str, name: str, clock: Clock, latency_line: float) -> list[dict[str, Any]]:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": name}},
            "template": _pod_template(name, STABLE),
        },
    }
    interval = clock.duration(1)
    canary = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "provider": "gatewayapi:v1",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "progressDeadlineSeconds": round(10 * clock.minute),
            "service": {
                "port": 8000,
                "targetPort": 8000,
                "hosts": [f"{name}.example.com"],
                "gatewayRefs": [{"name": "inference", "namespace": namespace}],
            },
            "analysis": {
                "interval": interval,
                "threshold": 5,
                "maxWeight": 50,
                "stepWeight": 10,
                "metrics": [
                    {
                        "name": "error-rate",
                        "templateRef": {"name": "error-rate"},
                        "thresholdRange": {"max": 100 * ERROR_LINE},
                        "interval": interval,
                    },
                    {
                        "name": "latency",
                        "templateRef": {"name": "latency"},
                        "thresholdRange": {"max": latency_line},
                        "interval": interval,
                    },
                ],
            },
        },
    }
    return [deployment, canary]


def flagger_templates(namespace: str, prometheus: str) -> list[dict[str, Any]]:
    pods = f'namespace="{{{{ namespace }}}}", pod=~"{_canary_pods("{{ target }}")}"'
    rate = "[{{ interval }}]"
    queries = {
        "error-rate": f"100 * sum(rate(inference_errors_total{{{pods}}}{rate})) / "
        f'sum(rate(inference_requests_total{{{pods}, source="user"}}{rate}))',
        "latency": _p99(pods, rate),
    }
    return [
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"provider": {"type": "prometheus", "address": prometheus}, "query": query},
        }
        for name, query in queries.items()
    ]


def _p99(pods: str, window: str) -> str:
    return f"histogram_quantile(0.99, sum(rate(inference_latency_seconds_bucket{{{pods}}}{window})) by (le))"


def argo_objects(namespace: str, name: str, clock: Clock) -> list[dict[str, Any]]:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name}, "ports": [{"port": 8000, "targetPort": 8000}]},
    }
    pause = {"pause": {"duration": clock.duration(2)}}
    rollout = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": name}},
            "template": _pod_template(name, STABLE),
            "strategy": {
                "canary": {
                    "steps": [{"setWeight": 25}, pause, {"setWeight": 50}, pause, {"setWeight": 75}, pause],
                    "analysis": {
                        "templates": [{"templateName": "inference-slo"}],
                        "startingStep": 1,
                        "args": [
                            {"name": "rollout", "value": name},
                            {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
                        ],
                    },
                }
            },
        },
    }
    return [service, rollout]


def argo_template(namespace: str, prometheus: str, clock: Clock, latency_line: float) -> dict[str, Any]:
    pods = f'namespace="{namespace}", pod=~"{{{{args.rollout}}}}-{{{{args.canary-hash}}}}-.*"'
    window = f"[{clock.duration(1)}]"

    def metric(name: str, condition: str, query: str) -> dict[str, Any]:
        return {
            "name": name,
            "interval": clock.duration(1),
            "initialDelay": clock.duration(1),
            "successCondition": condition,
            "failureLimit": 3,
            "provider": {"prometheus": {"address": prometheus, "query": query}},
        }

    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "inference-slo", "namespace": namespace},
        "spec": {
            "args": [{"name": "rollout"}, {"name": "canary-hash"}],
            "metrics": [
                metric(
                    "error-rate",
                    f"result[0] <= {ERROR_LINE}",
                    f"sum(rate(inference_errors_total{{{pods}}}{window})) / "
                    f'sum(rate(inference_requests_total{{{pods}, source="user"}}{window}))',
                ),
                metric(
                    "latency",
                    f"result[0] <= {latency_line:.4f}",
                    _p99(pods, window),
                ),
            ],
        },
    }


def modelrelease_objects(namespace: str, name: str, clock: Clock) -> list[dict[str, Any]]:
    analysis = {"analysis": {"template": "inference-slo", "maxDuration": clock.duration(30)}}
    release = {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": name, "version": STABLE},
            "serving": {
                "image": "registry.example.com/triton:24.08",
                "replicas": REPLICAS,
                "resources": {"limits": {fleet.GPU: 1}},
                "ports": [{"name": "http", "containerPort": 8000}],
                "warmup": clock.duration(1),
            },
            "strategy": {
                "canary": {
                    "scaleDownDelay": "0s",
                    "steps": [{"setWeight": 25}, analysis, {"setWeight": 50}, analysis],
                }
            },
            "gpuBudget": {"maxExtraGPUs": 2},
        },
    }
    return [release]


def modelrelease_template(namespace: str, clock: Clock) -> dict[str, Any]:
    """The template gitops-repo-template ships, as it is but for its compressed durations."""
    shipped = ROOT / "gitops-repo-template" / "analysis-templates" / "inference-slo.yaml"
    template = yaml.safe_load(shipped.read_text())
    template["metadata"]["namespace"] = namespace
    template["spec"]["interval"] = clock.duration(1)
    # Each metric's minDuration defaults to 5 minutes of real time: compressed like every other
    # duration. (The first published table left it at its default, 300 s here, longer than the
    # 30-minute analysis step itself: no metric could pass, and every good release paused.)
    for metric in template["spec"]["metrics"]:
        metric.setdefault("minDuration", clock.duration(5))
    return dict(template)


# ---- the p99 line -----------------------------------------------------------------------------


def prometheus_quantile(edges: np.ndarray, cumulative: np.ndarray, total: float, q: float) -> float:
    """`histogram_quantile`'s answer from counts at or below each finite edge and the total (the +Inf
    bucket): linear within the bucket the rank falls in, the lowest bucket from 0; a rank in the +Inf
    bucket answers the highest finite edge."""
    if total <= 0:
        return float("nan")
    rank = q * total
    index = int(np.searchsorted(cumulative, rank))
    if index >= len(edges):
        return float(edges[-1])
    lower, below = (float(edges[index - 1]), float(cumulative[index - 1])) if index else (0.0, 0.0)
    inside = float(cumulative[index]) - below
    return lower + (float(edges[index]) - lower) * ((rank - below) / inside if inside else 1.0)


def latency_line(
    scenario: fleet.FleetScenario, requests: float, *, seed: int = 11, windows: int = 4000
) -> float:
    """The 99th percentile over `windows` intervals of the p99 Prometheus reads for model 1 from
    `requests` requests: the line a good canary crosses in about one interval in a hundred."""
    rng = np.random.default_rng(seed)
    behaviour = scenario.behaviour(STABLE)
    draw = traffic_simulator.draw_pods(
        rng,
        behaviour,
        np.full(windows, requests),
        np.ones(windows),
        np.ones(windows),
        scenario.edges,
        0.0,
    )
    cumulative = np.cumsum(draw.buckets, axis=1)  # the last column is the total (+Inf)
    finite = len(scenario.edges)
    p99s = [prometheus_quantile(scenario.edges, row[:finite], row[-1], 0.99) for row in cumulative]
    return float(np.nanpercentile(p99s, 99))


# ---- reading each tool's decision ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Kind:
    tool: str
    plural: str
    group: str
    prefix: str


KINDS = (
    Kind("modelrelease", "modelreleases", "modelrelease.dev", "mr"),
    Kind("flagger", "canaries", "flagger.app", "fl"),
    Kind("argo-rollouts", "rollouts", "argoproj.io", "ar"),
)


def ready(kind: Kind, obj: Mapping[str, Any]) -> bool:
    status = obj.get("status") or {}
    if kind.tool == "modelrelease":
        return status.get("phase") == "Succeeded" and status.get("stableModelVersion") == STABLE
    if kind.tool == "flagger":
        return status.get("phase") == "Initialized"
    return status.get("phase") == "Healthy" and bool(status.get("stableRS"))


def decision(kind: Kind, obj: Mapping[str, Any], before: Mapping[str, Any]) -> str | None:
    """ "promoted", "rolled back", or None while undecided; `before` is the object before the change."""
    status = obj.get("status") or {}
    generation = obj["metadata"].get("generation")
    if kind.tool == "modelrelease":
        if status.get("observedGeneration") != generation:
            return None
        if status.get("phase") == "RolledBack":
            return "rolled back"
        if status.get("phase") == "Succeeded" and status.get("stableModelVersion") == CANARY:
            return "promoted"
        return None
    if kind.tool == "flagger":
        phase = status.get("phase")
        return {"Succeeded": "promoted", "Failed": "rolled back"}.get(str(phase))
    if status.get("abort"):
        return "rolled back"
    old = (before.get("status") or {}).get("stableRS")
    if status.get("phase") == "Healthy" and status.get("stableRS") not in (None, old):
        return "promoted"
    return None


# ---- one scenario's batch ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    tool: str
    scenario: str
    outcome: str  # promoted | rolled back | undecided
    minutes: float | None
    canary_requests: float
    extra_gpu_seconds: float


@dataclasses.dataclass(frozen=True)
class Cost:
    tool: str
    scenario: str
    api_requests: float  # per release
    cpu_seconds: float  # per release
    peak_rss_mb: float


@dataclasses.dataclass
class Processes:
    modelrelease: subprocess.Popen[bytes]
    peers: dict[str, launch.Peer]

    def pid(self, tool: str) -> int:
        return self.modelrelease.pid if tool == "modelrelease" else self.peers[tool].process.pid


def _install_peer_crds(bench: benchcluster.BenchCluster) -> None:
    crds = [*launch.flagger_crds(), *launch.argo_rollouts_crds()]
    for crd in crds:
        bench.kube.apply(crd)
    names = [crd["metadata"]["name"] for crd in crds]
    wait_until(
        lambda: all(harness.established(bench.kube, name) for name in names),
        timeout=60,
        what="the peers' CRDs established",
    )


def _peer_accounts(bench: benchcluster.BenchCluster, folder: pathlib.Path) -> dict[str, pathlib.Path]:
    """A ServiceAccount per peer, bound to cluster-admin as their charts bind their own wide roles,
    so the audit log tells their requests apart."""
    kube = bench.kube
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PEERS_NAMESPACE}})
    kubeconfigs = {}
    for peer in ("flagger", "argo-rollouts"):
        account = {"name": peer, "namespace": PEERS_NAMESPACE}
        kube.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": account})
        kube.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"benchmark-{peer}"},
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", **account}],
            }
        )
        token = bench.cluster.token(PEERS_NAMESPACE, peer, seconds=24 * 3600)
        kubeconfigs[peer] = bench.cluster.plane.write_kubeconfig(folder / f"{peer}.kubeconfig", token=token)
    return kubeconfigs


RBAC = "rbac.authorization.k8s.io"
USERS = {
    "modelrelease": "system:serviceaccount:modelrelease-system:modelrelease-controller",
    "flagger": f"system:serviceaccount:{PEERS_NAMESPACE}:flagger",
    "argo-rollouts": f"system:serviceaccount:{PEERS_NAMESPACE}:argo-rollouts",
}


@contextlib.contextmanager
def _controllers(
    bench: benchcluster.BenchCluster,
    folder: pathlib.Path,
    kubeconfigs: Mapping[str, pathlib.Path],
    prometheus: str,
    clock: Clock,
) -> Iterator[Processes]:
    with contextlib.ExitStack() as stack:
        # Every loop compressed like the configuration: our 30 s poll and Flagger's 10 s control loop
        # (it advances a canary at most once per loop). The first published table ran both
        # uncompressed: Flagger then took a step per 2 compressed minutes (docs/analysis.md).
        poll = f"{30 / clock.compression:g}"
        ours = bench.start_controller(
            folder / "modelrelease.log",
            *("--poll-interval", poll, "--analysis", "prometheus", "--prometheus", prometheus),
            scripted=False,
        )
        stack.callback(processes.stop, ours)
        flagger_port, healthz, metrics = cluster.free_ports(3)
        flagger = launch.start_flagger(
            kubeconfigs["flagger"],
            folder / "flagger.log",
            namespace="",
            prometheus=prometheus,
            port=flagger_port,
            mesh_provider="gatewayapi:v1",
            control_loop_interval=f"{10 / clock.compression:g}s",  # its 10 s default, compressed
        )
        stack.callback(flagger.stop)
        argo = launch.start_argo_rollouts(
            kubeconfigs["argo-rollouts"],
            folder / "argo-rollouts.log",
            namespace="",
            healthz_port=healthz,
            metrics_port=metrics,
        )
        stack.callback(argo.stop)
        yield Processes(ours, {"flagger": flagger, "argo-rollouts": argo})


def _objects_of(kind: Kind, namespace: str, index: int, clock: Clock, line: float) -> list[dict[str, Any]]:
    name = f"{kind.prefix}-{index:02d}"
    if kind.tool == "modelrelease":
        return modelrelease_objects(namespace, name, clock)
    if kind.tool == "flagger":
        return flagger_objects(namespace, name, clock, line)
    return argo_objects(namespace, name, clock)


def _change(bench: benchcluster.BenchCluster, kind: Kind, namespace: str, name: str) -> None:
    """Model 2, as a PR would change it: the model version (ours) or the pod template's env (peers')."""
    if kind.tool == "modelrelease":
        patch: dict[str, Any] = {"spec": {"model": {"version": CANARY}}}
        bench.kube.patch(kind.plural, namespace, name, patch, group=kind.group)
        return
    env = {"spec": {"template": {"spec": {"containers": _pod_template(name, CANARY)["spec"]["containers"]}}}}
    if kind.tool == "flagger":
        bench.kube.patch("deployments", namespace, name, env, group="apps")
    else:
        bench.kube.patch(kind.plural, namespace, name, env, group=kind.group)


def run_scenario(
    bench: benchcluster.BenchCluster,
    folder: pathlib.Path,
    kubeconfigs: Mapping[str, pathlib.Path],
    scenario_name: str,
    runs: int,
    clock: Clock,
    seed: int,
    say: Callable[[str], None],
    deadline_minutes: float = DEADLINE_MINUTES,
) -> tuple[list[Run], list[Cost], str]:
    namespace = f"peers-{scenario_name.replace('+', '').replace('%', '').replace('-', '')}"
    folder = folder / namespace
    folder.mkdir(parents=True)
    document: dict[str, Any] = {"requestsPerSecond": BASE_RATE * clock.compression}
    document |= {
        "buckets": "prometheus-default",
        "warmupSeconds": 2 * clock.minute,
        "warmupSlowdown": 0.5,
    }  # warm-ups longer than configured
    document |= copy.deepcopy(dict(SCENARIOS[scenario_name]))
    if "slowEpisodeSeconds" in document:
        document["slowEpisodeSeconds"] /= clock.compression
        document["slowEpisodesPerHour"] *= clock.compression
    scenario = fleet.FleetScenario.from_document(document, scenario_name)
    # The first step's canary traffic in one interval: Flagger's 10 % (Argo's 25 % sees more).
    line = latency_line(scenario, 0.10 * BASE_RATE * 60)
    kube = bench.kube
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    with contextlib.ExitStack() as stack:
        targets = folder / "targets.json"
        serving = fleet.ServingFleet(kube, scenario, seed=seed, namespace=namespace)
        server = fleet.FleetServer(serving, targets, clock=time.time, tick=0.5).start()
        stack.callback(server.stop)
        (folder / "prometheus").mkdir()
        # Scraped as one page (every pod's series, labelled as a per-pod scrape labels them) every
        # compressed 15 s, Prometheus' default: 320 per-pod targets every second on a Python server
        # failed half their scrapes in the first runs (scrape_health says what this run saw).
        prometheus = prometheus_process.PrometheusServer(
            folder / "prometheus",
            scrape_interval=f"{round(SCRAPE_MINUTES * clock.minute * 1000)}ms",  # no fractions of a second
            fleet_page=server.address,
        ).start()
        stack.callback(prometheus.stop)
        for obj in (
            *flagger_templates(namespace, prometheus.url),
            argo_template(namespace, prometheus.url, clock, line),
            modelrelease_template(namespace, clock),
        ):
            kube.create(obj)
        controllers = stack.enter_context(_controllers(bench, folder, kubeconfigs, prometheus.url, clock))
        for index in range(runs):
            for kind in KINDS:
                for obj in _objects_of(kind, namespace, index, clock, line):
                    kube.create(obj)

        def every_ready() -> bool:
            return all(
                sum(ready(kind, o) for o in kube.objects(kind.plural, namespace, group=kind.group)) == runs
                for kind in KINDS
            )

        wait_until(every_ready, timeout=300, what=f"{scenario_name}: every release serving model 1", every=1)
        baseline_until = time.time() + 2 * clock.minute  # Prometheus holds model 1's rates first
        wait_until(lambda: time.time() >= baseline_until, timeout=60, what="a baseline", every=0.5)
        say(f"{scenario_name}: {runs} × 3 releases on model 1 (p99 line {line * 1000:.0f} ms); model 2 now")

        before = {
            (kind.tool, o["metadata"]["name"]): o
            for kind in KINDS
            for o in kube.objects(kind.plural, namespace, group=kind.group)
        }
        gpu_before = {key: serving.tally(namespace, key[1]).gpu_seconds for key in before}
        cpu_before = {tool: processes.cpu_seconds(controllers.pid(tool)) for tool in TOOLS}
        began = datetime.now(UTC)
        started = time.time()
        for kind in KINDS:
            for index in range(runs):
                _change(bench, kind, namespace, f"{kind.prefix}-{index:02d}")
        decided: dict[tuple[str, str], tuple[str, float]] = {}
        deadline = started + deadline_minutes * clock.minute
        while len(decided) < len(before) and time.time() < deadline:
            for kind in KINDS:
                for obj in kube.objects(kind.plural, namespace, group=kind.group):
                    key = (kind.tool, obj["metadata"]["name"])
                    if key in decided:
                        continue
                    outcome = decision(kind, obj, before[key])
                    if outcome is not None:
                        decided[key] = (outcome, time.time() - started)
            time.sleep(0.5)  # a poll of the three kinds' lists, bounded by the deadline
        settle_until = time.time() + 3 * clock.minute  # scale-downs after the decisions
        wait_until(lambda: time.time() >= settle_until, timeout=120, what="scale-downs", every=0.5)
        ended_at, ended = datetime.now(UTC), time.time()
        health = scrape_health(prometheus, scenario_name, ended - started)
        say(health)
        costs = []
        calls = [c for c in bench.audit.calls() if began <= c.at <= ended_at]
        for tool in TOOLS:
            pid = controllers.pid(tool)
            costs.append(
                Cost(
                    tool,
                    scenario_name,
                    sum(1 for c in calls if c.user == USERS[tool]) / runs,
                    (processes.cpu_seconds(pid) - cpu_before[tool]) / runs,
                    processes.peak_rss_mb(pid),
                )
            )
        results = []
        for key in before:
            tally = serving.tally(namespace, key[1])
            extra = tally.gpu_seconds - gpu_before[key] - REPLICAS * (ended - started)
            outcome, seconds = decided.get(key, ("undecided", float("nan")))
            results.append(
                Run(
                    key[0],
                    scenario_name,
                    outcome,
                    None if outcome == "undecided" else clock.minutes(seconds),
                    tally.served.get(CANARY, 0.0),
                    extra * clock.compression,
                )
            )
        # What each run ended as, kept beside the logs: the table is a summary of these.
        final = {
            f"{kind.tool}/{o['metadata']['name']}": o.get("status") or {}
            for kind in KINDS
            for o in kube.objects(kind.plural, namespace, group=kind.group)
        }
        runs_file = folder / "runs.json"
        document = {
            "runs": [dataclasses.asdict(r) for r in results],
            "costs": [dataclasses.asdict(c) for c in costs],
            "status": final,
            "scrapes": health,
        }
        runs_file.write_text(json.dumps(document))
    with contextlib.suppress(KubeError):
        kube.delete("namespaces", "", namespace)
    return results, costs, health


def scrape_health(prometheus: prometheus_process.PrometheusServer, scenario: str, seconds: float) -> str:
    """How well Prometheus saw the fleet over the rollouts: a figure the table stands on."""
    span = f"{max(1, round(seconds))}s"
    answered = prometheus.query(f'avg_over_time(up{{job="fleet"}}[{span}])')
    slowest = prometheus.query(f'max_over_time(scrape_duration_seconds{{job="fleet"}}[{span}])')

    def value(found: list[dict[str, object]]) -> float:
        sample = found[0]["value"] if found else None
        return float(sample[1]) if isinstance(sample, list) else float("nan")

    return (
        f"{scenario}: {value(answered):.1%} of the fleet's scrapes answered, "
        f"the slowest in {value(slowest):.2f} s"
    )


# ---- the table ----------------------------------------------------------------------------------


def _quantile(values: Sequence[float], q: float) -> float:
    return float(np.quantile(values, q)) if values else float("nan")


def table(
    runs: Sequence[Run],
    costs: Sequence[Cost],
    command: str,
    clock: Clock,
    machine: str,
    health: Sequence[str] = (),
) -> str:
    lines = [
        "## Side by side: modelrelease, Flagger v1.44.0, Argo Rollouts v1.9.2 (issue 28)",
        "",
        f"Command: `{command}` ({datetime.now(UTC):%Y-%m-%d}, {machine}). Configuration and method: "
        "controller/tooling/peers.py's docstring; what the differences come from: docs/analysis.md "
        '"Side by side with Flagger and Argo Rollouts".',
        f"Time compressed {clock.compression:g}× by configuration for all three; minutes and GPU-seconds "
        "below are uncompressed. 100 requests/s per release, prometheus-default buckets, warm-up "
        "slower than configured. Users exposed: model 2's requests before the rollback (median over "
        "the rolled-back runs). Extra GPU-s: beyond the 4 stable GPUs, from the change to the end (mean).",
        "",
        "| scenario | tool | runs | rolled back | promoted | neither | minutes to decision p50 / p90 "
        "| users exposed before rollback | extra GPU-s | API requests / release | CPU-s / release "
        "| peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in SCENARIOS:
        for tool in TOOLS:
            mine = [r for r in runs if r.tool == tool and r.scenario == scenario]
            if not mine:
                continue
            cost = next(c for c in costs if c.tool == tool and c.scenario == scenario)
            count = len(mine)
            back = [r for r in mine if r.outcome == "rolled back"]
            promoted = sum(r.outcome == "promoted" for r in mine)
            minutes = [r.minutes for r in mine if r.minutes is not None]
            exposed = statistics.median(r.canary_requests for r in back) if back else float("nan")
            extra = statistics.fmean(r.extra_gpu_seconds for r in mine)
            lines.append(
                f"| {scenario} | {tool} | {count} | {len(back) / count:.0%} | {promoted / count:.0%} "
                f"| {(count - len(back) - promoted) / count:.0%} "
                f"| {_quantile(minutes, 0.5):.1f} / {_quantile(minutes, 0.9):.1f} "
                f"| {'—' if not back else f'{exposed:,.0f}'} | {extra:,.0f} "
                f"| {cost.api_requests:.0f} | {cost.cpu_seconds:.1f} | {cost.peak_rss_mb:.0f} MB |"
            )
    if health:
        lines += ["", "Prometheus' view of the fleet: " + "; ".join(health) + "."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller.tooling.peers", description=__doc__)
    parser.add_argument("--runs", type=int, default=20, help="releases per scenario and tool")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    # Flagger floors its analysis interval at 10 s (GetAnalysisInterval): one configured minute may
    # not be shorter here, or Flagger alone runs slower than configured. 6 is the most compression
    # that keeps all three tools to the same clock.
    parser.add_argument("--compression", type=float, default=6.0)
    parser.add_argument("--deadline", type=float, default=DEADLINE_MINUTES, help="minutes a run may take")
    parser.add_argument("--seed", type=int, default=28)
    parser.add_argument("--work", type=pathlib.Path, help="keep logs here (default: a temporary folder)")
    parser.add_argument("--out", type=pathlib.Path, help="Markdown file to update (docs/benchmarks.md)")
    args = parser.parse_args(argv)
    clock = Clock(args.compression)
    command = "python -m controller.tooling.peers " + " ".join(sys.argv[1:] if argv is None else argv)
    runs: list[Run] = []
    costs: list[Cost] = []
    health: list[str] = []
    with contextlib.ExitStack() as stack:
        work = args.work or pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        pods = args.runs * (2 * REPLICAS + 2 * (REPLICAS + 3))  # Flagger's canary is full size
        nodes = max(4, -(-pods // 90))
        bench = stack.enter_context(benchcluster.running(work, nodes=nodes, gpus_per_node=96))
        _install_peer_crds(bench)
        kubeconfigs = _peer_accounts(bench, work)
        for index, name in enumerate(args.scenarios):
            began = time.monotonic()
            found, spent, seen = run_scenario(
                bench, work, kubeconfigs, name, args.runs, clock, args.seed + index, print, args.deadline
            )
            runs += found
            costs += spent
            health.append(seen)
            print(f"{name}: done in {time.monotonic() - began:.0f} s")
    text = table(runs, costs, command.strip(), clock, "2 cores, 24 GB, Python 3.11", health)
    print(text)
    if args.out:
        markdown.write_section(args.out, "peers-benchmark", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
