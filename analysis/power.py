"""How much canary traffic an analysis needs to pass: the traffic-aware length of a step.

A metric passes early once its pass e-process ("the canary is worse by the margin or more")
reaches 1/(0.3 β), or at maxDuration when the fixed-horizon test's statistic reaches its z (the
two share β: `evidence.ANYTIME_PASS_SHARE`). For a count metric whose canary behaves like the
baseline, each bad event (an error, a request above the tested latency edge) adds on average the
Kullback-Leibler divergence between the canary's share of bad events at ratio 1 and at the
margin's ratio, so the canary requests needed are about ln(1/(0.3 β)) / (events per canary
request × that divergence) to pass early, and z²/2 over the same to pass at maxDuration. It is an estimate for
a typical good canary: half pass sooner, some later, and overdispersion in the data (which the
judge measures as it goes) stretches it. Gauges are judged per interval, not per request: they
need their `minDuration` and a handful of intervals whatever the traffic.

Pure: the caller supplies the expected request rate and the baseline's error rate.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

from analysis import evidence, specs

# Local tail slope assumed for planning when no histogram has been seen: a Pareto-like tail at
# high quantiles, a lognormal body around the median (the judge measures the real one).
PLANNING_SLOPES = {0.9: 2.5, 0.0: 2.0}


@dataclasses.dataclass(frozen=True)
class MetricNeed:
    name: str
    canary_requests: float | None  # None: judged per interval (gauges)
    duration: timedelta  # to pass early, by the anytime test
    # By when the fixed-horizon test, read once at maxDuration, passes a typical good canary.
    at_horizon: timedelta | None = None


@dataclasses.dataclass(frozen=True)
class StepEstimate:
    needs: tuple[MetricNeed, ...]

    @property
    def duration(self) -> timedelta:
        return max((need.duration for need in self.needs), default=timedelta(0))

    @property
    def horizon_duration(self) -> timedelta:
        """The shortest maxDuration at which the fixed-horizon test passes a typical good canary."""
        return max((need.at_horizon or need.duration for need in self.needs), default=timedelta(0))

    @property
    def limiting(self) -> MetricNeed | None:
        return max(self.needs, key=lambda need: need.duration, default=None)


def _bernoulli_kl(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def requests_to_pass(
    bad_rate: float, null_ratio: float, canary_share: float, beta: float, *, at_horizon: bool = False
) -> float:
    """Canary requests a good canary needs before a count test against `null_ratio` passes at β.

    Early (the anytime e-process must reach 1/(0.3 β)), or `at_horizon`: the fixed-horizon test,
    whose statistic for a typical good canary is about √(2 × the expected log evidence), reaches
    its z at maxDuration.
    """
    c = canary_share / (1 - canary_share)
    at_one = c / (1 + c)
    at_null = c * null_ratio / (c * null_ratio + 1)
    per_event = _bernoulli_kl(at_one, at_null)
    events_per_canary_request = bad_rate * (1 + 1 / c)
    needed = evidence.horizon_pass_z(beta) ** 2 / 2 if at_horizon else evidence.anytime_pass_threshold(beta)
    return needed / (events_per_canary_request * per_event)


def estimate_step(
    template: specs.AnalysisTemplateSpec,
    *,
    requests_per_second: float,
    canary_share: float,
    error_rate: float,
) -> StepEstimate:
    """Expected time to pass each metric at this traffic, for a canary that behaves like its baseline."""
    if not 0 < canary_share < 1:
        raise ValueError(f"canary share {canary_share:g} is not between 0 and 1")
    if requests_per_second <= 0:
        raise ValueError(f"expected request rate {requests_per_second:g}/s is not positive")
    canary_rate = requests_per_second * canary_share
    needs: list[MetricNeed] = []

    def add(
        name: str, requests: float | None, metric: specs.MetricSpec, horizon: float | None = None
    ) -> None:
        floor = max(metric.min_duration, template.interval)
        if requests is None:
            needs.append(MetricNeed(name, None, floor))
            return
        requests = max(requests, float(metric.min_requests))
        late = None if horizon is None else max(horizon, float(metric.min_requests))
        needs.append(
            MetricNeed(
                name,
                requests,
                max(floor, timedelta(seconds=requests / canary_rate)),
                None if late is None else max(floor, timedelta(seconds=late / canary_rate)),
            )
        )

    def both(bad_rate: float, ratio: float) -> tuple[float, float]:
        early = requests_to_pass(bad_rate, ratio, canary_share, template.beta)
        return early, requests_to_pass(bad_rate, ratio, canary_share, template.beta, at_horizon=True)

    for metric in template.metrics:
        if not metric.critical:
            continue
        margin = metric.margin
        match metric.kind:
            case specs.MetricKind.ERROR_RATE:
                ratio = 1 + max(margin.relative, margin.absolute / error_rate)
                early, late = both(error_rate, ratio)
                add(metric.name, early, metric, late)
            case specs.MetricKind.LATENCY:
                assert metric.latency is not None
                for q in metric.latency.quantiles:
                    slope = PLANNING_SLOPES[0.9] if q >= 0.9 else PLANNING_SLOPES[0.0]
                    ratio = (1 + margin.relative) ** slope
                    early, late = both(1 - q, ratio)
                    add(specs.quantile_test_name(metric, q), early, metric, late)
            case specs.MetricKind.GAUGE:
                add(metric.name, None, metric)
            case specs.MetricKind.DISTRIBUTION:
                # The rarest class decides; its share is unknown before data: plan for 2 %.
                share = 0.02
                ratio = 1 + max(margin.relative, margin.absolute / share)
                early, late = both(share, ratio)
                add(metric.name, early, metric, late)
            case specs.MetricKind.AGREEMENT:
                add(metric.name, None, metric)  # its comparisons come from mirrored traffic, not a share
    return StepEstimate(tuple(needs))
