"""A traffic-following inference fleet: the cluster's pods serve what the routes send them.

Every Ready pod of the cluster that carries a release label serves requests at the rate
the data plane gives it (`dataplane.pod_shares`: Service selectors, HTTPRoute and VirtualService
weights) and keeps Prometheus counters the way a model server does: requests, errors, a latency
histogram with a real serving stack's bucket edges, GPU utilisation and predictions by class. How
each model version behaves comes from a scenario (`FleetScenario`, YAML), so a demo or a test can
say "version 3 has +30 % p99 and 3× errors"; a pod knows its model version the way a
model server does, from its container's `MODEL_VERSION` variable (or a `modelrelease.dev/model-version`
label).

Each pod is a scrape target of its own at `/pods/<namespace>/<pod>/metrics` on one port, listed
for Prometheus in a file_sd JSON file that follows pods as they come and go (with the target
labels a Kubernetes service discovery would attach: namespace, pod, release, revision, track,
model version). A deleted pod leaves the file, so its series stop.

Mirrors and cohorts follow the routes too: a pod the main rule mirrors to serves those copies as
well (they cost it latency samples and GPU time like any request, and count under
`inference_requests_total{source="mirror"}` rather than `source="user"`), and compares each copy's
prediction with the stable's, counting `shadow_comparisons_total{outcome="agree|disagree"}` at the
version's `disagreement` share. A header-route rule gets `cohortShare` of the requests.

For benchmarks it keeps, per release, the requests each model version served (kept after its pods
are gone) and the GPU-seconds its bound pods held (`tally`); a scenario may add noisy neighbours
(slow episodes on any pod, either model); and `/metrics` serves every pod's series on one page, each
labelled as a per-pod scrape would be, for fleets too large to scrape pod by pod.

What it does not model: request queueing and load-dependent latency, pod-to-pod network, partial
failures of a Service without Ready pods (those requests are simply not served), restarts, which
requests carry a cohort's header (a fixed share does), disagreement that depends on the request, or
neighbours that slow a whole node at once (each pod's episodes are its own).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import pathlib
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import numpy as np
import yaml

from analysis.tooling import openmetrics, traffic_simulator
from controller.tooling import dataplane

# The labels the controller puts on every pod it runs (read here as a data plane would).
RELEASE = "modelrelease.dev/release"
RELEASE_NAME = "modelrelease.dev/release-name"
REVISION = "modelrelease.dev/revision"
TRACK = "modelrelease.dev/track"
MODEL_VERSION = "modelrelease.dev/model-version"
GPU = "nvidia.com/gpu"


@dataclasses.dataclass(frozen=True)
class VersionBehaviour:
    """How one model version serves, relative to the default behaviour."""

    p99_change: float = 0.0
    p50_change: float = 0.0
    error_rate: float | None = None
    gpu_utilisation: float | None = None
    class_shares: tuple[float, ...] | None = None
    disagreement: float | None = None  # share of mirrored requests predicted unlike the stable

    def apply(self, base: traffic_simulator.Behaviour) -> traffic_simulator.Behaviour:
        behaviour = base
        if self.p50_change:
            behaviour = behaviour.with_quantile_change(0.5, self.p50_change)
        if self.p99_change:
            behaviour = behaviour.with_quantile_change(0.99, self.p99_change)
        changes: dict[str, Any] = {}
        if self.error_rate is not None:
            changes["error_rate"] = self.error_rate
        if self.gpu_utilisation is not None:
            changes["gpu_utilisation"] = self.gpu_utilisation
        if self.class_shares is not None:
            changes["class_shares"] = self.class_shares
        return dataclasses.replace(behaviour, **changes)


@dataclasses.dataclass(frozen=True)
class FleetScenario:
    """Traffic per release and behaviour per model version."""

    requests_per_second: float = 200.0
    buckets: str = "prometheus-default"
    diurnal_amplitude: float = 0.0
    day_seconds: float = traffic_simulator.DAY_SECONDS
    warmup_seconds: float = 0.0  # a new pod is slower for this time constant after it turns Ready
    warmup_slowdown: float = 0.5
    gpu_noise: float = 0.02
    cohort_share: float = 0.0  # share of requests that carry a header route's header
    disagreement: float = 0.005  # a version's disagreement with stable unless it says otherwise
    # Noisy neighbours: each pod, whatever it serves, starts slow episodes at this rate (per hour of
    # fleet time) that last `slow_episode_seconds` on average (exponential) and slow every request
    # by `slow_episode_slowdown` — another tenant's job sharing the node's GPU, PCIe or memory bus.
    slow_episodes_per_hour: float = 0.0
    slow_episode_seconds: float = 120.0
    slow_episode_slowdown: float = 0.5
    base: traffic_simulator.Behaviour = dataclasses.field(default_factory=traffic_simulator.Behaviour)
    versions: Mapping[str, VersionBehaviour] = dataclasses.field(default_factory=dict)

    @property
    def edges(self) -> traffic_simulator.FloatArray:
        return traffic_simulator.REAL_EDGES[self.buckets]

    def behaviour(self, model_version: str) -> traffic_simulator.Behaviour:
        return self.versions.get(model_version, VersionBehaviour()).apply(self.base)

    def disagreement_of(self, model_version: str) -> float:
        found = self.versions.get(model_version, VersionBehaviour()).disagreement
        return self.disagreement if found is None else found

    @classmethod
    def load(cls, path: pathlib.Path) -> FleetScenario:
        """From YAML: requestsPerSecond, buckets, warmupSeconds, …, versions: {"3": {p99Change: 0.3}}."""
        document = yaml.safe_load(path.read_text()) or {}
        return cls.from_document(document, str(path))

    @classmethod
    def from_document(cls, document: Mapping[str, Any], source: str = "scenario") -> FleetScenario:
        known = {
            "requestsPerSecond": "requests_per_second",
            "buckets": "buckets",
            "diurnalAmplitude": "diurnal_amplitude",
            "daySeconds": "day_seconds",
            "warmupSeconds": "warmup_seconds",
            "warmupSlowdown": "warmup_slowdown",
            "gpuNoise": "gpu_noise",
            "cohortShare": "cohort_share",
            "disagreement": "disagreement",
            "slowEpisodesPerHour": "slow_episodes_per_hour",
            "slowEpisodeSeconds": "slow_episode_seconds",
            "slowEpisodeSlowdown": "slow_episode_slowdown",
        }
        fields: dict[str, Any] = {}
        for key, value in document.items():
            if key == "versions":
                continue
            if key not in known:
                raise ValueError(
                    f"{source}: {key}: not a scenario field (known: {', '.join(sorted(known))}, versions)"
                )
            fields[known[key]] = value
        if fields.get("buckets", "prometheus-default") not in traffic_simulator.REAL_EDGES:
            choices = ", ".join(sorted(traffic_simulator.REAL_EDGES))
            raise ValueError(f"{source}: buckets: {fields['buckets']!r} is not one of {choices}")
        version_keys = {
            "p99Change": "p99_change",
            "p50Change": "p50_change",
            "errorRate": "error_rate",
            "gpuUtilisation": "gpu_utilisation",
            "classShares": "class_shares",
            "disagreement": "disagreement",
        }
        versions: dict[str, VersionBehaviour] = {}
        for version, spec in (document.get("versions") or {}).items():
            values: dict[str, Any] = {}
            for key, value in (spec or {}).items():
                if key not in version_keys:
                    raise ValueError(f"{source}: versions.{version}.{key}: not a behaviour field")
                values[version_keys[key]] = tuple(value) if key == "classShares" else value
            versions[str(version)] = VersionBehaviour(**values)
        return cls(**fields, versions=versions)


@dataclasses.dataclass
class _Pod:
    labels: dict[str, str]
    counters: openmetrics.PodCounters
    ready_since: float | None
    gpus: float = 0.0
    slow_until: float = 0.0  # a noisy neighbour slows it until then


@dataclasses.dataclass(frozen=True)
class Tally:
    """What one release's pods have done since the fleet started: requests served per model version
    (kept after the pods are gone: users exposed to a version) and GPU-seconds held by its pods,
    Ready or not (a scheduled pod holds its GPUs while it loads)."""

    served: Mapping[str, float]
    gpu_seconds: float


class ObjectSource(Protocol):
    """Where the fleet reads the cluster's objects (`tests.controlplane.kube.Kube`; "" = every namespace)."""

    def objects(self, plural: str, namespace: str = "") -> list[dict[str, Any]]: ...


@dataclasses.dataclass(frozen=True)
class _Snapshot:
    """What the fleet serves from, read in one list per kind (not one per release)."""

    pods: list[dict[str, Any]]
    services: dict[str, list[dict[str, Any]]]
    routes: dict[str, list[dict[str, Any]]]
    virtual_services: dict[str, list[dict[str, Any]]]


class ServingFleet:
    """A cluster's pods as servers: advanced in time, scraped per pod."""

    def __init__(
        self, cluster_store: ObjectSource, scenario: FleetScenario, *, seed: int = 0, namespace: str = ""
    ) -> None:
        self._store = cluster_store
        self._namespace = namespace  # "" serves every namespace's releases
        self.scenario = scenario
        self._rng = np.random.default_rng(seed)
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._last: float | None = None
        self._lock = threading.Lock()
        # Solving a quantile change takes seconds: done once here, not while a scrape waits.
        self._behaviours = {version: scenario.behaviour(version) for version in scenario.versions}
        self._served: dict[tuple[str, str, str], float] = {}
        self._gpu_seconds: dict[tuple[str, str], float] = {}

    def advance(self, now: float) -> None:
        """Serve the traffic routed to each Ready pod from the last call to `now` (epoch seconds)."""
        # Read before taking the lock: a scrape waiting on the lock must not wait on the API server
        # too (Prometheus gives up on a scrape after its interval, 1 s in the tests).
        snapshot = self._read()
        with self._lock:
            self._sync(snapshot.pods)
            if self._last is not None and now > self._last:
                self._serve(snapshot, now - self._last, now)
            self._last = now if self._last is None else max(self._last, now)

    def _read(self) -> _Snapshot:
        pods = [
            p
            for p in self._store.objects("pods", self._namespace)
            if RELEASE in ((p.get("metadata") or {}).get("labels") or {})
        ]
        return _Snapshot(
            pods,
            _by_namespace(self._store.objects("services", self._namespace)),
            _by_namespace(self._store.objects("httproutes", self._namespace)),
            _by_namespace(self._store.objects("virtualservices", self._namespace)),
        )

    def _sync(self, pods: list[dict[str, Any]]) -> None:
        present = set()
        for pod in pods:
            meta = pod["metadata"]
            key = (meta["namespace"], meta["name"])
            present.add(key)
            known = self._pods.get(key)
            ready_since = _ready_since(pod)
            if known is None:
                counters = openmetrics.PodCounters(
                    labels={},
                    buckets=np.zeros(len(self.scenario.edges)),
                    classes=np.zeros(len(self.scenario.base.class_shares)),
                )
                labels = {**(meta.get("labels") or {}), MODEL_VERSION: _model_version(pod)}
                self._pods[key] = _Pod(labels, counters, ready_since, gpus=_gpus(pod))
            else:
                known.ready_since = ready_since
        for gone in set(self._pods) - present:
            del self._pods[gone]

    def _serve(self, snapshot: _Snapshot, seconds: float, now: float) -> None:
        scenario = self.scenario
        load = 1.0 + scenario.diurnal_amplitude * math.sin(2 * math.pi * now / scenario.day_seconds)
        for (namespace, release), members in _by_release(snapshot.pods).items():
            held = sum(self._pods[(namespace, p["metadata"]["name"])].gpus for p in members if _bound(p))
            self._gpu_seconds[(namespace, release)] = self._gpu_seconds.get((namespace, release), 0.0) + (
                held * seconds
            )
            # The release's Services: those selecting by its label (ours, also while a canary has no
            # pod yet) and any that selects its pods (a peer's: Flagger's -primary/-canary, Argo
            # Rollouts' Service), as kube-proxy would route to them.
            services = [
                service
                for service in snapshot.services.get(namespace, [])
                if ((service.get("spec") or {}).get("selector") or {}).get(RELEASE) == release
                or any(dataplane.selects(service, pod) for pod in members)
            ]
            routes = snapshot.routes.get(namespace, [])
            virtual_services = snapshot.virtual_services.get(namespace, [])
            shares = dataplane.pod_shares(
                _production_service(members, release),
                services,  # the release's own: routes are matched by the Services they name
                members,
                routes,
                virtual_services,
                scenario.cohort_share,
            )
            mirrored = dataplane.mirror_shares(services, members, routes, virtual_services)
            for name in shares.keys() | mirrored.keys():
                pod = self._pods[(namespace, name)]
                rate = scenario.requests_per_second * load * seconds
                user, copies = rate * shares.get(name, 0.0), rate * mirrored.get(name, 0.0)
                expected = user + copies
                slowdown = 1.0
                if scenario.warmup_seconds > 0 and pod.ready_since is not None:
                    age = max(0.0, now - pod.ready_since)
                    slowdown += scenario.warmup_slowdown * math.exp(-age / scenario.warmup_seconds)
                slowdown *= self._neighbour(pod, seconds, now)
                version = pod.labels.get(MODEL_VERSION, "")
                if version not in self._behaviours:
                    self._behaviours[version] = scenario.behaviour(version)
                behaviour = self._behaviours[version]
                draw = traffic_simulator.draw_pods(
                    self._rng,
                    behaviour,
                    np.array([expected]),
                    np.array([slowdown]),
                    np.array([1.0]),
                    scenario.edges,
                    scenario.gpu_noise,
                )
                counters = pod.counters
                copied = 0.0
                if copies > 0 and draw.requests[0] > 0:
                    # Which of the served requests were copies: each one independently, by its share.
                    copied = float(self._rng.binomial(int(draw.requests[0]), copies / expected))
                    disagreed = float(self._rng.binomial(int(copied), scenario.disagreement_of(version)))
                    counters.mirrored += copied
                    counters.disagree += disagreed
                    counters.agree += copied - disagreed
                counters.requests += float(draw.requests[0])
                served = (namespace, release, version)
                self._served[served] = self._served.get(served, 0.0) + float(draw.requests[0] - copied)
                counters.errors += float(draw.errors[0])
                counters.buckets = counters.buckets + np.cumsum(draw.buckets[0])
                counters.gpu = float(draw.gpu[0])
                counters.classes = counters.classes + draw.classes[0]

    def _neighbour(self, pod: _Pod, seconds: float, now: float) -> float:
        """The latency factor a noisy neighbour puts on `pod` now (1: none), starting episodes at random."""
        scenario = self.scenario
        if scenario.slow_episodes_per_hour <= 0:
            return 1.0
        if now >= pod.slow_until:
            starts = 1.0 - math.exp(-scenario.slow_episodes_per_hour * seconds / 3600.0)
            if self._rng.random() < starts:
                pod.slow_until = now + float(self._rng.exponential(scenario.slow_episode_seconds))
        return 1.0 + scenario.slow_episode_slowdown if now < pod.slow_until else 1.0

    def tally(self, namespace: str, release: str) -> Tally:
        """The release's requests per model version and GPU-seconds so far (zeros if never seen)."""
        with self._lock:
            served = {v: n for (ns, r, v), n in self._served.items() if (ns, r) == (namespace, release)}
            return Tally(served, self._gpu_seconds.get((namespace, release), 0.0))

    def exposition(self, namespace: str, name: str) -> str | None:
        """The pod's metrics in the Prometheus text format (None: no such pod)."""
        with self._lock:
            pod = self._pods.get((namespace, name))
            if pod is None:
                return None
            c = pod.counters
            lines = [
                f"# TYPE {openmetrics.REQUESTS}_total counter",
                f'{openmetrics.REQUESTS}_total{{source="user"}} {c.requests - c.mirrored:.0f}',
                *(
                    [f'{openmetrics.REQUESTS}_total{{source="mirror"}} {c.mirrored:.0f}']
                    if c.mirrored
                    else []
                ),
                f"# TYPE {openmetrics.ERRORS}_total counter",
                f"{openmetrics.ERRORS}_total {c.errors:.0f}",
                f"# TYPE {openmetrics.LATENCY} histogram",
            ]
            for edge, count in zip(self.scenario.edges, c.buckets, strict=True):
                lines.append(f'{openmetrics.LATENCY}_bucket{{le="{edge:.6g}"}} {count:.0f}')
            lines += [
                f'{openmetrics.LATENCY}_bucket{{le="+Inf"}} {c.requests:.0f}',
                f"{openmetrics.LATENCY}_count {c.requests:.0f}",
                f"# TYPE {openmetrics.GPU} gauge",
                f"{openmetrics.GPU} {c.gpu:.4f}",
                f"# TYPE {openmetrics.PREDICTIONS}_total counter",
            ]
            for label, count in zip(traffic_simulator.CLASSES, c.classes, strict=True):
                lines.append(f'{openmetrics.PREDICTIONS}_total{{class="{label}"}} {count:.0f}')
            if c.mirrored > 0:
                lines += [
                    f"# TYPE {openmetrics.COMPARISONS}_total counter",
                    f'{openmetrics.COMPARISONS}_total{{outcome="agree"}} {c.agree:.0f}',
                    f'{openmetrics.COMPARISONS}_total{{outcome="disagree"}} {c.disagree:.0f}',
                ]
            return "\n".join(lines) + "\n"

    def exposition_all(self) -> str:
        """Every pod's metrics on one page, each series labelled with its pod's target labels (what
        `targets` gives a per-pod scrape): one scrape for a fleet too large to scrape pod by pod."""
        with self._lock:
            pods = sorted(self._pods)
        lines = []
        for namespace, name in pods:
            body = self.exposition(namespace, name)
            pod = self._pods.get((namespace, name))
            if body is None or pod is None:
                continue  # gone since
            target = ",".join(
                f'{key}="{value}"' for key, value in _target_labels(namespace, name, pod).items()
            )
            for line in body.splitlines():
                if line.startswith("#"):
                    continue  # a family's TYPE once per pod would repeat it; the series need no type
                series, value = line.rsplit(" ", 1)
                if series.endswith("}"):
                    lines.append(f"{series[:-1]},{target}}} {value}")
                else:
                    lines.append(f"{series}{{{target}}} {value}")
        return "\n".join(lines) + "\n"

    def targets(self, address: str) -> list[dict[str, Any]]:
        """file_sd target groups: one per pod, with the labels a Kubernetes discovery would attach."""
        with self._lock:
            groups = []
            for (namespace, name), pod in sorted(self._pods.items()):
                path = {"__metrics_path__": f"/pods/{namespace}/{name}/metrics"}
                groups.append({"targets": [address], "labels": path | _target_labels(namespace, name, pod)})
            return groups


def _target_labels(namespace: str, name: str, pod: _Pod) -> dict[str, str]:
    """The labels a Kubernetes discovery (relabelling the pod's labels) would give the pod's series."""
    return {
        "namespace": namespace,
        "pod": name,
        "release": pod.labels.get(RELEASE, ""),
        "revision": pod.labels.get(REVISION, ""),
        "track": pod.labels.get(TRACK, ""),
        "model_version": pod.labels.get(MODEL_VERSION, ""),
    }


def _model_version(pod: dict[str, Any]) -> str:
    """What the model server in the pod serves: its MODEL_VERSION variable, else the pod's label."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        for variable in container.get("env") or []:
            if variable.get("name") == "MODEL_VERSION" and variable.get("value") is not None:
                return str(variable["value"])
    return str(((pod.get("metadata") or {}).get("labels") or {}).get(MODEL_VERSION, ""))


def _gpus(pod: dict[str, Any]) -> float:
    """The GPUs the pod's containers are limited to (the scheduler reserves them)."""
    total = 0.0
    for container in (pod.get("spec") or {}).get("containers") or []:
        limits = (container.get("resources") or {}).get("limits") or {}
        total += float(limits.get(GPU, 0))
    return total


def _bound(pod: dict[str, Any]) -> bool:
    """Scheduled to a node: from then on its GPUs are its own, until the pod is gone."""
    return bool((pod.get("spec") or {}).get("nodeName"))


def _ready_since(pod: dict[str, Any]) -> float | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            stamp = condition.get("lastTransitionTime")
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None
    return None


def _by_release(pods: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for pod in pods:
        meta = pod["metadata"]
        groups.setdefault((meta["namespace"], meta["labels"][RELEASE]), []).append(pod)
    return groups


def _production_service(pods: list[dict[str, Any]], release: str) -> str:
    """What clients call: the release's full name (from the pods' annotation) or its label."""
    for pod in pods:
        name = ((pod.get("metadata") or {}).get("annotations") or {}).get(RELEASE_NAME)
        if name:
            return str(name)
    return release


def _by_namespace(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for o in objects:
        groups.setdefault(str((o.get("metadata") or {}).get("namespace", "")), []).append(o)
    return groups


# ---- serving it to Prometheus ---------------------------------------------------------------------


class FleetServer:
    """Serves every pod's `/metrics` on one port and keeps the file_sd targets file current."""

    def __init__(
        self,
        fleet: ServingFleet,
        targets_file: pathlib.Path,
        *,
        clock: Callable[[], float],
        port: int = 0,
        tick: float = 0.5,
    ) -> None:
        self._fleet = fleet
        self._targets_file = targets_file
        self._clock = clock
        self._tick = tick
        self._stopped = threading.Event()
        handler = _handler(fleet)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._threads = [
            threading.Thread(target=self._server.serve_forever, name="fleet-http", daemon=True),
            threading.Thread(target=self._keep_current, name="fleet-tick", daemon=True),
        ]

    def start(self) -> FleetServer:
        self._write_targets()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the ticker: an advance still reading the cluster after stop
        would outlive the cluster (or the test) it reads."""
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()

    def _keep_current(self) -> None:
        while not self._stopped.wait(self._tick):
            self._fleet.advance(self._clock())
            self._write_targets()

    def _write_targets(self) -> None:
        text = json.dumps(self._fleet.targets(self.address), indent=1)
        if self._targets_file.exists() and self._targets_file.read_text() == text:
            return
        temporary = self._targets_file.with_suffix(".tmp")
        temporary.write_text(text)
        os.replace(temporary, self._targets_file)  # Prometheus never reads a half-written file


def _handler(fleet: ServingFleet) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts == ["metrics"]:
                self._answer(fleet.exposition_all())
                return
            if len(parts) != 4 or parts[0] != "pods" or parts[3] != "metrics":
                self._refuse("metrics live at /pods/<namespace>/<pod>/metrics (all pods: /metrics)")
                return
            # The counters as the last advance left them (the ticker advances every `tick`): a
            # scrape that advanced the fleet itself would read the API server while Prometheus waits.
            body = fleet.exposition(parts[1], parts[2])
            if body is None:
                self._refuse(f"no pod {parts[1]}/{parts[2]} serves here")  # a target gone since
                return
            self._answer(body)

        def _answer(self, body: str) -> None:
            data = body.encode()
            # A scraper that gave up (its timeout, or Prometheus stopping) has nobody left to answer.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        def _refuse(self, why: str) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_error(404, why)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
