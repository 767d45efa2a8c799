"""The judge: is the canary worse than the baseline by more than each metric's margin?

Pure, and a fold: `fold` adds intervals to a compact state per metric (`judgestate`), `conclude`
reads the verdict off it, and `assess` does both on a whole window. Folding a window in any pieces
gives exactly the state of folding it at once, so the controller keeps the state in status (never
in memory: it may restart), adds only the intervals that are new at each look, and reaches the
verdict a full recomputation reaches.

Rules, in order:
1. Fail as soon as a critical metric's evidence that the canary is worse by more than its
   margin has reached 1/α_i (α split over metrics by `alphaShare`, then over a metric's
   tests: valid under any dependence, and under any number of looks).
2. Pass when every critical metric has rejected "the canary is worse by the margin or more" at
   level max(β, α_i) — at any look by its pass e-process crossing 1/(0.3·level), or at `final`
   (maxDuration, looked at once) by the fixed-horizon test at 0.7·level — and each has seen
   `minRequests` per arm over `minDuration`; and some metric counted the canary's requests.
3. Inconclusive when the canary served nothing while the baseline had traffic for the
   minimum duration, or at `final` (maxDuration) — never a silent pass.
4. Otherwise Running.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from datetime import timedelta

import numpy as np
import numpy.typing as npt

from analysis import confidence, evidence, judgestate, readings, sequential, specs, verdicts

FloatArray = sequential.FloatArray


class InputError(ValueError):
    """Observations the judge cannot read; the message names the metric and interval."""


@dataclasses.dataclass(frozen=True)
class Judged:
    result: verdicts.MetricResult
    critical: bool
    canary_silent: bool  # the canary served nothing while the baseline had traffic


@dataclasses.dataclass(frozen=True)
class Exposure:
    canary_requests: float | None
    baseline_requests: float | None
    observed: timedelta  # intervals in which both arms reported
    # Intervals in which the baseline reported: a canary with no series at all is silent over these
    # (counting only intervals both arms reported, its silence would never add up to minDuration).
    baseline_observed: timedelta | None = None

    def enough(self, metric: specs.MetricSpec) -> bool:
        if self.observed < metric.min_duration:
            return False
        counts = (self.canary_requests, self.baseline_requests)
        return all(c is None or c >= metric.min_requests for c in counts)

    def canary_silent(self, metric: specs.MetricSpec) -> bool:
        over = self.baseline_observed if self.baseline_observed is not None else self.observed
        return not self.canary_requests and (self.baseline_requests or 0) > 0 and over >= metric.min_duration


@dataclasses.dataclass(frozen=True)
class Levels:
    """A metric's share of α (split further over its tests) and β (not split: see docs/analysis.md)."""

    alpha: float
    beta: float

    def split(self, tests: int) -> Levels:
        return Levels(alpha=self.alpha / tests, beta=self.beta)


def assess(
    template: specs.AnalysisTemplateSpec,
    series: Mapping[str, Sequence[readings.IntervalSample]],
    *,
    final: bool = False,
    canary_due: int = 0,
) -> verdicts.AnalysisSummary:
    """The verdict on the whole window: every interval folded from the first (`fold`), then
    concluded. `canary_due`: the first interval in which the canary is due to report (the analysis
    run had started, so the canary was warm and had its traffic). Baseline traffic before it does
    not count toward "no canary data": a canary's series arrive late (pod start, service discovery,
    scrapes)."""
    return conclude(template, fold(template, series, canary_due=canary_due), final=final)


@dataclasses.dataclass(frozen=True)
class JudgeState:
    """Per metric of the template (in its order), what the next look continues from."""

    metrics: tuple[judgestate.MetricState, ...]
    names: tuple[str, ...]

    @property
    def intervals(self) -> int:
        return min((m.intervals for m in self.metrics), default=0)

    def record(self, basis: str) -> verdicts.EvidenceRecord:
        """The packed form kept in the analysis record of `.status`."""
        return verdicts.EvidenceRecord(
            basis=basis,
            intervals=self.intervals,
            metrics=tuple(
                judgestate.pack(name, state) for name, state in zip(self.names, self.metrics, strict=True)
            ),
        )


def start(template: specs.AnalysisTemplateSpec) -> JudgeState:
    """The state before any interval."""
    return JudgeState(tuple(judgestate.initial(m) for m in template.metrics), _names(template))


def resume(
    template: specs.AnalysisTemplateSpec, record: verdicts.EvidenceRecord | None, basis: str
) -> JudgeState | None:
    """The state a record holds, when it belongs to `basis` and fits the template; else None (the
    window is read afresh)."""
    if record is None or record.basis != basis:
        return None
    packed = {m.name: m for m in record.metrics}
    if set(packed) != {m.name for m in template.metrics}:
        return None
    try:
        states = tuple(judgestate.unpack(m, packed[m.name]) for m in template.metrics)
    except judgestate.StateError:
        return None
    if any(s.intervals != record.intervals for s in states):
        return None
    return JudgeState(states, _names(template))


def _names(template: specs.AnalysisTemplateSpec) -> tuple[str, ...]:
    return tuple(m.name for m in template.metrics)


def fold(
    template: specs.AnalysisTemplateSpec,
    series: Mapping[str, Sequence[readings.IntervalSample]],
    state: JudgeState | None = None,
    *,
    canary_due: int = 0,
) -> JudgeState:
    """`state` (None: none yet) with the intervals of `series` that follow it added, per metric.

    Folding a window in any number of pieces gives exactly the state of folding it at once: every
    running sum is sequential (`sequential.running`), so a look costs what its new intervals cost.
    """
    was = state or start(template)
    folded = []
    for metric, before in zip(template.metrics, was.metrics, strict=True):
        intervals = tuple(series.get(metric.name, ()))
        folded.append(_fold_metric(metric, before, intervals, template.interval, canary_due))
    return JudgeState(tuple(folded), _names(template))


def conclude(
    template: specs.AnalysisTemplateSpec, state: JudgeState, *, final: bool = False
) -> verdicts.AnalysisSummary:
    """The verdict on what `state` has folded; `final`: this look is at maxDuration, where the
    fixed-horizon pass test is read (once)."""
    judged: list[Judged] = []
    for metric, metric_state in zip(template.metrics, state.metrics, strict=True):
        levels = Levels(alpha=template.alpha_for(metric), beta=template.beta)
        judged.extend(_conclude_metric(metric, levels, metric_state, template.interval, final))
    return decide(template, judged, final=final)


def decide(
    template: specs.AnalysisTemplateSpec, judged: Sequence[Judged], *, final: bool
) -> verdicts.AnalysisSummary:
    results = tuple(j.result for j in judged)
    deciding = [j for j in judged if j.critical] or list(judged)

    def summary(verdict: verdicts.Verdict, rule: str) -> verdicts.AnalysisSummary:
        return verdicts.AnalysisSummary(verdict=verdict, rule=rule, alpha=template.alpha, metrics=results)

    failed = [j.result for j in deciding if j.result.verdict == verdicts.Verdict.FAIL]
    if failed:
        first = failed[0]
        return summary(
            verdicts.Verdict.FAIL,
            f"{first.name}: evidence {first.evidence:.3g} ≥ 1/α = {1 / (first.alpha or 1):.3g}; "
            f"canary worse than baseline by more than its margin ({_effect_text(first)})",
        )
    served = any((j.result.canary_requests or 0) > 0 for j in judged)
    if all(j.result.verdict == verdicts.Verdict.PASS for j in deciding) and served:
        return summary(
            verdicts.Verdict.PASS,
            "every critical metric is inside its margin at its confidence bound, with enough traffic",
        )
    silent = [j.result.name for j in deciding if j.canary_silent]
    if silent:
        return summary(
            verdicts.Verdict.INCONCLUSIVE,
            f"no canary data for {', '.join(silent)} while the baseline had traffic: never a pass",
        )
    undecided = [j.result.name for j in deciding if j.result.verdict != verdicts.Verdict.PASS]
    if not served and not undecided:
        reason = (
            "no metric counts the canary's requests, so nothing shows it served: never a pass "
            "(add an errorRate or latency metric, or a gauge with perRequest and a requests query)"
        )
        verdict = verdicts.Verdict.INCONCLUSIVE if final else verdicts.Verdict.RUNNING
        return summary(verdict, reason)
    if final:
        return summary(
            verdicts.Verdict.INCONCLUSIVE,
            f"maxDuration reached with {', '.join(undecided)} undecided: neither a pass nor a rollback",
        )
    return summary(verdicts.Verdict.RUNNING, f"collecting evidence on {', '.join(undecided)}")


def _effect_text(result: verdicts.MetricResult) -> str:
    if result.effect is None:
        return "effect unknown"
    text = f"effect {result.effect:+.1%}"
    if result.ci_low is not None or result.ci_high is not None:
        low = "-∞" if result.ci_low is None else f"{result.ci_low:+.1%}"
        high = "+∞" if result.ci_high is None else f"{result.ci_high:+.1%}"
        text += f", CI [{low}, {high}]"
    return text


def _fold_metric(
    metric: specs.MetricSpec,
    state: judgestate.MetricState,
    intervals: tuple[readings.IntervalSample, ...],
    interval: timedelta,
    canary_due: int,
) -> judgestate.MetricState:
    match state:
        case judgestate.ErrorRateState():
            return _fold_error_rate(metric, state, intervals, canary_due)
        case judgestate.LatencyState():
            return _fold_latency(metric, state, intervals, canary_due)
        case judgestate.GaugeState():
            return _fold_gauge(metric, state, intervals)
        case judgestate.DistributionState():
            return _fold_distribution(metric, state, intervals)
        case judgestate.AgreementState():
            return _fold_agreement(metric, state, intervals)


def _conclude_metric(
    metric: specs.MetricSpec,
    levels: Levels,
    state: judgestate.MetricState,
    interval: timedelta,
    final: bool,
) -> list[Judged]:
    match state:
        case judgestate.ErrorRateState():
            return [_conclude_error_rate(metric, levels, state, interval, final)]
        case judgestate.LatencyState():
            return _conclude_latency(metric, levels, state, interval, final)
        case judgestate.GaugeState():
            return [_conclude_gauge(metric, levels, state, interval, final)]
        case judgestate.DistributionState():
            return [_conclude_distribution(metric, levels, state, interval, final)]
        case judgestate.AgreementState():
            return [_conclude_agreement(metric, levels, state, interval, final)]


def _column(intervals: tuple[readings.IntervalSample, ...], arm: str, field: str) -> FloatArray:
    values = [getattr(getattr(i, arm), field) for i in intervals]
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def _both(a: FloatArray, b: FloatArray) -> FloatArray:
    """Zero out intervals where either arm has no data, so neither counts alone."""
    seen = np.isfinite(a) & np.isfinite(b)
    return np.where(seen, a, 0.0)


def _nan_free(values: FloatArray) -> FloatArray:
    return np.where(np.isnan(values), 0.0, values)


def _total(values: npt.ArrayLike, before: FloatArray) -> FloatArray:
    """`before` plus the values, added one at a time (so the total does not depend on the pieces)."""
    return sequential.last(sequential.running(np.asarray(values, dtype=np.float64), before), before)


def _add_exposure(
    was: judgestate.ExposureState, n_c: FloatArray, n_b: FloatArray, begin: int, canary_due: int
) -> judgestate.ExposureState:
    seen = np.isfinite(n_c) & np.isfinite(n_b)
    due = begin + np.arange(len(n_b)) >= canary_due
    return judgestate.ExposureState(
        canary=_total(_nan_free(n_c), was.canary),
        baseline=_total(_nan_free(n_b), was.baseline),
        observed=_total(seen, was.observed),
        baseline_observed=_total(np.isfinite(n_b) & due, was.baseline_observed),
    )


def _exposure(state: judgestate.ExposureState, interval: timedelta) -> Exposure:
    return Exposure(
        canary_requests=float(state.canary),
        baseline_requests=float(state.baseline),
        observed=interval * int(state.observed),
        baseline_observed=interval * int(state.baseline_observed),
    )


def _judge(
    metric: specs.MetricSpec,
    name: str,
    levels: Levels,
    state: evidence.EvidenceState,
    tests: int,
    exposure: Exposure,
    values: tuple[float | None, float | None],
    ci: tuple[float | None, float | None],
    margin: float,
    effect: float | None = None,
    resolution: str | None = None,
    *,
    final: bool = False,
) -> Judged:
    alpha = levels.alpha / tests
    level = max(alpha, levels.beta)
    fail_peak = evidence.fail_peak(state)
    pass_log = evidence.pass_now(state)
    needed = evidence.anytime_pass_threshold(level)
    power = 1.0 - math.exp(-max(pass_log, 0.0))
    power_needed = 1.0 - math.exp(-needed)
    z_needed = evidence.horizon_pass_z(level)
    z_now = evidence.z_now(state)
    at_horizon = final and z_now >= z_needed
    passed = pass_log >= needed or at_horizon
    if fail_peak >= math.log(1 / alpha):
        verdict, message = verdicts.Verdict.FAIL, "evidence crossed 1/α: worse than the margin"
    elif passed and exposure.enough(metric):
        verdict, message = (
            verdicts.Verdict.PASS,
            (
                f"power {power:.0%} ≥ {power_needed:.0%}: inside the margin, whenever it is looked at"
                if pass_log >= needed
                else f"fixed-horizon test at maxDuration: z {z_now:.2f} ≥ {z_needed:.2f}, inside the margin "
                f"at level {1 - statistics.NormalDist().cdf(z_needed):.1%}"
            ),
        )
    elif passed:
        verdict, message = verdicts.Verdict.RUNNING, "inside the margin; waiting for minRequests/minDuration"
    else:
        verdict, message = (
            verdicts.Verdict.RUNNING,
            f"collecting evidence: power {power:.0%} of the {power_needed:.0%} needed to pass early "
            f"(at maxDuration a fixed-horizon test passes at z ≥ {z_needed:.2f}; "
            f"now {max(z_now, -99.0):.2f}), "
            f"fail evidence {math.exp(min(fail_peak, 700.0)):.3g} of the {1 / alpha:.3g} needed to fail",
        )
    baseline, canary = values
    if effect is None:
        effect = canary / baseline - 1 if canary is not None and baseline else None
    result = verdicts.MetricResult(
        name=name,
        verdict=verdict,
        baseline=baseline,
        canary=canary,
        effect=effect,
        ci_low=_contain(ci[0], effect, low=True),
        ci_high=_contain(ci[1], effect, low=False),
        evidence=math.exp(min(fail_peak, 700.0)),
        alpha=alpha,
        power=power,
        margin=margin,
        baseline_requests=None if exposure.baseline_requests is None else int(exposure.baseline_requests),
        canary_requests=None if exposure.canary_requests is None else int(exposure.canary_requests),
        resolution=resolution,
        message=message,
    )
    return Judged(result=result, critical=metric.critical, canary_silent=exposure.canary_silent(metric))


def _contain(bound: float | None, effect: float | None, *, low: bool) -> float | None:
    """A confidence bound widened to its estimate where grid steps or tempering left it outside."""
    if bound is None or effect is None:
        return bound
    return min(bound, effect) if low else max(bound, effect)


def _latest_dispersion(state: evidence.EvidenceState, test: int = 0) -> float:
    dispersed = state.tests[test].dispersion
    return 1.0 if dispersed is None else float(dispersed.latest)


def _ratio_ci(
    pooled: judgestate.Pooled, dispersion: float, level: float, exponent: float = 1.0
) -> tuple[float | None, float | None]:
    """Bounds on an effect g where the count ratio is (1 + g)^exponent (1 for rates).

    A time-uniform (asymptotic) confidence sequence on the log ratio of the pooled counts, with
    their measured dispersion (`confidence.log_ratio`); for latency `exponent` is the tail slope
    the test used, so the bounds describe the quantile it tested.
    """
    found = confidence.log_ratio(
        float(pooled.x_c), float(pooled.n_c), float(pooled.x_b), float(pooled.n_b), dispersion, level
    )
    if found is None:
        return None, None
    return math.expm1(found[0] / exponent), math.expm1(min(found[1] / exponent, 700.0))


def _share(x: FloatArray, n: FloatArray) -> float | None:
    return float(x) / float(n) if float(n) > 0 else None


def _fold_error_rate(
    metric: specs.MetricSpec,
    was: judgestate.ErrorRateState,
    intervals: tuple[readings.IntervalSample, ...],
    canary_due: int,
) -> judgestate.ErrorRateState:
    n_c, n_b = _column(intervals, "canary", "requests"), _column(intervals, "baseline", "requests")
    x_c, x_b = _column(intervals, "canary", "errors"), _column(intervals, "baseline", "errors")
    nc, nb = _both(n_c, n_b), _both(n_b, n_c)
    xc, xb = _both(x_c, x_b), _both(x_b, x_c)
    found = evidence.rate(nc, xc, nb, xb, metric.margin.relative, metric.margin.absolute, was.test.evidence)
    return judgestate.ErrorRateState(
        intervals=was.intervals + len(intervals),
        test=judgestate.CountState(found.state, was.test.pooled.add(xc, nc, xb, nb)),
        exposure=_add_exposure(was.exposure, n_c, n_b, was.intervals, canary_due),
    )


def _conclude_error_rate(
    metric: specs.MetricSpec,
    levels: Levels,
    state: judgestate.ErrorRateState,
    interval: timedelta,
    final: bool,
) -> Judged:
    pooled, tested = state.test.pooled, state.test.evidence
    return _judge(
        metric,
        metric.name,
        levels,
        tested,
        1,
        _exposure(state.exposure, interval),
        (_share(pooled.x_b, pooled.n_b), _share(pooled.x_c, pooled.n_c)),
        _ratio_ci(pooled, _latest_dispersion(tested), levels.alpha),
        metric.margin.relative,
        final=final,
    )


def _histograms(
    intervals: tuple[readings.IntervalSample, ...], arm: str, metric: str, known: FloatArray, begin: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(edges, cumulative counts per interval and finite edge, totals) for one arm; `known`: the
    edges of earlier intervals (empty before any), `begin`: the index of the first of these."""
    edges: list[float] | None = known.tolist() if len(known) else None
    rows: list[list[float]] = []
    totals: list[float] = []
    for index, sample in enumerate(intervals, start=begin):
        buckets = getattr(sample, arm).buckets
        if buckets is None:
            rows.append([])
            totals.append(math.nan)
            continue
        pairs = readings.bucket_edges(buckets)
        these = [edge for edge, _ in pairs[:-1]]
        if edges is None:
            edges = these
        elif these != edges:
            raise InputError(
                f"observations.{metric}[{index}].{arm}.buckets: edges differ from earlier intervals"
            )
        rows.append([count for _, count in pairs[:-1]])
        totals.append(pairs[-1][1])
    finite = np.array(edges or [], dtype=np.float64)
    cum = np.array([row if row else [math.nan] * len(finite) for row in rows], dtype=np.float64).reshape(
        len(intervals), len(finite)
    )
    return finite, cum, np.array(totals, dtype=np.float64)


def histogram_quantile(edges: FloatArray, cum: FloatArray, total: float, quantile: float) -> float | None:
    """Prometheus' histogram_quantile on pooled counts: linear inside the bucket."""
    if total <= 0 or not len(edges):
        return None
    rank = quantile * total
    index = int(np.searchsorted(cum, rank, side="left"))
    if index >= len(edges):
        return float(edges[-1])
    lower_edge = edges[index - 1] if index > 0 else 0.0
    lower_count = cum[index - 1] if index > 0 else 0.0
    inside = cum[index] - lower_count
    if inside <= 0:
        return float(edges[index])
    return float(lower_edge + (edges[index] - lower_edge) * (rank - lower_count) / inside)


def _fold_latency(
    metric: specs.MetricSpec,
    was: judgestate.LatencyState,
    intervals: tuple[readings.IntervalSample, ...],
    canary_due: int,
) -> judgestate.LatencyState:
    assert metric.latency is not None
    edges_c, cum_c, tot_c = _histograms(intervals, "canary", metric.name, was.edges, was.intervals)
    edges_b, cum_b, tot_b = _histograms(intervals, "baseline", metric.name, was.edges, was.intervals)
    if len(edges_c) and len(edges_b) and not np.array_equal(edges_c, edges_b):
        raise InputError(f"observations.{metric.name}: canary and baseline buckets have different edges")
    edges = edges_b if len(edges_b) else edges_c
    if len(edges) != len(was.edges):  # the first histogram: nothing was pooled before it
        was = dataclasses.replace(
            was,
            edges=edges,
            canary=evidence.HistogramState.initial(len(edges)),
            baseline=evidence.HistogramState.initial(len(edges)),
        )
    count = len(intervals)
    # An arm that never reported has no edges of its own: give it the other's, with no data.
    cum_c = cum_c if cum_c.shape[-1] == len(edges) else np.full((count, len(edges)), math.nan)
    cum_b = cum_b if cum_b.shape[-1] == len(edges) else np.full((count, len(edges)), math.nan)
    seen = np.isfinite(tot_c) & np.isfinite(tot_b)
    cum_c = np.where(seen[:, None], cum_c, 0.0)
    cum_b = np.where(seen[:, None], cum_b, 0.0)
    tc, tb = np.where(seen, tot_c, 0.0), np.where(seen, tot_b, 0.0)
    relative = metric.margin.relative
    quantiles = []
    for q, tested in zip(metric.latency.quantiles, was.quantiles, strict=True):
        found = evidence.latency_quantile(
            cum_c, tc, cum_b, tb, edges, q, relative, tested.evidence, baseline_before=was.baseline
        )
        assert found.resolution is not None
        anchor = found.resolution.anchor
        n_c, x_c = evidence.exceedances(cum_c, tc, anchor)
        n_b, x_b = evidence.exceedances(cum_b, tb, anchor)
        last_anchor, last_slope = tested.anchor, tested.slope
        if (anchor >= 0).any():
            where = int(np.flatnonzero(anchor >= 0)[-1])
            last_anchor = np.asarray(float(anchor[where]))
            last_slope = np.asarray(np.nan_to_num(found.resolution.slope, nan=evidence.DEFAULT_SLOPE)[where])
        pooled = tested.pooled.add(x_c, n_c, x_b, n_b)
        quantiles.append(judgestate.QuantileState(found.state, pooled, last_anchor, last_slope))
    slo_state = was.slo
    if metric.latency.slo_seconds is not None and was.slo is not None:
        edge = np.full(count, evidence.slo_edge(edges, metric.latency.slo_seconds), dtype=np.int64)
        nc, xc = evidence.exceedances(cum_c, tc, edge)
        nb, xb = evidence.exceedances(cum_b, tb, edge)
        found = evidence.rate(nc, xc, nb, xb, relative, metric.margin.absolute, was.slo.evidence)
        slo_state = judgestate.CountState(found.state, was.slo.pooled.add(xc, nc, xb, nb))
    return judgestate.LatencyState(
        intervals=was.intervals + count,
        edges=edges,
        canary=evidence.pooled_before(cum_c, tc, was.canary)[2],
        baseline=evidence.pooled_before(cum_b, tb, was.baseline)[2],
        exposure=_add_exposure(was.exposure, tot_c, tot_b, was.intervals, canary_due),
        quantiles=tuple(quantiles),
        slo=slo_state,
    )


def _conclude_latency(
    metric: specs.MetricSpec,
    levels: Levels,
    state: judgestate.LatencyState,
    interval: timedelta,
    final: bool,
) -> list[Judged]:
    assert metric.latency is not None
    exposure = _exposure(state.exposure, interval)
    slo = metric.latency.slo_seconds
    share = levels.split(len(metric.latency.quantiles) + (slo is not None))
    relative = metric.margin.relative
    judged = []
    for q, tested in zip(metric.latency.quantiles, state.quantiles, strict=True):
        values = (
            histogram_quantile(state.edges, state.baseline.cum, float(state.baseline.total), q),
            histogram_quantile(state.edges, state.canary.cum, float(state.canary.total), q),
        )
        effect, ci, resolution = _quantile_effect(state.edges, q, tested, share.alpha, relative)
        name = specs.quantile_test_name(metric, q)
        judged.append(
            _judge(
                metric,
                name,
                share,
                tested.evidence,
                1,
                exposure,
                values,
                ci,
                relative,
                effect,
                resolution,
                final=final,
            )
        )
    if slo is not None and state.slo is not None:
        pooled = state.slo.pooled
        judged.append(
            _judge(
                metric,
                specs.slo_name(metric.name, slo),
                share,
                state.slo.evidence,
                1,
                exposure,
                (_share(pooled.x_b, pooled.n_b), _share(pooled.x_c, pooled.n_c)),
                _ratio_ci(pooled, _latest_dispersion(state.slo.evidence), share.alpha),
                relative,
                final=final,
            )
        )
    return judged


def _quantile_effect(
    edges: FloatArray, q: float, tested: judgestate.QuantileState, level: float, relative: float
) -> tuple[float | None, tuple[float | None, float | None], str | None]:
    """The test's own estimate of the quantile's relative change, its bounds, and its resolution.

    Read from the exceedances at the tested edges: a ratio r of exceedance rates is a quantile
    change of r^(1/slope) − 1, the same conversion the test's null uses, so the estimate and
    the bounds describe what was tested rather than an interpolation between edges.
    """
    anchor = int(tested.anchor)
    if anchor < 0:
        return None, (None, None), None
    pooled, slope = tested.pooled, float(tested.slope)
    rates = _share(pooled.x_c, pooled.n_c), _share(pooled.x_b, pooled.n_b)
    effect = None
    if rates[0] is not None and rates[1]:
        effect = float((rates[0] / rates[1]) ** (1 / slope) - 1)
    ci = _ratio_ci(pooled, _latest_dispersion(tested.evidence), level, exponent=slope)
    spacing = _spacing(edges, anchor)
    resolution = (
        f"p{q * 100:g} tested at le={float(edges[anchor]):g}s, the first edge at or above the baseline's "
        f"(buckets {spacing:.3g}× apart there); tail slope {slope:.2f}: "
        f"a {relative:.1%} higher quantile puts "
        f"×{(1 + relative) ** slope:.3f} as many requests above it"
    )
    return effect, ci, resolution


def _spacing(edges: FloatArray, index: int) -> float:
    """Ratio between the tested edge and its nearest neighbour (the bucket resolution there)."""
    ratios = []
    if index > 0:
        ratios.append(edges[index] / edges[index - 1])
    if index + 1 < len(edges):
        ratios.append(edges[index + 1] / edges[index])
    return float(min(ratios)) if ratios else math.nan


def _gauge_values(
    metric: specs.MetricSpec, intervals: tuple[readings.IntervalSample, ...], arm: str
) -> FloatArray:
    value = _column(intervals, arm, "value")
    if metric.gauge is not None and metric.gauge.per_request:
        requests = _column(intervals, arm, "requests")
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(requests > 0, value / requests, np.nan)
    return value


def _fold_gauge(
    metric: specs.MetricSpec, was: judgestate.GaugeState, intervals: tuple[readings.IntervalSample, ...]
) -> judgestate.GaugeState:
    g_c, g_b = _gauge_values(metric, intervals, "canary"), _gauge_values(metric, intervals, "baseline")
    increase = metric.bad_direction == specs.BadDirection.INCREASE
    found = evidence.gauge(g_c, g_b, metric.margin.relative, metric.margin.absolute, increase, was.evidence)
    seen = np.isfinite(g_c) & np.isfinite(g_b)
    with np.errstate(
        divide="ignore", invalid="ignore", over="ignore"
    ):  # overflow: an infinite ratio, dropped
        relative = np.where(g_b != 0, g_c / g_b - 1.0, np.nan)
    canary_requests, baseline_requests = was.canary_requests, was.baseline_requests
    if metric.gauge is not None and metric.gauge.per_request:
        canary_requests = _total(_nan_free(_column(intervals, "canary", "requests")), canary_requests)
        baseline_requests = _total(_nan_free(_column(intervals, "baseline", "requests")), baseline_requests)
    with np.errstate(over="ignore", invalid="ignore"):  # values near the float range's ends
        canary_sum = _total(np.where(seen, g_c, 0.0), was.canary_sum)
        baseline_sum = _total(np.where(seen, g_b, 0.0), was.baseline_sum)
    return judgestate.GaugeState(
        intervals=was.intervals + len(intervals),
        evidence=found.state,
        canary_sum=canary_sum,
        baseline_sum=baseline_sum,
        both=_total(seen, was.both),
        relative=was.relative.add(relative),
        canary_requests=canary_requests,
        baseline_requests=baseline_requests,
        canary_seen=_total(np.isfinite(g_c), was.canary_seen),
        baseline_seen=_total(np.isfinite(g_b), was.baseline_seen),
    )


def _conclude_gauge(
    metric: specs.MetricSpec,
    levels: Levels,
    state: judgestate.GaugeState,
    interval: timedelta,
    final: bool,
) -> Judged:
    both = float(state.both)
    values = (
        float(state.baseline_sum) / both if both else None,
        float(state.canary_sum) / both if both else None,
    )
    bounds = confidence.mean(state.relative, levels.alpha)
    low, high = bounds if bounds is not None else (None, None)
    requests: tuple[float | None, float | None] = (None, None)
    if metric.gauge is not None and metric.gauge.per_request:
        requests = (float(state.canary_requests), float(state.baseline_requests))
    exposure = Exposure(
        canary_requests=requests[0], baseline_requests=requests[1], observed=interval * int(both)
    )
    judged = _judge(
        metric,
        metric.name,
        levels,
        state.evidence,
        1,
        exposure,
        values,
        (low, high),
        metric.margin.relative,
        final=final,
    )
    # A gauge has no request count: the canary is silent when it reported nothing for the minimum
    # duration while the baseline reported.
    silent = not state.canary_seen and interval * int(state.baseline_seen) >= metric.min_duration
    return dataclasses.replace(judged, canary_silent=bool(silent))


def _with_classes(
    metric: specs.MetricSpec, was: judgestate.DistributionState, classes: tuple[str, ...]
) -> judgestate.DistributionState:
    """The state with classes first seen now added: as if they had been counted 0 in every earlier
    interval (what a look over the whole window does), so the tests continue bit for bit."""
    zeros = np.zeros((was.intervals, 1))
    unseen = evidence.distribution(zeros, zeros, metric.margin.relative, metric.margin.absolute).state
    # The baseline's requests count toward every class's rate, whether the class was seen or not.
    unseen_rate = evidence.RateState(x=unseen.baselines[0].x, n=was.baseline_total)
    tests: list[evidence.TestState] = []
    rates: list[evidence.RateState] = []
    counts: list[float] = []
    for name in classes:
        if name in was.classes:
            k = was.classes.index(name)
            tests.extend(was.evidence.tests[2 * k : 2 * k + 2])
            rates.append(was.evidence.baselines[k])
            counts.append(float(was.canary_counts[k]))
        else:
            tests.extend(unseen.tests)
            rates.append(unseen_rate)
            counts.append(0.0)
    return dataclasses.replace(
        was,
        classes=classes,
        evidence=evidence.EvidenceState(tests=tuple(tests), baselines=tuple(rates)),
        canary_counts=np.array(counts, dtype=np.float64),
    )


def _fold_distribution(
    metric: specs.MetricSpec,
    was: judgestate.DistributionState,
    intervals: tuple[readings.IntervalSample, ...],
) -> judgestate.DistributionState:
    named = {c for i in intervals for arm in (i.canary, i.baseline) for c in (arm.counts or {})}
    classes = tuple(sorted(set(was.classes) | named))
    if classes != was.classes:
        was = _with_classes(metric, was, classes)

    def table(arm: str) -> FloatArray:
        rows = []
        for sample in intervals:
            counts = getattr(sample, arm).counts
            rows.append(
                [math.nan] * len(classes) if counts is None else [float(counts.get(c, 0.0)) for c in classes]
            )
        return np.array(rows, dtype=np.float64).reshape(len(intervals), len(classes))

    raw_c, raw_b = table("canary"), table("baseline")
    # Both arms reported their counts (an interval either left out is no comparison).
    seen = np.array(
        [i.canary.counts is not None and i.baseline.counts is not None for i in intervals], dtype=bool
    )
    counts_c = np.where(seen[:, None], raw_c, 0.0)
    counts_b = np.where(seen[:, None], raw_b, 0.0)
    found = evidence.distribution(
        counts_c, counts_b, metric.margin.relative, metric.margin.absolute, was.evidence
    )
    by_class = sequential.running(counts_c.T, was.canary_counts)
    return judgestate.DistributionState(
        intervals=was.intervals + len(intervals),
        classes=classes,
        evidence=found.state,
        canary_counts=sequential.last(by_class, was.canary_counts),
        canary_total=_total(evidence.row_totals(counts_c), was.canary_total),
        baseline_total=_total(evidence.row_totals(counts_b), was.baseline_total),
        canary_reported=_total(evidence.row_totals(_nan_free(raw_c)), was.canary_reported),
        baseline_reported=_total(evidence.row_totals(_nan_free(raw_b)), was.baseline_reported),
        observed=_total(seen, was.observed),
    )


def _conclude_distribution(
    metric: specs.MetricSpec,
    levels: Levels,
    state: judgestate.DistributionState,
    interval: timedelta,
    final: bool,
) -> Judged:
    classes = state.classes
    tests = 2 * len(classes) if classes else 1
    exposure = Exposure(
        canary_requests=float(state.canary_reported),
        baseline_requests=float(state.baseline_reported),
        observed=interval * int(state.observed),
    )
    values: tuple[float | None, float | None] = (None, None)
    ci: tuple[float | None, float | None] = (None, None)
    k = 0
    n_c, n_b = float(state.canary_total), float(state.baseline_total)
    if classes and n_c > 0 and n_b > 0:
        share_c = state.canary_counts / n_c
        share_b = np.array([float(rate.x) for rate in state.evidence.baselines]) / n_b
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.abs(np.log((share_c + 1e-12) / (share_b + 1e-12)))
        k = int(np.argmax(shift))
        values = (float(share_b[k]), float(share_c[k]))
        pooled = judgestate.Pooled(
            x_c=state.canary_counts[k],
            n_c=state.canary_total,
            x_b=state.evidence.baselines[k].x,
            n_b=state.baseline_total,
        )
        ci = _ratio_ci(pooled, _latest_dispersion(state.evidence, 2 * k), levels.alpha / tests)
    judged = _judge(
        metric,
        metric.name,
        levels,
        state.evidence,
        tests,
        exposure,
        values,
        ci,
        metric.margin.relative,
        final=final,
    )
    if values[0] is None:
        return judged
    note = f"{judged.result.message}; values are the share of class {classes[k]!r}, the one that moved most"
    return dataclasses.replace(judged, result=judged.result.model_copy(update={"message": note}))


def _fold_agreement(
    metric: specs.MetricSpec,
    was: judgestate.AgreementState,
    intervals: tuple[readings.IntervalSample, ...],
) -> judgestate.AgreementState:
    """A shadow's share of compared requests whose prediction differs from stable's; only the
    canary's counts are read."""
    assert metric.agreement is not None
    disagree = metric.agreement.disagree
    counted = [i.canary.counts for i in intervals]
    n = np.array([math.nan if c is None else float(sum(c.values())) for c in counted], dtype=np.float64)
    x = np.array([math.nan if c is None else float(c.get(disagree, 0.0)) for c in counted], dtype=np.float64)
    found = evidence.agreement(n, x, metric.margin.absolute, was.evidence)
    return judgestate.AgreementState(
        intervals=was.intervals + len(intervals),
        evidence=found.state,
        compared=_total(_nan_free(n), was.compared),
        disagreed=_total(_nan_free(x), was.disagreed),
        observed=_total(np.isfinite(n), was.observed),
    )


def _conclude_agreement(
    metric: specs.MetricSpec,
    levels: Levels,
    state: judgestate.AgreementState,
    interval: timedelta,
    final: bool,
) -> Judged:
    """Against the absolute bound `margin.absolute`: no baseline to compare with."""
    bound = metric.margin.absolute
    total, disagreed = float(state.compared), float(state.disagreed)
    exposure = Exposure(
        canary_requests=total, baseline_requests=None, observed=interval * int(state.observed)
    )
    share = disagreed / total if total > 0 else None
    judged = _judge(
        metric,
        metric.name,
        levels,
        state.evidence,
        1,
        exposure,
        (None, share),
        (None, None),
        bound,
        final=final,
    )
    said = (
        "no comparison yet"
        if share is None
        else f"disagrees on {share:.2%} of {total:,.0f} compared requests"
    )
    note = f"{judged.result.message}; {said} (bound {bound:.2%})"
    silent = total == 0 and exposure.observed >= metric.min_duration
    return dataclasses.replace(
        judged, result=judged.result.model_copy(update={"message": note}), canary_silent=silent
    )
