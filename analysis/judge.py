"""The judge: is the canary worse than the baseline by more than each metric's margin?

`assess` is pure: a template and what each metric showed per interval in, a verdict out.
It recomputes every e-process from the first interval, so the same data always gives the
same verdict and the caller keeps no state between looks (the controller may restart).

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

from analysis import confidence, evidence, observations, sequential, specs, verdicts

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
    series: Mapping[str, Sequence[observations.IntervalSample]],
    *,
    final: bool = False,
    canary_due: int = 0,
) -> verdicts.AnalysisSummary:
    """`canary_due`: the first interval in which the canary is due to report (the analysis run had
    started, so the canary was warm and had its traffic). Baseline traffic before it does not count
    toward "no canary data": a canary's series arrive late (pod start, service discovery, scrapes)."""
    judged: list[Judged] = []
    for metric in template.metrics:
        intervals = tuple(series.get(metric.name, ()))
        levels = Levels(alpha=template.alpha_for(metric), beta=template.beta)
        judged.extend(
            assess_metric(metric, levels, intervals, template.interval, canary_due=canary_due, final=final)
        )
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


def assess_metric(
    metric: specs.MetricSpec,
    levels: Levels,
    intervals: tuple[observations.IntervalSample, ...],
    interval: timedelta,
    *,
    canary_due: int = 0,
    final: bool = False,
) -> list[Judged]:
    """`final`: this look is at maxDuration, where the fixed-horizon pass test is read (once)."""
    match metric.kind:
        case specs.MetricKind.ERROR_RATE:
            return [_assess_error_rate(metric, levels, intervals, interval, canary_due, final)]
        case specs.MetricKind.LATENCY:
            return _assess_latency(metric, levels, intervals, interval, canary_due, final)
        case specs.MetricKind.GAUGE:
            return [_assess_gauge(metric, levels, intervals, interval, final)]
        case specs.MetricKind.DISTRIBUTION:
            return [_assess_distribution(metric, levels, intervals, interval, final)]
        case specs.MetricKind.AGREEMENT:
            return [_assess_agreement(metric, levels, intervals, interval, final)]


def _column(intervals: tuple[observations.IntervalSample, ...], arm: str, field: str) -> FloatArray:
    values = [getattr(getattr(i, arm), field) for i in intervals]
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def _both(a: FloatArray, b: FloatArray) -> FloatArray:
    """Zero out intervals where either arm has no data, so neither counts alone."""
    seen = np.isfinite(a) & np.isfinite(b)
    return np.where(seen, a, 0.0)


def _exposure(n_c: FloatArray, n_b: FloatArray, interval: timedelta, canary_due: int) -> Exposure:
    seen = np.isfinite(n_c) & np.isfinite(n_b)
    return Exposure(
        canary_requests=float(np.nansum(n_c)),
        baseline_requests=float(np.nansum(n_b)),
        observed=interval * int(seen.sum()),
        baseline_observed=interval * int(np.isfinite(n_b[canary_due:]).sum()),
    )


def _judge(
    metric: specs.MetricSpec,
    name: str,
    levels: Levels,
    found: evidence.Evidence,
    exposure: Exposure,
    values: tuple[float | None, float | None],
    ci: tuple[float | None, float | None],
    margin: float,
    effect: float | None = None,
    resolution: str | None = None,
    *,
    final: bool = False,
) -> Judged:
    alpha = found.threshold(levels.alpha)
    fail_peak = float(np.max(found.log_fail, initial=0.0))
    pass_log = float(found.log_pass[-1]) if found.log_pass.size else -math.inf
    needed = found.log_pass_needed(levels.alpha, levels.beta)
    power = 1.0 - math.exp(-max(pass_log, 0.0))
    power_needed = 1.0 - math.exp(-needed)
    z_needed = found.z_pass_needed(levels.alpha, levels.beta)
    z_now = float(found.final_z[-1]) if found.final_z is not None and found.final_z.size else -math.inf
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


def _ratio_ci(
    n_c: FloatArray,
    x_c: FloatArray,
    n_b: FloatArray,
    x_b: FloatArray,
    level: float,
    exponent: float = 1.0,
) -> tuple[float | None, float | None]:
    """Bounds on an effect g where the count ratio is (1 + g)^exponent (1 for rates).

    A time-uniform (asymptotic) confidence sequence on the log ratio of the pooled counts, with
    their measured dispersion (`confidence.log_ratio`); for latency `exponent` is the tail slope
    the test used, so the bounds describe the quantile it tested.
    """
    phi = sequential.dispersion(n_c, x_c, n_b, x_b)
    found = confidence.log_ratio(
        float(np.nansum(x_c)),
        float(np.nansum(n_c)),
        float(np.nansum(x_b)),
        float(np.nansum(n_b)),
        float(phi[-1]) if phi.size else 1.0,
        level,
    )
    if found is None:
        return None, None
    return math.expm1(found[0] / exponent), math.expm1(min(found[1] / exponent, 700.0))


def _assess_error_rate(
    metric: specs.MetricSpec,
    levels: Levels,
    intervals: tuple[observations.IntervalSample, ...],
    interval: timedelta,
    canary_due: int = 0,
    final: bool = False,
) -> Judged:
    n_c, n_b = _column(intervals, "canary", "requests"), _column(intervals, "baseline", "requests")
    x_c, x_b = _column(intervals, "canary", "errors"), _column(intervals, "baseline", "errors")
    nc, nb = _both(n_c, n_b), _both(n_b, n_c)
    xc, xb = _both(x_c, x_b), _both(x_b, x_c)
    found = evidence.rate(nc, xc, nb, xb, metric.margin.relative, metric.margin.absolute)
    values = (_ratio(xb, nb), _ratio(xc, nc))
    ci = _ratio_ci(nc, xc, nb, xb, levels.alpha / found.tests)
    return _judge(
        metric,
        metric.name,
        levels,
        found,
        _exposure(n_c, n_b, interval, canary_due),
        values,
        ci,
        metric.margin.relative,
        final=final,
    )


def _ratio(x: FloatArray, n: FloatArray) -> float | None:
    total = float(n.sum())
    return float(x.sum()) / total if total > 0 else None


def _histograms(
    intervals: tuple[observations.IntervalSample, ...], arm: str, metric: str
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(edges, cumulative counts per interval and finite edge, totals) for one arm."""
    edges: list[float] | None = None
    rows: list[list[float]] = []
    totals: list[float] = []
    for index, sample in enumerate(intervals):
        buckets = getattr(sample, arm).buckets
        if buckets is None:
            rows.append([])
            totals.append(math.nan)
            continue
        pairs = observations.bucket_edges(buckets)
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


def _assess_latency(
    metric: specs.MetricSpec,
    levels: Levels,
    intervals: tuple[observations.IntervalSample, ...],
    interval: timedelta,
    canary_due: int = 0,
    final: bool = False,
) -> list[Judged]:
    assert metric.latency is not None
    edges_c, cum_c, tot_c = _histograms(intervals, "canary", metric.name)
    edges_b, cum_b, tot_b = _histograms(intervals, "baseline", metric.name)
    if len(edges_c) and len(edges_b) and not np.array_equal(edges_c, edges_b):
        raise InputError(f"observations.{metric.name}: canary and baseline buckets have different edges")
    edges = edges_b if len(edges_b) else edges_c
    # An arm that never reported has no edges of its own: give it the other's, with no data.
    cum_c = cum_c if cum_c.shape[-1] == len(edges) else np.full((len(intervals), len(edges)), math.nan)
    cum_b = cum_b if cum_b.shape[-1] == len(edges) else np.full((len(intervals), len(edges)), math.nan)
    seen = np.isfinite(tot_c) & np.isfinite(tot_b)
    cum_c = np.where(seen[:, None], cum_c, 0.0)
    cum_b = np.where(seen[:, None], cum_b, 0.0)
    tc, tb = np.where(seen, tot_c, 0.0), np.where(seen, tot_b, 0.0)
    exposure = _exposure(tot_c, tot_b, interval, canary_due)
    slo = metric.latency.slo_seconds
    share = levels.split(len(metric.latency.quantiles) + (slo is not None))
    judged = []
    for q in metric.latency.quantiles:
        found = evidence.latency_quantile(cum_c, tc, cum_b, tb, edges, q, metric.margin.relative)
        values = (
            histogram_quantile(edges, cum_b.sum(axis=0), float(tb.sum()), q),
            histogram_quantile(edges, cum_c.sum(axis=0), float(tc.sum()), q),
        )
        effect, ci, resolution = _quantile_effect(
            cum_c, tc, cum_b, tb, edges, q, found, share.alpha, metric.margin.relative
        )
        name = specs.quantile_test_name(metric, q)
        judged.append(
            _judge(
                metric,
                name,
                share,
                found,
                exposure,
                values,
                ci,
                metric.margin.relative,
                effect,
                resolution,
                final=final,
            )
        )
    if slo is not None:
        edge = np.full(len(tc), evidence.slo_edge(edges, slo), dtype=np.int64)
        nc, xc = evidence.exceedances(cum_c, tc, edge)
        nb, xb = evidence.exceedances(cum_b, tb, edge)
        found = evidence.rate(nc, xc, nb, xb, metric.margin.relative, metric.margin.absolute)
        ci = _ratio_ci(nc, xc, nb, xb, share.alpha)
        name = specs.slo_name(metric.name, slo)
        judged.append(
            _judge(
                metric,
                name,
                share,
                found,
                exposure,
                (_ratio(xb, nb), _ratio(xc, nc)),
                ci,
                metric.margin.relative,
                final=final,
            )
        )
    return judged


def _quantile_effect(
    cum_c: FloatArray,
    tc: FloatArray,
    cum_b: FloatArray,
    tb: FloatArray,
    edges: FloatArray,
    q: float,
    found: evidence.Evidence,
    level: float,
    relative: float,
) -> tuple[float | None, tuple[float | None, float | None], str | None]:
    """The test's own estimate of the quantile's relative change, its bounds, and its resolution.

    Read from the exceedances at the tested edge: a ratio r of exceedance rates is a quantile
    change of r^(1/slope) − 1, the same conversion the test's null uses, so the estimate and
    the bounds describe what was tested rather than an interpolation between edges.
    """
    where = found.resolution
    if where is None or not (where.anchor >= 0).any():
        return None, (None, None), None
    n_c, x_c = evidence.exceedances(cum_c, tc, where.anchor)
    n_b, x_b = evidence.exceedances(cum_b, tb, where.anchor)
    slope = np.nan_to_num(where.slope, nan=evidence.DEFAULT_SLOPE)
    rates = _ratio(x_c, n_c), _ratio(x_b, n_b)
    last = int(np.flatnonzero(where.anchor >= 0)[-1])
    effect = None
    if rates[0] is not None and rates[1]:
        effect = float((rates[0] / rates[1]) ** (1 / slope[last]) - 1)
    ci = _ratio_ci(n_c, x_c, n_b, x_b, level, exponent=float(slope[last]))
    edge = float(edges[where.anchor[last]])
    spacing = _spacing(edges, int(where.anchor[last]))
    resolution = (
        f"p{q * 100:g} tested at le={edge:g}s, the first edge at or above the baseline's "
        f"(buckets {spacing:.3g}× apart there); tail slope {slope[last]:.2f}: "
        f"a {relative:.1%} higher quantile puts "
        f"×{(1 + relative) ** slope[last]:.3f} as many requests above it"
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
    metric: specs.MetricSpec, intervals: tuple[observations.IntervalSample, ...], arm: str
) -> FloatArray:
    value = _column(intervals, arm, "value")
    if metric.gauge is not None and metric.gauge.per_request:
        requests = _column(intervals, arm, "requests")
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(requests > 0, value / requests, np.nan)
    return value


def _assess_gauge(
    metric: specs.MetricSpec,
    levels: Levels,
    intervals: tuple[observations.IntervalSample, ...],
    interval: timedelta,
    final: bool = False,
) -> Judged:
    g_c, g_b = _gauge_values(metric, intervals, "canary"), _gauge_values(metric, intervals, "baseline")
    increase = metric.bad_direction == specs.BadDirection.INCREASE
    found = evidence.gauge(g_c, g_b, metric.margin.relative, metric.margin.absolute, increase)
    seen = np.isfinite(g_c) & np.isfinite(g_b)
    values = (
        float(g_b[seen].mean()) if seen.any() else None,
        float(g_c[seen].mean()) if seen.any() else None,
    )
    level = levels.alpha / found.tests
    with np.errstate(
        divide="ignore", invalid="ignore", over="ignore"
    ):  # overflow: an infinite ratio, dropped
        relative = np.where(g_b != 0, g_c / g_b - 1.0, np.nan)
    bounds = confidence.mean(relative, level)
    low, high = bounds if bounds is not None else (None, None)
    requests: tuple[float | None, float | None] = (None, None)
    if metric.gauge is not None and metric.gauge.per_request:
        requests = (
            float(np.nansum(_column(intervals, "canary", "requests"))),
            float(np.nansum(_column(intervals, "baseline", "requests"))),
        )
    exposure = Exposure(
        canary_requests=requests[0], baseline_requests=requests[1], observed=interval * int(seen.sum())
    )
    judged = _judge(
        metric, metric.name, levels, found, exposure, values, (low, high), metric.margin.relative, final=final
    )
    # A gauge has no request count: the canary is silent when it reported nothing for the minimum
    # duration while the baseline reported.
    silent = not np.isfinite(g_c).any() and interval * int(np.isfinite(g_b).sum()) >= metric.min_duration
    return dataclasses.replace(judged, canary_silent=bool(silent))


def _assess_distribution(
    metric: specs.MetricSpec,
    levels: Levels,
    intervals: tuple[observations.IntervalSample, ...],
    interval: timedelta,
    final: bool = False,
) -> Judged:
    classes = sorted({c for i in intervals for arm in (i.canary, i.baseline) for c in (arm.counts or {})})

    def table(arm: str) -> FloatArray:
        rows = []
        for sample in intervals:
            counts = getattr(sample, arm).counts
            rows.append(
                [math.nan] * len(classes) if counts is None else [float(counts.get(c, 0.0)) for c in classes]
            )
        return np.array(rows, dtype=np.float64).reshape(len(intervals), len(classes))

    raw_c, raw_b = table("canary"), table("baseline")
    seen = np.asarray(np.isfinite(raw_c).all(axis=-1) & np.isfinite(raw_b).all(axis=-1), dtype=bool)
    counts_c = np.where(seen[:, None], raw_c, 0.0)
    counts_b = np.where(seen[:, None], raw_b, 0.0)
    found = evidence.distribution(counts_c, counts_b, metric.margin.relative, metric.margin.absolute)
    n_c, n_b = counts_c.sum(axis=-1), counts_b.sum(axis=-1)
    exposure = Exposure(
        canary_requests=float(np.nansum(raw_c)),
        baseline_requests=float(np.nansum(raw_b)),
        observed=interval * int(seen.sum()),
    )
    values: tuple[float | None, float | None] = (None, None)
    ci: tuple[float | None, float | None] = (None, None)
    k = 0
    if classes and n_c.sum() > 0 and n_b.sum() > 0:
        share_c = counts_c.sum(axis=0) / n_c.sum()
        share_b = counts_b.sum(axis=0) / n_b.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.abs(np.log((share_c + 1e-12) / (share_b + 1e-12)))
        k = int(np.argmax(shift))
        values = (float(share_b[k]), float(share_c[k]))
        ci = _ratio_ci(n_c, counts_c[:, k], n_b, counts_b[:, k], levels.alpha / found.tests)
    judged = _judge(
        metric, metric.name, levels, found, exposure, values, ci, metric.margin.relative, final=final
    )
    if values[0] is None:
        return judged
    note = f"{judged.result.message}; values are the share of class {classes[k]!r}, the one that moved most"
    return dataclasses.replace(judged, result=judged.result.model_copy(update={"message": note}))


def _assess_agreement(
    metric: specs.MetricSpec,
    levels: Levels,
    intervals: tuple[observations.IntervalSample, ...],
    interval: timedelta,
    final: bool = False,
) -> Judged:
    """A shadow's share of compared requests whose prediction differs from stable's, against the
    absolute bound `margin.absolute`; only the canary's counts are read."""
    assert metric.agreement is not None
    disagree = metric.agreement.disagree
    counted = [i.canary.counts for i in intervals]
    n = np.array([math.nan if c is None else float(sum(c.values())) for c in counted], dtype=np.float64)
    x = np.array([math.nan if c is None else float(c.get(disagree, 0.0)) for c in counted], dtype=np.float64)
    bound = metric.margin.absolute
    found = evidence.agreement(n, x, bound)
    total, disagreed = float(np.nansum(n)), float(np.nansum(x))
    seen = np.isfinite(n)
    exposure = Exposure(canary_requests=total, baseline_requests=None, observed=interval * int(seen.sum()))
    share = disagreed / total if total > 0 else None
    judged = _judge(
        metric, metric.name, levels, found, exposure, (None, share), (None, None), bound, final=final
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
