"""The judge look by look: what it said after each interval of an analysis, for the verdict report.

The judge is sequential and anytime-valid: its verdict after interval k depends only on the first k
intervals. So folding the observations one interval at a time (`judge.fold`, which gives what
`judge.assess` gives on each prefix) and concluding after each replays what the controller saw at
each look — the evidence of each metric against its threshold, the effect with its confidence
band, the requests per arm — and when the decision was reached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime

from analysis import judge, readings, specs, verdicts


@dataclasses.dataclass(frozen=True)
class Look:
    """The judge's word after one more interval."""

    index: int
    at: datetime | None  # the end of the interval
    summary: verdicts.AnalysisSummary
    canary_requests: float | None  # in this interval, from the first metric that counts requests
    baseline_requests: float | None

    def metric(self, name: str) -> verdicts.MetricResult | None:
        return next((m for m in self.summary.metrics if m.name == name), None)


@dataclasses.dataclass(frozen=True)
class Timeline:
    template: specs.AnalysisTemplateSpec
    looks: tuple[Look, ...]

    @property
    def decided(self) -> Look | None:
        """The first look with a verdict (Pass, Fail or Inconclusive), if any."""
        return next((look for look in self.looks if look.summary.verdict != verdicts.Verdict.RUNNING), None)

    def threshold(self, metric: str) -> float:
        """Evidence at or above 1/α fails the metric (Ville's inequality)."""
        spec = next(m for m in self.template.metrics if m.name == metric)
        return 1.0 / self.template.alpha_for(spec)


def replay(
    template: specs.AnalysisTemplateSpec,
    series: Mapping[str, Sequence[readings.IntervalSample]],
    *,
    final: bool = False,
    canary_due: int = 0,
) -> Timeline:
    """Judge every prefix of `series`; `final` marks the last look as the run's end (maxDuration)."""
    count = min((len(intervals) for intervals in series.values()), default=0)
    looks = []
    state = judge.start(template)
    for index in range(count):
        # One interval more per look, folded into the state as the controller does: the same
        # verdict as judging the prefix afresh, at the cost of the new interval.
        added = {name: tuple(intervals[index : index + 1]) for name, intervals in series.items()}
        state = judge.fold(template, added, state, canary_due=canary_due)
        last = index == count - 1
        summary = judge.conclude(template, state, final=final and last)
        canary, baseline = _requests(template, series, index)
        start = next(iter(series.values()))[index].start
        at = start + template.interval if start is not None else None
        looks.append(Look(index, at, summary, canary, baseline))
    return Timeline(template, tuple(looks))


def _requests(
    template: specs.AnalysisTemplateSpec,
    series: Mapping[str, Sequence[readings.IntervalSample]],
    index: int,
) -> tuple[float | None, float | None]:
    """Requests per arm in interval `index`: from a metric that counts both arms when there is one
    (an agreement metric counts the canary's comparisons only)."""
    found: tuple[float | None, float | None] = (None, None)
    for metric in template.metrics:
        sample = series[metric.name][index]
        canary, baseline = _served(sample.canary), _served(sample.baseline)
        if canary is not None and baseline is not None:
            return canary, baseline
        if found == (None, None):
            found = (canary, baseline)
    return found


def _served(arm: readings.ArmSample) -> float | None:
    """Requests in an interval: counted, or the +Inf bucket of a histogram, or all comparisons."""
    if arm.requests is not None:
        return arm.requests
    if arm.buckets is not None:
        return arm.buckets.get("+Inf")
    if arm.counts is not None:
        return sum(arm.counts.values())
    return None
