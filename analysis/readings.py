"""What the judge reads: per metric, per comparison interval, what each arm showed.

This is also the JSON format of `modelrelease judge --input` (docs/analysis.md). Counts are
increases within the interval (not running counter values): `requests`/`errors` for
errorRate; `buckets` — cumulative histogram counts by upper edge `le`, "+Inf" included — for
latency; `value` (and `requests` with perRequest) for gauge; `counts` by class for
distribution; `counts` by outcome for agreement (the canary's only: the baseline is left
empty). An arm with nothing to show in an interval (no scrape, no traffic) leaves its fields out;
the judge skips that interval for that metric.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Self

from pydantic import Field, model_validator

from analysis import schema, specs

# Counter increases read from text exposition are whole numbers to within float rounding.
COUNT_TOLERANCE = 1e-6


class ArmSample(schema.Frozen):
    requests: float | None = Field(None, ge=0)
    errors: float | None = Field(None, ge=0)
    buckets: dict[str, float] | None = Field(
        None, description="Cumulative counts by upper edge, '+Inf' included."
    )
    value: float | None = None
    counts: dict[str, float] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        counted = [("requests", self.requests), ("errors", self.errors)]
        counted += [(f"buckets[{k!r}]", v) for k, v in (self.buckets or {}).items()]
        counted += [(f"counts[{k!r}]", v) for k, v in (self.counts or {}).items()]
        for name, count in counted:
            if count is not None and (
                not math.isfinite(count) or abs(count - round(count)) > COUNT_TOLERANCE
            ):
                raise ValueError(
                    f"{name} is {count:g}: counts are whole numbers of requests within the interval "
                    "(increases of a counter), not per-second rates"
                )
        if self.errors is not None and self.requests is not None and self.errors > self.requests:
            raise ValueError(f"errors ({self.errors:g}) exceed requests ({self.requests:g})")
        if self.buckets is not None:
            edges = bucket_edges(self.buckets)
            if not edges or not math.isinf(edges[-1][0]):
                raise ValueError("buckets need a '+Inf' edge (the total)")
            previous = 0.0
            for edge, count in edges:
                if count < previous:
                    raise ValueError(
                        f"bucket le={edge:g} holds {count:g}, less than a lower edge ({previous:g})"
                    )
                previous = count
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError("value is not a finite number")
        if self.counts is not None and any(c < 0 for c in self.counts.values()):
            raise ValueError("counts are increases, zero or more")
        return self


def bucket_edges(buckets: dict[str, float]) -> list[tuple[float, float]]:
    """Buckets sorted by edge; a key that is not a number is an error naming it."""
    edges = []
    for key, count in buckets.items():
        try:
            edge = float(key)
        except ValueError:
            raise ValueError(f"bucket edge {key!r} is not a number (use '+Inf' for the total)") from None
        edges.append((edge, float(count)))
    return sorted(edges)


class IntervalSample(schema.Frozen):
    start: datetime | None = Field(None, description="Interval start (informational).")
    canary: ArmSample = ArmSample()
    baseline: ArmSample = ArmSample()


class JudgeInput(schema.Frozen):
    """`modelrelease judge --input FILE`: the template and what each metric showed, interval by interval."""

    template: specs.AnalysisTemplateSpec
    final: bool = Field(False, description="The run reached maxDuration: undecided becomes Inconclusive.")
    observations: dict[str, tuple[IntervalSample, ...]]

    @model_validator(mode="after")
    def _every_metric_observed(self) -> Self:
        names = {metric.name for metric in self.template.metrics}
        missing = sorted(names - set(self.observations))
        if missing:
            raise ValueError(f"observations: no intervals for metric(s) {', '.join(missing)}")
        unknown = sorted(set(self.observations) - names)
        if unknown:
            raise ValueError(f"observations: {', '.join(unknown)} is not a metric of the template")
        lengths = {name: len(intervals) for name, intervals in self.observations.items()}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{name}: {count}" for name, count in sorted(lengths.items()))
            raise ValueError(
                f"observations: every metric needs the same intervals, oldest first; got {listed}"
            )
        for metric in self.template.metrics:
            for index, interval in enumerate(self.observations[metric.name]):
                for arm_name in ("canary", "baseline"):
                    problem = missing_field(metric, getattr(interval, arm_name))
                    if problem:
                        raise ValueError(f"observations.{metric.name}[{index}].{arm_name}: {problem}")
        return self


def missing_field(metric: specs.MetricSpec, arm: ArmSample) -> str | None:
    """Why an arm sample cannot serve this metric's kind (None when it can, or when it is empty)."""
    given = {
        name
        for name in ("requests", "errors", "buckets", "value", "counts")
        if getattr(arm, name) is not None
    }
    if not given:
        return None
    needed = {
        specs.MetricKind.ERROR_RATE: {"requests", "errors"},
        specs.MetricKind.LATENCY: {"buckets"},
        specs.MetricKind.GAUGE: {"value", "requests"}
        if metric.gauge and metric.gauge.per_request
        else {"value"},
        specs.MetricKind.DISTRIBUTION: {"counts"},
        specs.MetricKind.AGREEMENT: {"counts"},
    }[metric.kind]
    absent = sorted(needed - given)
    if absent:
        return f"a {metric.kind.value} metric needs {', '.join(absent)}"
    return None
