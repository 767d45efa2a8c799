"""Simulated releases as the judge reads them: arrays for `batch`, interval samples for `judge`."""

from __future__ import annotations

import numpy as np

from analysis import readings, specs
from analysis.tooling import traffic_simulator


def interval_samples(
    template: specs.AnalysisTemplateSpec,
    canary: traffic_simulator.ArmCounts,
    baseline: traffic_simulator.ArmCounts,
    release: int,
    edges: traffic_simulator.FloatArray = traffic_simulator.DEFAULT_EDGES,
) -> dict[str, tuple[readings.IntervalSample, ...]]:
    def arm(counts: traffic_simulator.ArmCounts, kind: specs.MetricKind, t: int) -> readings.ArmSample:
        requests = float(counts.requests[release, t])
        match kind:
            case specs.MetricKind.ERROR_RATE:
                return readings.ArmSample(requests=requests, errors=float(counts.errors[release, t]))
            case specs.MetricKind.LATENCY:
                row = counts.buckets[release, t]
                buckets = {f"{e:.6g}": float(c) for e, c in zip(np.asarray(edges), row, strict=True)}
                return readings.ArmSample(buckets={**buckets, "+Inf": requests})
            case specs.MetricKind.GAUGE:
                return readings.ArmSample(value=float(counts.gpu[release, t]))
            case specs.MetricKind.DISTRIBUTION:
                shares = counts.classes[release, t]
                return readings.ArmSample(
                    counts={c: float(n) for c, n in zip(traffic_simulator.CLASSES, shares, strict=True)}
                )
            case specs.MetricKind.AGREEMENT:
                raise ValueError("the traffic simulator does not model a shadow's comparisons with stable")

    intervals = canary.requests.shape[1]
    return {
        metric.name: tuple(
            readings.IntervalSample(
                canary=arm(canary, metric.kind, t), baseline=arm(baseline, metric.kind, t)
            )
            for t in range(intervals)
        )
        for metric in template.metrics
    }
