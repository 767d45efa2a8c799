"""Inference traffic simulator: what Prometheus would see from stable and canary pods.

Used by the calibration tests, the benchmark, the real-Prometheus tests (OpenMetrics history
for `promtool tsdb create-blocks-from openmetrics`) and the live exporter. Per model version a
`Behaviour`: latency with a lognormal body and a Pareto tail, an error rate, GPU utilisation
and an output class distribution. Around it: diurnal load, per-pod offsets, a warm-up
transient after a pod starts, missing scrapes and counter resets.

Everything is drawn from a seeded `numpy.random.Generator`; nothing reads the clock.
Counts are drawn per pod and time step: requests ~ Poisson, errors ~ Binomial, histogram
buckets and output classes ~ Multinomial, so the arms' totals are what pods would export.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]

# Latency bucket edges 2.5 % apart from 20 ms to about 3 s: finer than any server exports, the
# benchmark's best case beside REAL_EDGES (the judge tests one edge and the tail's slope there).
DEFAULT_EDGES: FloatArray = np.asarray(0.02 * 1.025 ** np.arange(0, 204), dtype=np.float64)
# Bucket edges real serving stacks export (seconds), 1.3–2.5× apart around our latencies.
REAL_EDGES: dict[str, FloatArray] = {
    # prometheus_client's default Histogram buckets; KServe's model server uses them as they are.
    "prometheus-default": np.array(
        [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
    ),
    # vLLM's time-to-first-token histogram.
    "vllm-ttft": np.array(
        [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
    ),
    # Text Generation Inference's duration histograms: 35 edges, ×1.5 from 0.15 ms.
    "tgi": np.asarray(0.0001 * 1.5 ** np.arange(1, 36), dtype=np.float64),
}
CLASSES = ("approve", "review", "decline", "fraud")
DAY_SECONDS = 86400.0


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """How one model version serves: latency shape, errors, GPU load, predictions.

    Latency is a mixture: a body and, with weight `tail_weight`, a tail starting around
    `tail_start` × the median. The body is lognormal, or bimodal when `batch_share` > 0: that
    share of requests waits for the next GPU batch and is `batch_delay` times slower (the
    second hump continuous batching servers show). The tail is Pareto (`tail_shape`) or, with
    `tail_sigma`, lognormal around `tail_start` × the median (a slow path: cache misses, long
    prompts, preemptions), whose local slope is steeper and grows along the tail.
    """

    median_seconds: float = 0.08
    body_sigma: float = 0.3
    tail_weight: float = 0.03
    tail_start: float = 1.5  # Pareto scale (or the lognormal tail's median), as a multiple of the median
    tail_shape: float = 2.5
    error_rate: float = 0.005
    gpu_utilisation: float = 0.55
    class_shares: tuple[float, ...] = (0.70, 0.20, 0.08, 0.02)
    batch_share: float = 0.0
    batch_delay: float = 1.8
    tail_sigma: float | None = None

    def latency_cdf(self, edges: FloatArray, slowdown: npt.ArrayLike = 1.0) -> FloatArray:
        """P(latency ≤ edge); `slowdown` scales every latency (pod offset, warm-up)."""
        x = np.asarray(edges, dtype=np.float64) / np.asarray(slowdown, dtype=np.float64)[..., None]
        log_x = np.log(x)
        body = stats.norm.cdf((log_x - math.log(self.median_seconds)) / self.body_sigma)
        if self.batch_share > 0:
            waited = stats.norm.cdf(
                (log_x - math.log(self.median_seconds * self.batch_delay)) / self.body_sigma
            )
            body = (1 - self.batch_share) * body + self.batch_share * waited
        start = self.tail_start * self.median_seconds
        if self.tail_sigma is not None:
            tail = stats.norm.cdf((log_x - math.log(start)) / self.tail_sigma)
        else:
            tail = np.where(x > start, 1.0 - (start / np.maximum(x, start)) ** self.tail_shape, 0.0)
        return np.asarray((1 - self.tail_weight) * body + self.tail_weight * tail, dtype=np.float64)

    def latency_quantile(self, quantile: float) -> float:
        low, high = 1e-4, 1e3
        for _ in range(200):
            mid = math.sqrt(low * high)
            before = low, high
            if float(self.latency_cdf(np.array([mid]))[0]) < quantile:
                low = mid
            else:
                high = mid
            if (low, high) == before:  # a fixed point: the remaining steps would change nothing
                break
        return math.sqrt(low * high)

    def with_quantile_change(self, quantile: float, change: float) -> Behaviour:
        """This behaviour with the quantile moved by `change`: the tail moves for q ≥ 0.9, else the body."""
        target = self.latency_quantile(quantile) * (1 + change)
        field = "tail_start" if quantile >= 0.9 else "median_seconds"
        low, high = getattr(self, field) / 4, getattr(self, field) * 4
        for _ in range(100):
            mid = math.sqrt(low * high)
            moved = (
                dataclasses.replace(self, tail_start=mid)
                if field == "tail_start"
                else dataclasses.replace(self, median_seconds=mid)
            )
            before = low, high
            if moved.latency_quantile(quantile) < target:
                low = mid
            else:
                high = mid
            if (low, high) == before:  # a fixed point (see latency_quantile)
                break
        if field == "median_seconds":
            # Keep the tail where it was: the body moved, not the tail.
            scale = self.tail_start * self.median_seconds / math.sqrt(low * high)
            return dataclasses.replace(self, median_seconds=math.sqrt(low * high), tail_start=scale)
        return dataclasses.replace(self, tail_start=math.sqrt(low * high))


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A release: baseline and canary behaviour, and the world they serve in."""

    name: str
    baseline: Behaviour = Behaviour()
    canary: Behaviour = Behaviour()
    rps: float = 100.0
    canary_weight: float = 0.1
    baseline_pods: int = 9
    canary_pods: int = 1
    diurnal_amplitude: float = 0.0
    diurnal_phase: float = 0.0  # radians at t = 0
    pod_offset: float = 0.0  # each pod's latency and GPU scale ×(1 + U(-a, a))
    # Persistent per-arm slowness: every canary pod's latency and GPU ×(1 + this) for the whole
    # release (canary pods on an older node type, a sidecar only the new revision has). Inside a
    # metric's margin it is a good release the judge must promote, not roll back.
    canary_offset: float = 0.0
    warmup_seconds: float = 0.0  # time constant of a new pod's slowdown
    warmup_slowdown: float = 0.5  # extra latency right after start, decaying with exp(-age/τ)
    onset_seconds: float = 0.0  # the canary behaves like the baseline before this
    gpu_noise: float = 0.02  # per pod per interval, absolute utilisation
    weight_schedule: tuple[tuple[float, float], ...] = ()  # (from second, canary weight), e.g. steps
    # Arm-specific slowdowns (noisy neighbours, node pressure): episodes per hour on each arm,
    # each lasting a whole number of minutes drawn from `episode_minutes`, every pod of that arm
    # slower by `episode_slowdown`. They land on either arm at random.
    episodes_per_hour: float = 0.0
    episode_minutes: tuple[int, int] = (2, 6)
    episode_slowdown: float = 0.3
    # Traffic bursts: per hour, minutes at `burst_factor` times the load (both arms).
    bursts_per_hour: float = 0.0
    burst_factor: float = 3.0

    def weight_at(self, t_seconds: float) -> float:
        weight = self.canary_weight
        for since, value in self.weight_schedule:
            if t_seconds >= since:
                weight = value
        return weight


@dataclasses.dataclass(frozen=True)
class ArmCounts:
    """One arm's increases per (seed, interval): what the judge reads."""

    requests: FloatArray  # (S, T)
    errors: FloatArray  # (S, T)
    buckets: FloatArray  # (S, T, B) cumulative by edge, +Inf excluded (== requests)
    gpu: FloatArray  # (S, T) mean over the arm's pods
    classes: FloatArray  # (S, T, K)


@dataclasses.dataclass(frozen=True)
class PodDraw:
    """Increases per pod and step: the unit both the interval view and the exporter build on."""

    requests: FloatArray  # (..., P)
    errors: FloatArray
    buckets: FloatArray  # (..., P, B) per bucket (not cumulative)
    gpu: FloatArray
    classes: FloatArray


def load_factor(scenario: Scenario, t_seconds: npt.ArrayLike) -> FloatArray:
    t = np.asarray(t_seconds, dtype=np.float64)
    wave = np.sin(2 * math.pi * t / DAY_SECONDS + scenario.diurnal_phase)
    return np.asarray(1.0 + scenario.diurnal_amplitude * wave, dtype=np.float64)


def draw_pods(
    rng: np.random.Generator,
    behaviour: Behaviour,
    expected_requests: FloatArray,
    slowdown: FloatArray,
    gpu_scale: FloatArray,
    edges: FloatArray,
    gpu_noise: float,
) -> PodDraw:
    """Draw one step for pods with the given expected requests and latency slowdown (same shapes)."""
    requests = rng.poisson(expected_requests).astype(np.float64)
    cdf = behaviour.latency_cdf(edges, slowdown)
    probabilities = np.diff(
        np.concatenate([np.zeros((*cdf.shape[:-1], 1)), cdf, np.ones((*cdf.shape[:-1], 1))], axis=-1), axis=-1
    )
    probabilities = np.clip(probabilities, 0.0, None)
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    per_bucket = rng.multinomial(requests.astype(np.int64), probabilities).astype(np.float64)
    errors = rng.binomial(requests.astype(np.int64), behaviour.error_rate).astype(np.float64)
    shares = np.broadcast_to(
        np.asarray(behaviour.class_shares), (*requests.shape, len(behaviour.class_shares))
    )
    classes = rng.multinomial(requests.astype(np.int64), shares).astype(np.float64)
    gpu = behaviour.gpu_utilisation * gpu_scale + rng.normal(0.0, gpu_noise, size=requests.shape)
    return PodDraw(
        requests=requests,
        errors=errors,
        buckets=per_bucket[..., :-1],
        gpu=np.clip(gpu, 0.0, 1.0),
        classes=classes,
    )


def _episodes(
    rng: np.random.Generator,
    seeds: int,
    intervals: int,
    per_hour: float,
    minutes: tuple[int, int],
    interval_seconds: float,
) -> FloatArray:
    """(seeds, intervals) 1 where an episode covers the interval, from Poisson-many random episodes."""
    mask = np.zeros((seeds, intervals))
    if per_hour <= 0:
        return mask
    counts = rng.poisson(per_hour * intervals * interval_seconds / 3600.0, size=seeds)
    for seed, count in enumerate(counts):
        for _ in range(int(count)):
            start = int(rng.integers(0, intervals))
            length = int(rng.integers(minutes[0], minutes[1] + 1)) * max(1, round(60.0 / interval_seconds))
            mask[seed, start : start + length] = 1.0
    return mask


def _pod_offsets(rng: np.random.Generator, scenario: Scenario, seeds: int, pods: int) -> FloatArray:
    return 1.0 + rng.uniform(-scenario.pod_offset, scenario.pod_offset, size=(seeds, pods))


def simulate_intervals(
    scenario: Scenario,
    *,
    seeds: int,
    intervals: int,
    interval_seconds: float = 60.0,
    start_seconds: float = 0.0,
    seed: int = 0,
    edges: FloatArray = DEFAULT_EDGES,
) -> tuple[ArmCounts, ArmCounts]:
    """(canary, baseline) counts for `seeds` independent releases, interval by interval.

    Pods start at t = 0 (the canary's warm-up runs from there); the analysis window starts
    at `start_seconds`, so a caller excludes warm-up by starting later.
    """
    rng = np.random.default_rng(seed)
    bursts = 1.0 + (scenario.burst_factor - 1.0) * _episodes(
        rng, seeds, intervals, scenario.bursts_per_hour, (1, 2), interval_seconds
    )
    arms = []
    for arm, pods in (("canary", scenario.canary_pods), ("baseline", scenario.baseline_pods)):
        offsets = _pod_offsets(rng, scenario, seeds, pods)
        if arm == "canary":
            offsets = offsets * (1.0 + scenario.canary_offset)
        slow = 1.0 + scenario.episode_slowdown * _episodes(
            rng, seeds, intervals, scenario.episodes_per_hour, scenario.episode_minutes, interval_seconds
        )
        per_step = []
        for index in range(intervals):
            t0 = start_seconds + index * interval_seconds
            middle = t0 + interval_seconds / 2
            behaviour = scenario.baseline
            if arm == "canary" and middle >= scenario.onset_seconds:
                behaviour = scenario.canary
            weight = scenario.weight_at(middle) if arm == "canary" else 1 - scenario.weight_at(middle)
            per_pod = scenario.rps * weight / pods * float(load_factor(scenario, middle)) * interval_seconds
            expected = per_pod * bursts[:, index, None]
            slowdown = offsets * slow[:, index, None]
            if arm == "canary" and scenario.warmup_seconds > 0:
                # Mean slowdown over the interval of exp(-age/τ) decay.
                tau = scenario.warmup_seconds
                mean_decay = (
                    tau * (math.exp(-t0 / tau) - math.exp(-(t0 + interval_seconds) / tau)) / interval_seconds
                )
                slowdown = slowdown * (1 + scenario.warmup_slowdown * mean_decay)
            per_step.append(
                draw_pods(
                    rng,
                    behaviour,
                    np.broadcast_to(expected, (seeds, pods)).astype(np.float64),
                    slowdown,
                    offsets,
                    edges,
                    scenario.gpu_noise,
                )
            )
        arms.append(
            ArmCounts(
                requests=np.stack([d.requests.sum(axis=-1) for d in per_step], axis=1),
                errors=np.stack([d.errors.sum(axis=-1) for d in per_step], axis=1),
                buckets=np.cumsum(np.stack([d.buckets.sum(axis=-2) for d in per_step], axis=1), axis=-1),
                gpu=np.stack([d.gpu.mean(axis=-1) for d in per_step], axis=1),
                classes=np.stack([d.classes.sum(axis=-2) for d in per_step], axis=1),
            )
        )
    return arms[0], arms[1]
