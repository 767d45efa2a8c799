"""Simulated pods as Prometheus would have scraped them: OpenMetrics history and live values.

`PodFleet` runs a `traffic_simulator.Scenario` per pod and per scrape step and keeps each pod's
counters the way a real process does — growing from 0 at start, back to 0 on a restart — so
the Prometheus source's counter-reset and missing-scrape handling is exercised for real.
`write_history` renders the whole history in the OpenMetrics text format that
`promtool tsdb create-blocks-from openmetrics` backfills; `PodFleet.advance` feeds the live
exporter. Metric names and labels match `reference_template()`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import TextIO

import numpy as np

from analysis.tooling import traffic_simulator

REQUESTS = "inference_requests"
ERRORS = "inference_errors"
LATENCY = "inference_latency_seconds"
GPU = "gpu_utilization"
PREDICTIONS = "inference_predictions"
COMPARISONS = "shadow_comparisons"


@dataclasses.dataclass(frozen=True)
class Arm:
    revision: str
    track: str
    pods: int


@dataclasses.dataclass
class PodCounters:
    labels: dict[str, str]
    requests: float = 0.0
    errors: float = 0.0
    buckets: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    latency_sum: float = 0.0
    gpu: float = 0.0
    classes: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    mirrored: float = 0.0  # of `requests`, those that were mirrored copies (a shadow's)
    agree: float = 0.0  # mirrored requests whose prediction matched the stable's
    disagree: float = 0.0


class PodFleet:
    """Canary and baseline pods of one release, stepped through time with one seeded generator."""

    def __init__(
        self,
        scenario: traffic_simulator.Scenario,
        *,
        namespace: str,
        release: str,
        canary: str,
        baseline: str,
        seed: int,
        edges: np.ndarray = traffic_simulator.DEFAULT_EDGES,
        canary_track: str = "canary",
        baseline_track: str = "stable",
        missing_scrapes: float = 0.0,
        restarts: tuple[tuple[str, float], ...] = (),
    ) -> None:
        self.scenario = scenario
        self.edges = edges
        self._rng = np.random.default_rng(seed)
        self._missing = missing_scrapes
        self._restarts = dict(restarts)  # pod name -> seconds after start at which it restarts
        self.arms = (
            Arm(canary, canary_track, scenario.canary_pods),
            Arm(baseline, baseline_track, scenario.baseline_pods),
        )
        offsets = 1.0 + self._rng.uniform(
            -scenario.pod_offset, scenario.pod_offset, size=sum(a.pods for a in self.arms)
        )
        self.pods: list[tuple[Arm, PodCounters, float]] = []
        for arm in self.arms:
            for index in range(arm.pods):
                labels = {
                    "namespace": namespace,
                    "release": release,
                    "revision": arm.revision,
                    "track": arm.track,
                    "pod": f"{release}-{arm.revision}-{index}",
                }
                counters = PodCounters(
                    labels=labels,
                    buckets=np.zeros(len(edges)),
                    classes=np.zeros(len(scenario.baseline.class_shares)),
                )
                self.pods.append((arm, counters, float(offsets[len(self.pods)])))

    def advance(self, t_seconds: float, step_seconds: float) -> None:
        """Serve `step_seconds` of traffic ending at `t_seconds` (seconds since the pods started)."""
        scenario = self.scenario
        for arm, counters, offset in self.pods:
            restart_at = self._restarts.get(counters.labels["pod"])
            if restart_at is not None and t_seconds - step_seconds < restart_at <= t_seconds:
                counters.requests = counters.errors = counters.latency_sum = 0.0
                counters.buckets = np.zeros(len(self.edges))
                counters.classes = np.zeros_like(counters.classes)
            canary = arm is self.arms[0]
            weight = scenario.weight_at(t_seconds) if canary else 1 - scenario.weight_at(t_seconds)
            behaviour = (
                scenario.canary if canary and t_seconds >= scenario.onset_seconds else scenario.baseline
            )
            load = float(traffic_simulator.load_factor(scenario, t_seconds))
            expected = scenario.rps * weight / arm.pods * load * step_seconds
            slowdown = offset
            if canary and scenario.warmup_seconds > 0:
                slowdown *= 1 + scenario.warmup_slowdown * float(np.exp(-t_seconds / scenario.warmup_seconds))
            draw = traffic_simulator.draw_pods(
                self._rng,
                behaviour,
                np.array([expected]),
                np.array([slowdown]),
                np.array([offset]),
                self.edges,
                scenario.gpu_noise,
            )
            counters.requests += float(draw.requests[0])
            counters.errors += float(draw.errors[0])
            counters.buckets = counters.buckets + np.cumsum(draw.buckets[0])
            middles = np.concatenate([[self.edges[0] / 2], (self.edges[1:] + self.edges[:-1]) / 2])
            counters.latency_sum += float(draw.buckets[0] @ middles)
            counters.gpu = float(draw.gpu[0])
            counters.classes = counters.classes + draw.classes[0]

    def scraped(self) -> list[bool]:
        """Which pods the next scrape reaches (a missed scrape leaves a gap, as in real life)."""
        return [bool(self._rng.random() >= self._missing) for _ in self.pods]


def _labels(labels: dict[str, str], **extra: str) -> str:
    merged = {**labels, **extra}
    return "{" + ",".join(f'{key}="{value}"' for key, value in merged.items()) + "}"


def _edge(edge: float) -> str:
    return f"{edge:.6g}"


def samples(fleet: PodFleet, timestamp: float, reached: list[bool]) -> Iterator[tuple[str, str]]:
    """(family, line) for every sample of one scrape."""
    ts = f" {timestamp:.3f}" if timestamp >= 0 else ""
    for (_, pod, _), seen in zip(fleet.pods, reached, strict=True):
        if not seen:
            continue
        yield REQUESTS, f"{REQUESTS}_total{_labels(pod.labels)} {pod.requests:.0f}{ts}"
        yield ERRORS, f"{ERRORS}_total{_labels(pod.labels)} {pod.errors:.0f}{ts}"
        for edge, count in zip(fleet.edges, pod.buckets, strict=True):
            yield LATENCY, f"{LATENCY}_bucket{_labels(pod.labels, le=_edge(edge))} {count:.0f}{ts}"
        yield LATENCY, f"{LATENCY}_bucket{_labels(pod.labels, le='+Inf')} {pod.requests:.0f}{ts}"
        yield LATENCY, f"{LATENCY}_count{_labels(pod.labels)} {pod.requests:.0f}{ts}"
        yield LATENCY, f"{LATENCY}_sum{_labels(pod.labels)} {pod.latency_sum:.6f}{ts}"
        yield GPU, f"{GPU}{_labels(pod.labels)} {pod.gpu:.6f}{ts}"
        for name, count in zip(traffic_simulator.CLASSES, pod.classes, strict=True):
            yield PREDICTIONS, f"{PREDICTIONS}_total{_labels(pod.labels, **{'class': name})} {count:.0f}{ts}"


FAMILIES = (
    (REQUESTS, "counter"),
    (ERRORS, "counter"),
    (LATENCY, "histogram"),
    (GPU, "gauge"),
    (PREDICTIONS, "counter"),
)


def write_history(
    fleets: Sequence[PodFleet],
    out: TextIO,
    *,
    start_epoch: float,
    duration_seconds: float,
    scrape_seconds: float = 15.0,
) -> int:
    """Write the fleets' history as OpenMetrics, families grouped as the format requires; returns scrapes."""
    lines: dict[str, list[str]] = {family: [] for family, _ in FAMILIES}
    steps = int(duration_seconds // scrape_seconds)
    for fleet in fleets:
        for step in range(1, steps + 1):
            t = step * scrape_seconds
            fleet.advance(t, scrape_seconds)
            for family, line in samples(fleet, start_epoch + t, fleet.scraped()):
                lines[family].append(line)
    for family, kind in FAMILIES:
        out.write(f"# TYPE {family} {kind}\n")
        out.write("\n".join(lines[family]))
        out.write("\n")
    out.write("# EOF\n")
    return steps
