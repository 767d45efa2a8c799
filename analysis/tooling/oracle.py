"""What a judge that may look only once could promote: a fixed-horizon test at maxDuration.

For the benchmark's promotion figures. Each critical metric of the template is tested once on
the whole window with the same nulls as the judge (margins, the tested latency edge and its
tail slope, the absolute floor on rates) and the same levels: it passes when the hypothesis
"worse by the margin or more" is rejected at β and "not worse" is not rejected at α_i. The
release passes when every critical metric does. No sequential test looked at every minute can
promote more good releases than this at the same levels, so "promoted / oracle" says how much of
what the traffic allows the judge takes.

The tests are exact under the simulator's Poisson and binomial counts (conditional binomial for
count ratios, the sign test for gauges) and take no account of overdispersion: on scenarios
with episodes or bursts the oracle is somewhat optimistic, which makes the judge's share of it
a conservative figure.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

from analysis import evidence, specs
from analysis.tooling import traffic_simulator

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


def _count_test(
    n_c: FloatArray,
    x_c: FloatArray,
    n_b: FloatArray,
    x_b: FloatArray,
    rho0: FloatArray,
    alpha: float,
    beta: float,
) -> BoolArray:
    """Per release (arrays (S,), pooled over the window): passed and not failed at the null ratio."""
    m = np.round(x_c + x_b).astype(np.int64)
    x = np.round(x_c).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        pi0 = np.where(n_b > 0, n_c * rho0 / (n_c * rho0 + n_b), 0.5)
    # Pass: so few canary events that "ratio ≥ rho0" is rejected at β.
    passed = stats.binom.cdf(x, m, pi0) <= beta
    # Fail: so many that "ratio ≤ rho0" is rejected at α.
    failed = stats.binom.sf(x - 1, m, pi0) <= alpha
    return np.asarray(passed & ~failed & (n_c > 0) & (n_b > 0), dtype=bool)


def _sign_test(y: FloatArray, alpha: float, beta: float) -> BoolArray:
    """Gauges, per release over intervals (S, T): y > 0 where the canary is worse than its margin."""
    seen = np.isfinite(y)
    n = seen.sum(axis=-1)
    worse = (np.where(seen, y, 0.0) > 0).sum(axis=-1)
    better = (np.where(seen, y, 0.0) < 0).sum(axis=-1)
    passed = stats.binom.sf(better - 1, n, 0.5) <= beta
    failed = stats.binom.sf(worse - 1, n, 0.5) <= alpha
    return np.asarray(passed & ~failed & (n > 0), dtype=bool)


def _whole_window_anchor(
    cum_b: FloatArray, total_b: FloatArray, edges: FloatArray, quantile: float
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """The judge's tested edge and tail slope, chosen from the baseline's whole window."""
    pool = evidence.pooled_before(cum_b, total_b)[2]
    cum, total = pool.cum[..., None, :], pool.total[..., None]  # one "interval after" the window
    anchor = evidence.anchor_edges(cum, total, quantile)
    slope = evidence.tail_slopes(cum, total, edges, anchor)
    return anchor[..., -1], np.nan_to_num(slope[..., -1], nan=evidence.DEFAULT_SLOPE)


def _pooled_exceedances(
    cum: FloatArray, total: FloatArray, edge: npt.NDArray[np.int64]
) -> tuple[FloatArray, FloatArray]:
    per_interval = np.broadcast_to(edge[..., None], total.shape)
    n, x = evidence.exceedances(cum, total, per_interval)
    return n.sum(axis=-1), x.sum(axis=-1)


def passes(
    template: specs.AnalysisTemplateSpec,
    canary: traffic_simulator.ArmCounts,
    baseline: traffic_simulator.ArmCounts,
    edges: FloatArray,
) -> BoolArray:
    """Per simulated release: would the fixed-horizon test pass it at the end of the window?"""
    deciding = [m for m in template.metrics if m.critical] or list(template.metrics)
    verdict = np.ones(canary.requests.shape[:-1], dtype=bool)
    beta = template.beta
    for metric in deciding:
        alpha = template.alpha_for(metric)
        relative, absolute = metric.margin.relative, metric.margin.absolute
        match metric.kind:
            case specs.MetricKind.ERROR_RATE:
                n_c, x_c = canary.requests.sum(-1), canary.errors.sum(-1)
                n_b, x_b = baseline.requests.sum(-1), baseline.errors.sum(-1)
                rho0 = 1.0 + np.maximum(relative, absolute / ((x_b + 1.0) / (n_b + 1.0)))
                verdict &= _count_test(n_c, x_c, n_b, x_b, rho0, alpha, beta)
            case specs.MetricKind.LATENCY:
                assert metric.latency is not None
                quantiles = metric.latency.quantiles
                share = alpha / (len(quantiles) + (metric.latency.slo_seconds is not None))
                for q in quantiles:
                    anchor, slope = _whole_window_anchor(baseline.buckets, baseline.requests, edges, q)
                    n_c, x_c = _pooled_exceedances(canary.buckets, canary.requests, anchor)
                    n_b, x_b = _pooled_exceedances(baseline.buckets, baseline.requests, anchor)
                    verdict &= _count_test(n_c, x_c, n_b, x_b, (1.0 + relative) ** slope, share, beta)
                slo = metric.latency.slo_seconds
                if slo is not None:
                    edge = np.full(verdict.shape, evidence.slo_edge(edges, slo), dtype=np.int64)
                    n_c, x_c = _pooled_exceedances(canary.buckets, canary.requests, edge)
                    n_b, x_b = _pooled_exceedances(baseline.buckets, baseline.requests, edge)
                    rho0 = 1.0 + np.maximum(relative, absolute / ((x_b + 1.0) / (n_b + 1.0)))
                    verdict &= _count_test(n_c, x_c, n_b, x_b, rho0, share, beta)
            case specs.MetricKind.GAUGE:
                increase = metric.bad_direction == specs.BadDirection.INCREASE
                y = evidence.gauge_differences(canary.gpu, baseline.gpu, relative, absolute, increase)
                verdict &= _sign_test(y, alpha, beta)
            case specs.MetricKind.DISTRIBUTION:
                classes = canary.classes.shape[-1]
                level = alpha / (2 * classes)
                n_c, n_b = canary.requests.sum(-1), baseline.requests.sum(-1)
                for k in range(classes):
                    x_c, x_b = canary.classes[..., k].sum(-1), baseline.classes[..., k].sum(-1)
                    up = 1.0 + np.maximum(relative, absolute / ((x_b + 1.0) / (n_b + 1.0)))
                    verdict &= _count_test(n_c, x_c, n_b, x_b, up, level, beta)
                    verdict &= _count_test(n_b, x_b, n_c, x_c, up, level, beta)
            case specs.MetricKind.AGREEMENT:
                raise ValueError("the traffic simulator does not model a shadow's comparisons with stable")
    return verdict
