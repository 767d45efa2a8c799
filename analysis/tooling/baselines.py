"""The judges we compare against, as the benchmark runs them on the same simulated releases.

* Kayenta-style (Netflix ACA judge): per-minute points per metric for canary and baseline; a
  Mann-Whitney U 98 % confidence interval for the location shift (Hodges-Lehmann), a metric is
  High when the interval's lower end exceeds 0.25·|shift| (Low mirrored for two-sided ones);
  one judgement at 60 minutes; a critical metric out of bounds fails the canary, else the score
  (share of metrics passing) must reach 75 (marginal) — 95 is a clean pass.
* Threshold-style (Flagger defaults): every minute the canary alone must show a success rate
  ≥ 99 % and a p99 ≤ a fixed bound; no data counts as a failed check; 5 failed checks roll back.

Both are pure numpy over arrays with a leading release axis.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt
from scipy import stats

from analysis.tooling import traffic_simulator

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def per_interval_quantile(cum: FloatArray, total: FloatArray, edges: FloatArray, q: float) -> FloatArray:
    """histogram_quantile per (release, interval), linear inside the bucket; NaN without requests."""
    rank = q * total
    index = (cum < rank[..., None]).sum(axis=-1)
    inside = index < len(edges)
    safe = np.minimum(index, len(edges) - 1)
    upper_edge = edges[safe]
    lower_edge = np.where(safe > 0, edges[np.maximum(safe - 1, 0)], 0.0)
    upper_count = np.take_along_axis(cum, safe[..., None], axis=-1)[..., 0]
    lower_count = np.where(
        safe > 0, np.take_along_axis(cum, np.maximum(safe - 1, 0)[..., None], axis=-1)[..., 0], 0.0
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(
            upper_count > lower_count, (rank - lower_count) / (upper_count - lower_count), 1.0
        )
    value = np.where(inside, lower_edge + (upper_edge - lower_edge) * fraction, edges[-1])
    return np.asarray(np.where(total > 0, value, np.nan), dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class KayentaMetric:
    name: str
    canary: FloatArray  # (S, T) per-minute points
    baseline: FloatArray
    direction: str  # "increase" or "either"


def mann_whitney_shift(
    canary: FloatArray, baseline: FloatArray, confidence: float = 0.98
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Hodges-Lehmann shift and its Mann-Whitney confidence interval per release (NaN points dropped)."""
    diffs = canary[:, :, None] - baseline[:, None, :]
    flat = diffs.reshape(len(canary), -1)
    valid = np.isfinite(flat)
    n = np.isfinite(canary).sum(axis=1)
    m = np.isfinite(baseline).sum(axis=1)
    ordered = np.sort(np.where(valid, flat, np.inf), axis=1)
    count = valid.sum(axis=1)
    z = stats.norm.ppf(1 - (1 - confidence) / 2)
    k = np.floor(n * m / 2 - z * np.sqrt(n * m * (n + m + 1) / 12)).astype(np.int64)
    k = np.clip(k, 0, np.maximum(count - 1, 0))
    rows = np.arange(len(canary))
    low = ordered[rows, k]
    high = ordered[rows, np.clip(count - 1 - k, 0, None)]
    estimate = ordered[rows, np.clip(count // 2, 0, None)]
    empty = count == 0
    return (
        np.where(empty, np.nan, estimate),
        np.where(empty, np.nan, low),
        np.where(empty, np.nan, high),
    )


def kayenta_metrics(
    canary: traffic_simulator.ArmCounts, baseline: traffic_simulator.ArmCounts, edges: FloatArray
) -> list[KayentaMetric]:
    with np.errstate(divide="ignore", invalid="ignore"):
        metrics = [
            KayentaMetric(
                "errors", canary.errors / canary.requests, baseline.errors / baseline.requests, "increase"
            ),
            KayentaMetric(
                "p50",
                per_interval_quantile(canary.buckets, canary.requests, edges, 0.5),
                per_interval_quantile(baseline.buckets, baseline.requests, edges, 0.5),
                "increase",
            ),
            KayentaMetric(
                "p99",
                per_interval_quantile(canary.buckets, canary.requests, edges, 0.99),
                per_interval_quantile(baseline.buckets, baseline.requests, edges, 0.99),
                "increase",
            ),
            KayentaMetric("gpu", canary.gpu, baseline.gpu, "increase"),
        ]
        for k, name in enumerate(traffic_simulator.CLASSES):
            metrics.append(
                KayentaMetric(
                    f"share-{name}",
                    canary.classes[..., k] / canary.requests,
                    baseline.classes[..., k] / baseline.requests,
                    "either",
                )
            )
    return metrics


def kayenta_rollbacks(
    metrics: list[KayentaMetric], judgement_minute: int, *, fraction: float = 0.25, marginal: float = 75.0
) -> npt.NDArray[np.bool_]:
    """Whether the single judgement at `judgement_minute` fails each release (every metric critical)."""
    failed_any = np.zeros(len(metrics[0].canary), dtype=bool)
    passing = np.zeros(len(metrics[0].canary))
    for metric in metrics:
        estimate, low, high = mann_whitney_shift(
            metric.canary[:, :judgement_minute], metric.baseline[:, :judgement_minute]
        )
        bound = fraction * np.abs(estimate)
        high_flag = low > bound
        low_flag = (high < -bound) if metric.direction == "either" else np.zeros_like(high_flag)
        failed = np.nan_to_num(high_flag | low_flag).astype(bool)
        failed_any |= failed
        passing += ~failed
    score = 100.0 * passing / len(metrics)
    return np.asarray(failed_any | (score < marginal), dtype=bool)


def threshold_first_rollback(
    canary: traffic_simulator.ArmCounts,
    edges: FloatArray,
    p99_bound: float,
    *,
    min_success: float = 0.99,
    failed_checks: int = 5,
) -> IntArray:
    """Index of the minute at which the 5th failed check rolls back; -1 where it never does."""
    with np.errstate(divide="ignore", invalid="ignore"):
        success = 1.0 - canary.errors / canary.requests
    p99 = per_interval_quantile(canary.buckets, canary.requests, edges, 0.99)
    no_data = ~np.isfinite(success) | ~np.isfinite(p99)
    failed = (
        no_data
        | (np.nan_to_num(success, nan=0.0) < min_success)
        | (np.nan_to_num(p99, nan=math.inf) > p99_bound)
    )
    count = np.cumsum(failed, axis=1)
    reached = count >= failed_checks
    return np.where(reached.any(axis=1), np.argmax(reached, axis=1), -1).astype(np.int64)
