"""The judge: is the canary worse than the baseline by more than each metric's margin?

`assess` is pure: a template and what each metric showed per interval in, a verdict out.
It recomputes every e-process from the first interval, so the same data always gives the
same verdict and the caller keeps no state between looks (the controller may restart).

Rules, in order:
1. Fail as soon as a critical metric's evidence that the canary is worse by more than its
   margin has reached 1/α_i (α split over metrics by `alphaShare`, then over a metric's
   tests: valid under any dependence, and under any number of looks).
2. Pass when every critical metric's confidence bound is inside its margin (its pass
   e-process crossed) and each has seen `minRequests` per arm over `minDuration`.
3. Inconclusive when the canary served nothing while the baseline had traffic for the
   minimum duration, or at `final` (maxDuration) — never a silent pass.
4. Otherwise Running.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import timedelta

import numpy as np

from analysis import evidence, observations, sequential, specs, verdicts

FloatArray = sequential.FloatArray
RATIO_GRID = np.exp(np.linspace(np.log(1 / 16), np.log(16), 241))
GAUGE_GRID = np.linspace(-0.9, 3.0, 391)


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
    observed: timedelta

    def enough(self, metric: specs.MetricSpec) -> bool:
        if self.observed < metric.min_duration:
            return False
        counts = (self.canary_requests, self.baseline_requests)
        return all(c is None or c >= metric.min_requests for c in counts)

    def canary_silent(self, metric: specs.MetricSpec) -> bool:
        return (
            self.canary_requests == 0
            and (self.baseline_requests or 0) > 0
            and self.observed >= metric.min_duration
        )


def assess(
    template: specs.AnalysisTemplateSpec,
    series: Mapping[str, Sequence[observations.IntervalSample]],
    *,
    final: bool = False,
) -> verdicts.AnalysisSummary:
    judged: list[Judged] = []
    for metric in template.metrics:
        intervals = tuple(series.get(metric.name, ()))
        judged.extend(assess_metric(metric, template.alpha_for(metric), intervals, template.interval))
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
    if all(j.result.verdict == verdicts.Verdict.PASS for j in deciding):
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
    alpha: float,
    intervals: tuple[observations.IntervalSample, ...],
    interval: timedelta,
) -> list[Judged]:
    match metric.kind:
        case specs.MetricKind.ERROR_RATE:
            return [_assess_error_rate(metric, alpha, intervals, interval)]
        case specs.MetricKind.LATENCY:
            return _assess_latency(metric, alpha, intervals, interval)
        case specs.MetricKind.GAUGE:
            return [_assess_gauge(metric, alpha, intervals, interval)]
        case specs.MetricKind.DISTRIBUTION:
            return [_assess_distribution(metric, alpha, intervals, interval)]


def _column(intervals: tuple[observations.IntervalSample, ...], arm: str, field: str) -> FloatArray:
    values = [getattr(getattr(i, arm), field) for i in intervals]
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def _both(a: FloatArray, b: FloatArray) -> FloatArray:
    """Zero out intervals where either arm has no data, so neither counts alone."""
    seen = np.isfinite(a) & np.isfinite(b)
    return np.where(seen, a, 0.0)


def _exposure(n_c: FloatArray, n_b: FloatArray, interval: timedelta) -> Exposure:
    seen = np.isfinite(n_c) & np.isfinite(n_b)
    return Exposure(
        canary_requests=float(np.nansum(n_c)),
        baseline_requests=float(np.nansum(n_b)),
        observed=interval * int(seen.sum()),
    )


def _judge(
    metric: specs.MetricSpec,
    name: str,
    alpha: float,
    found: evidence.Evidence,
    exposure: Exposure,
    values: tuple[float | None, float | None],
    ci: tuple[float | None, float | None],
    margin: float,
) -> Judged:
    level = found.threshold(alpha)
    fail_peak = float(np.max(found.log_fail, initial=0.0))
    passed = bool(found.log_pass.size) and float(found.log_pass[-1]) >= math.log(1 / level)
    if fail_peak >= math.log(1 / level):
        verdict, message = verdicts.Verdict.FAIL, "evidence crossed 1/α: worse than the margin"
    elif passed and exposure.enough(metric):
        verdict, message = verdicts.Verdict.PASS, "confidence bound inside the margin"
    elif passed:
        verdict, message = verdicts.Verdict.RUNNING, "inside the margin; waiting for minRequests/minDuration"
    else:
        verdict, message = verdicts.Verdict.RUNNING, "not enough evidence either way yet"
    baseline, canary = values
    effect = canary / baseline - 1 if canary is not None and baseline else None
    result = verdicts.MetricResult(
        name=name,
        verdict=verdict,
        baseline=baseline,
        canary=canary,
        effect=effect,
        ci_low=ci[0],
        ci_high=ci[1],
        evidence=math.exp(min(fail_peak, 700.0)),
        alpha=level,
        margin=margin,
        baseline_requests=None if exposure.baseline_requests is None else int(exposure.baseline_requests),
        canary_requests=None if exposure.canary_requests is None else int(exposure.canary_requests),
        message=message,
    )
    return Judged(result=result, critical=metric.critical, canary_silent=exposure.canary_silent(metric))


def _bounds(
    log_fail_grid: FloatArray, log_pass_grid: FloatArray, grid: FloatArray, level: float
) -> tuple[float | None, float | None]:
    """Time-uniform confidence bounds from e-processes evaluated on a grid of nulls.

    The lower bound is the largest null "effect ≤ g" rejected at any time so far, the upper
    the smallest "effect ≥ g" rejected; None where the grid end was not reached.
    """
    threshold = math.log(1 / level)
    rejected_low = np.max(log_fail_grid, axis=-1, initial=-np.inf) >= threshold
    rejected_high = np.max(log_pass_grid, axis=-1, initial=-np.inf) >= threshold
    low = float(grid[rejected_low].max()) if rejected_low.any() else None
    high = float(grid[rejected_high].min()) if rejected_high.any() else None
    return low, high


def _ratio_ci(
    n_c: FloatArray, x_c: FloatArray, n_b: FloatArray, x_b: FloatArray, level: float
) -> tuple[float | None, float | None]:
    grid = RATIO_GRID[:, None]
    low, high = _bounds(
        sequential.count_ratio(n_c, x_c, n_b, x_b, grid, worse=True),
        sequential.count_ratio(n_c, x_c, n_b, x_b, grid, worse=False),
        RATIO_GRID,
        level,
    )
    return (None if low is None else low - 1), (None if high is None else high - 1)


def _assess_error_rate(
    metric: specs.MetricSpec,
    alpha: float,
    intervals: tuple[observations.IntervalSample, ...],
    interval: timedelta,
) -> Judged:
    n_c, n_b = _column(intervals, "canary", "requests"), _column(intervals, "baseline", "requests")
    x_c, x_b = _column(intervals, "canary", "errors"), _column(intervals, "baseline", "errors")
    nc, nb = _both(n_c, n_b), _both(n_b, n_c)
    xc, xb = _both(x_c, x_b), _both(x_b, x_c)
    found = evidence.rate(nc, xc, nb, xb, metric.margin.relative, metric.margin.absolute)
    values = (_ratio(xb, nb), _ratio(xc, nc))
    ci = _ratio_ci(nc, xc, nb, xb, found.threshold(alpha))
    return _judge(
        metric, metric.name, alpha, found, _exposure(n_c, n_b, interval), values, ci, metric.margin.relative
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
    alpha: float,
    intervals: tuple[observations.IntervalSample, ...],
    interval: timedelta,
) -> list[Judged]:
    assert metric.latency is not None
    edges_c, cum_c, tot_c = _histograms(intervals, "canary", metric.name)
    edges_b, cum_b, tot_b = _histograms(intervals, "baseline", metric.name)
    if len(edges_c) and len(edges_b) and not np.array_equal(edges_c, edges_b):
        raise InputError(f"observations.{metric.name}: canary and baseline buckets have different edges")
    edges = edges_b if len(edges_b) else edges_c
    seen = np.isfinite(tot_c) & np.isfinite(tot_b)
    cum_c = np.where(seen[:, None], cum_c, 0.0)
    cum_b = np.where(seen[:, None], cum_b, 0.0)
    tc, tb = np.where(seen, tot_c, 0.0), np.where(seen, tot_b, 0.0)
    exposure = _exposure(tot_c, tot_b, interval)
    slo = metric.latency.slo_seconds
    tests = len(metric.latency.quantiles) + (slo is not None)
    share = alpha / tests
    judged = []
    for q in metric.latency.quantiles:
        found = evidence.latency_quantile(cum_c, tc, cum_b, tb, edges, q, metric.margin.relative)
        values = (
            histogram_quantile(edges, cum_b.sum(axis=0), float(tb.sum()), q),
            histogram_quantile(edges, cum_c.sum(axis=0), float(tc.sum()), q),
        )
        ci = (
            _quantile_ci(cum_c, tc, cum_b, tb, edges, q, found.threshold(share))
            if len(edges)
            else (None, None)
        )
        name = specs.quantile_name(metric.name, q)
        judged.append(_judge(metric, name, share, found, exposure, values, ci, metric.margin.relative))
    if slo is not None:
        edge = np.full(len(tc), evidence.slo_edge(edges, slo), dtype=np.int64)
        nc, xc = evidence.exceedances(cum_c, tc, edge)
        nb, xb = evidence.exceedances(cum_b, tb, edge)
        found = evidence.rate(nc, xc, nb, xb, metric.margin.relative, metric.margin.absolute)
        ci = _ratio_ci(nc, xc, nb, xb, found.threshold(share))
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
            )
        )
    return judged


def _quantile_ci(
    cum_c: FloatArray,
    tc: FloatArray,
    cum_b: FloatArray,
    tb: FloatArray,
    edges: FloatArray,
    q: float,
    level: float,
) -> tuple[float | None, float | None]:
    anchor = evidence.anchor_edges(cum_b, tb, q)
    steps = edges[1:] / edges[:-1]
    finest = float(np.median(steps)) if len(steps) else 2.0
    grid = np.asarray(finest ** np.arange(-24, 25), dtype=np.float64)
    fails, passes = [], []
    for factor in grid:
        log_fail, log_pass = evidence.quantile_shift(cum_c, tc, cum_b, tb, edges, q, float(factor), anchor)
        fails.append(log_fail)
        passes.append(log_pass)
    low, high = _bounds(np.stack(fails), np.stack(passes), grid, level)
    return (None if low is None else low - 1), (None if high is None else high - 1)


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
    alpha: float,
    intervals: tuple[observations.IntervalSample, ...],
    interval: timedelta,
) -> Judged:
    g_c, g_b = _gauge_values(metric, intervals, "canary"), _gauge_values(metric, intervals, "baseline")
    increase = metric.bad_direction == specs.BadDirection.INCREASE
    found = evidence.gauge(g_c, g_b, metric.margin.relative, metric.margin.absolute, increase)
    seen = np.isfinite(g_c) & np.isfinite(g_b)
    values = (
        float(g_b[seen].mean()) if seen.any() else None,
        float(g_c[seen].mean()) if seen.any() else None,
    )
    level = found.threshold(alpha)
    shifted = [g_c - (1 + theta) * g_b for theta in GAUGE_GRID]
    low, high = _bounds(
        np.stack([sequential.paired_sign(y) for y in shifted]),
        np.stack([sequential.paired_sign(-y) for y in shifted]),
        GAUGE_GRID,
        level,
    )
    requests: tuple[float | None, float | None] = (None, None)
    if metric.gauge is not None and metric.gauge.per_request:
        requests = (
            float(np.nansum(_column(intervals, "canary", "requests"))),
            float(np.nansum(_column(intervals, "baseline", "requests"))),
        )
    exposure = Exposure(
        canary_requests=requests[0], baseline_requests=requests[1], observed=interval * int(seen.sum())
    )
    judged = _judge(metric, metric.name, alpha, found, exposure, values, (low, high), metric.margin.relative)
    # A gauge has no request count: the canary is silent when it reported nothing for the minimum
    # duration while the baseline reported.
    silent = not np.isfinite(g_c).any() and interval * int(np.isfinite(g_b).sum()) >= metric.min_duration
    return dataclasses.replace(judged, canary_silent=bool(silent))


def _assess_distribution(
    metric: specs.MetricSpec,
    alpha: float,
    intervals: tuple[observations.IntervalSample, ...],
    interval: timedelta,
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
        ci = _ratio_ci(n_c, counts_c[:, k], n_b, counts_b[:, k], found.threshold(alpha))
    judged = _judge(metric, metric.name, alpha, found, exposure, values, ci, metric.margin.relative)
    if values[0] is None:
        return judged
    note = f"{judged.result.message}; values are the share of class {classes[k]!r}, the one that moved most"
    return dataclasses.replace(judged, result=judged.result.model_copy(update={"message": note}))
