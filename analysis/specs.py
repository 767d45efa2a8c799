"""AnalysisTemplate: reusable metric definitions a release's analysis steps refer to by name.

Each metric says what it measures (its kind and PromQL), which direction is bad, how much
worse the canary may be before it counts (relative margin and absolute floor), and how much
of the template's false-rollback budget α it may spend. PromQL may use the variables
{{namespace}}, {{release}}, {{revision}}, {{track}}, {{model}} and {{interval}}.

Counter queries select raw counter series (no `rate()`/`increase()`): the Prometheus source
computes exact per-interval increases itself, handling counter resets, missing scrapes and
pod warm-up, so the judge counts requests rather than extrapolated rates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from analysis import schema

TEMPLATE_VARIABLES = frozenset({"namespace", "release", "revision", "track", "model", "interval"})
_VARIABLE = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)\s*}}")


def render_query(query: str, variables: Mapping[str, str]) -> str:
    """The PromQL with every {{variable}} replaced (the names were checked when the template loaded)."""
    return _VARIABLE.sub(lambda match: variables[match.group(1)], query)


class MetricKind(StrEnum):
    ERROR_RATE = "errorRate"
    LATENCY = "latency"
    GAUGE = "gauge"
    DISTRIBUTION = "distribution"
    AGREEMENT = "agreement"


class BadDirection(StrEnum):
    INCREASE = "increase"
    DECREASE = "decrease"


class Margin(schema.Frozen):
    """How much worse the canary may be and still count as no worse.

    The larger of `relative` (a share of the baseline value) and `absolute` (in the
    metric's unit) applies, so a near-zero baseline does not make the margin vanish.
    """

    relative: float = Field(0.1, ge=0, le=10, description="Share of the baseline value, e.g. 0.1 = 10 %.")
    absolute: float = Field(0.0, ge=0, description="Floor in the metric's own unit.")


class ErrorRateQueries(schema.Frozen):
    requests: str = Field(
        description="PromQL selecting one arm's request counter series (raw, e.g. one per pod)."
    )
    errors: str = Field(description="PromQL selecting one arm's failed-request counter series.")


class LatencyQueries(schema.Frozen):
    buckets: str = Field(description="PromQL selecting one arm's histogram bucket counter series (with le).")
    quantiles: tuple[float, ...] = Field((0.99,), min_length=1)
    slo_seconds: float | None = Field(None, gt=0, description="Latency edge whose exceedance rate is judged.")

    @model_validator(mode="after")
    def _quantiles_are_probabilities(self) -> Self:
        for q in self.quantiles:
            if not 0 < q < 1:
                raise ValueError(f"quantile {q} is not between 0 and 1")
        return self


class GaugeQueries(schema.Frozen):
    value: str = Field(
        description="PromQL: the gauge for one arm, e.g. GPU utilisation (averaged over series)."
    )
    per_request: bool = Field(False, description="Divide by the arm's request rate (load-normalised).")
    requests: str | None = Field(
        None, description="PromQL selecting request counters; needed with perRequest."
    )

    @model_validator(mode="after")
    def _per_request_needs_requests(self) -> Self:
        if self.per_request and not self.requests:
            raise ValueError("perRequest: true needs a requests query")
        return self


class DistributionQueries(schema.Frozen):
    counts: str = Field(
        description="PromQL selecting one arm's prediction counter series, by the class label."
    )
    label: str = Field("class", description="The label that names the class or bin.")


class AgreementQueries(schema.Frozen):
    """A shadow's comparisons with stable, from the counter the serving side exports for the canary
    (the contract: `shadow_comparisons_total{outcome="agree|disagree"}`, docs/strategies.md)."""

    comparisons: str = Field(
        description="PromQL selecting the canary's comparison counter series, by the outcome label."
    )
    label: str = Field("outcome", description="The label that says how a comparison came out.")
    disagree: str = Field("disagree", description="Its value for a prediction that differs from stable's.")


class MetricSpec(schema.Frozen):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$", max_length=63)
    kind: MetricKind
    error_rate: ErrorRateQueries | None = None
    latency: LatencyQueries | None = None
    gauge: GaugeQueries | None = None
    distribution: DistributionQueries | None = None
    agreement: AgreementQueries | None = None
    bad_direction: BadDirection = BadDirection.INCREASE
    margin: Margin = Margin()
    critical: bool = Field(True, description="A critical metric's failure rolls back; others only inform.")
    min_requests: int = Field(100, ge=0, description="Requests per arm before the metric may pass.")
    min_duration: Annotated[schema.Duration, schema.within(timedelta(0), timedelta(days=7))] = Field(
        timedelta(minutes=5), description="Time observed before it may pass."
    )
    alpha_share: float = Field(1.0, gt=0, description="Relative weight of this metric in the α split.")

    @model_validator(mode="after")
    def _direction_fits_kind(self) -> Self:
        if (
            self.kind in (MetricKind.ERROR_RATE, MetricKind.LATENCY, MetricKind.AGREEMENT)
            and self.bad_direction != BadDirection.INCREASE
        ):
            raise ValueError(f"badDirection: a {self.kind.value} metric is bad when it increases")
        if self.kind == MetricKind.AGREEMENT and not 0 < self.margin.absolute < 1:
            raise ValueError(
                "an agreement metric's margin.absolute is the share of requests it may disagree on, "
                "between 0 and 1 (e.g. 0.02: disagrees on at most 2 %)"
            )
        return self

    @model_validator(mode="after")
    def _queries_match_kind(self) -> Self:
        blocks = {
            MetricKind.ERROR_RATE: self.error_rate,
            MetricKind.LATENCY: self.latency,
            MetricKind.GAUGE: self.gauge,
            MetricKind.DISTRIBUTION: self.distribution,
            MetricKind.AGREEMENT: self.agreement,
        }
        if blocks[self.kind] is None:
            raise ValueError(f"kind {self.kind.value} needs its queries under '{self.kind.value}'")
        others = [kind.value for kind, block in blocks.items() if block is not None and kind != self.kind]
        if others:
            raise ValueError(f"kind {self.kind.value} does not take queries under {', '.join(others)}")
        for query in self.queries():
            for name in _VARIABLE.findall(query):
                if name not in TEMPLATE_VARIABLES:
                    known = ", ".join(sorted(TEMPLATE_VARIABLES))
                    raise ValueError(f"unknown template variable {{{{{name}}}}}; known: {known}")
        return self

    def queries(self) -> tuple[str, ...]:
        block = self.error_rate or self.latency or self.gauge or self.distribution or self.agreement
        if block is None:
            return ()
        values = block.model_dump().values()
        return tuple(value for value in values if isinstance(value, str) and value)


class AnalysisTemplateSpec(schema.Frozen):
    interval: Annotated[schema.Duration, schema.within(timedelta(seconds=1), timedelta(hours=1))] = Field(
        timedelta(minutes=1), description="Length of one comparison interval."
    )
    alpha: float = Field(0.05, gt=0, lt=0.5, description="False-rollback budget shared by the metrics.")
    beta: float = Field(
        0.1,
        gt=0,
        lt=0.5,
        description="Chance that a canary worse than a margin is still promoted: a metric passes once "
        "a regression of its margin's size would have been caught with probability 1 - beta.",
    )
    metrics: tuple[MetricSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _metric_names_are_unique(self) -> Self:
        seen: set[str] = set()
        for metric in self.metrics:
            if metric.name in seen:
                raise ValueError(f"metric name {metric.name!r} is used twice")
            seen.add(metric.name)
        return self

    def alpha_for(self, metric: MetricSpec) -> float:
        """A metric's share of α (Bonferroni split: valid under any dependence)."""
        total = sum(m.alpha_share for m in self.metrics)
        return self.alpha * metric.alpha_share / total


def quantile_name(metric: str, quantile: float) -> str:
    """How a latency metric's quantile test is named in verdicts: `latency:p99`, `latency:p99_9`."""
    return f"{metric}:p{quantile * 100:g}".replace(".", "_")


def quantile_test_name(metric: MetricSpec, quantile: float) -> str:
    """A latency metric's quantile test: the metric's own name when it is its only test."""
    assert metric.latency is not None
    if len(metric.latency.quantiles) == 1 and metric.latency.slo_seconds is None:
        return metric.name
    return quantile_name(metric.name, quantile)


def slo_name(metric: str, slo_seconds: float) -> str:
    """How a latency metric's SLO-edge test is named in verdicts: `latency:above-0.25s`."""
    return f"{metric}:above-{slo_seconds:g}s"
