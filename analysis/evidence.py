"""Per metric kind: turn per-interval arm arrays into fail and pass e-processes.

Each builder returns `Evidence`: the cumulative log e-process that the canary is worse than
the baseline by more than the margin (`log_fail`; crossing it rolls back) and the one that it
is not (`log_pass`; crossing it, with enough exposure, passes). A metric that runs several
tests (two directions, several classes) splits its α over them (`tests`), so the union bound
holds under any dependence. Arrays have any leading axes and time last; NaN or 0 requests
mark an interval without data.

Margins are the larger of `relative` (share of the baseline value) and `absolute` (metric
units). Where the absolute floor must be turned into a ratio, the baseline rate comes from
the intervals *before* the current one, so the null stays predictable and the e-process valid.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from analysis import sequential

FloatArray = sequential.FloatArray
# Edges arrive through text labels ("%.6g" in most exporters): ratios are exact only to ~1e-6.
EDGE_TOLERANCE = 1e-4


@dataclasses.dataclass(frozen=True)
class Evidence:
    log_fail: FloatArray
    log_pass: FloatArray
    tests: int = 1

    def threshold(self, alpha: float) -> float:
        """Per-test level: the metric's α split over its tests."""
        return alpha / self.tests


def _earlier_rate(x: FloatArray, n: FloatArray) -> FloatArray:
    """Pooled rate over the intervals before each one (add-one, so it is never 0)."""
    cx = np.cumsum(np.nan_to_num(x), axis=-1) - np.nan_to_num(x)
    cn = np.cumsum(np.nan_to_num(n), axis=-1) - np.nan_to_num(n)
    return np.asarray((cx + 1.0) / (cn + 1.0), dtype=np.float64)


def null_ratio(x_b: FloatArray, n_b: FloatArray, relative: float, absolute: float) -> FloatArray:
    """1 + margin as a ratio of rates, per interval, from the baseline seen so far."""
    rate = _earlier_rate(x_b, n_b)
    return np.asarray(1.0 + np.maximum(relative, absolute / rate), dtype=np.float64)


def _pass_of(*log_passes: FloatArray) -> FloatArray:
    """All pass tests must have crossed: the smallest of their running maxima."""
    running = [np.maximum.accumulate(lp, axis=-1) for lp in log_passes]
    return np.asarray(np.min(np.stack(running, axis=0), axis=0), dtype=np.float64)


def _fail_of(*log_fails: FloatArray) -> FloatArray:
    """Any fail test crossing is enough: the largest of them at each interval."""
    return np.asarray(np.max(np.stack(log_fails, axis=0), axis=0), dtype=np.float64)


def rate(
    n_c: FloatArray, x_c: FloatArray, n_b: FloatArray, x_b: FloatArray, relative: float, absolute: float
) -> Evidence:
    """Errors (or any bad events) per request: bad when the canary's rate is higher."""
    rho0 = null_ratio(x_b, n_b, relative, absolute)
    return Evidence(
        log_fail=sequential.count_ratio(n_c, x_c, n_b, x_b, rho0, worse=True, fresh_starts=True),
        log_pass=np.maximum.accumulate(
            sequential.count_ratio(n_c, x_c, n_b, x_b, rho0, worse=False), axis=-1
        ),
    )


def anchor_edges(cum_b: FloatArray, total_b: FloatArray, quantile: float) -> npt.NDArray[np.int64]:
    """Per interval, the edge nearest the baseline's quantile in the intervals before it (-1: none yet)."""
    if cum_b.shape[-1] == 0:  # no finite edge (or no interval): nothing to anchor on
        return np.full(total_b.shape, -1, dtype=np.int64)
    pooled_cum = np.cumsum(cum_b, axis=-2) - cum_b
    pooled_total = (np.cumsum(total_b, axis=-1) - total_b)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        exceed = 1.0 - pooled_cum / pooled_total
        distance = np.abs(np.log(np.maximum(exceed, 1e-12)) - np.log(1.0 - quantile))
    anchor = np.argmin(np.where(np.isfinite(distance), distance, np.inf), axis=-1)
    return np.where(pooled_total[..., 0] > 0, anchor, -1).astype(np.int64)


def edge_pairs(edges: FloatArray, factor: float) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """For each anchor edge: the first edge at least `factor` above it (fail), the last at most (pass).

    The fail pair tests a margin ≥ the one asked for and the pass pair one ≤ it, so bucket
    resolution can only make the judge more cautious, never less. -1 where no edge fits.
    """
    if not len(edges):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    ratio = edges[None, :] / edges[:, None]
    above = ratio >= factor - EDGE_TOLERANCE
    fail = np.where(above.any(axis=1), np.argmax(above, axis=1), -1)
    within = ratio <= factor + EDGE_TOLERANCE
    last_within = np.where(within.any(axis=1), within.shape[1] - 1 - np.argmax(within[:, ::-1], axis=1), -1)
    return fail.astype(np.int64), last_within.astype(np.int64)


def slo_edge(edges: FloatArray, slo_seconds: float) -> int:
    """The first edge at or above the SLO (-1 when all edges are below it)."""
    index = int(np.searchsorted(edges, slo_seconds * (1 - EDGE_TOLERANCE)))
    return index if index < len(edges) else -1


def exceedances(
    cum: FloatArray, total: FloatArray, edge: npt.NDArray[np.int64]
) -> tuple[FloatArray, FloatArray]:
    """Requests (total) and requests above `edge` per interval; intervals without an edge get 0 requests."""
    safe = np.maximum(edge, 0)
    below = np.take_along_axis(cum, safe[..., None], axis=-1)[..., 0]
    usable = edge >= 0
    return np.where(usable, total, 0.0), np.where(usable, total - below, 0.0)


def quantile_shift(
    cum_c: FloatArray,
    total_c: FloatArray,
    cum_b: FloatArray,
    total_b: FloatArray,
    edges: FloatArray,
    quantile: float,
    factor: float,
    anchor: npt.NDArray[np.int64] | None = None,
    *,
    fresh_starts: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """Log e-processes (fail, pass) for "the canary's quantile is above `factor` × the baseline's".

    Bucket-exceedance test: with `t'` the edge at the baseline's quantile and `t` an edge
    `factor` above it, the canary's quantile exceeds `t` exactly when more than `1 - q` of
    its requests lie above `t`; comparing that share with the baseline's share above `t'`
    is a count-ratio test with null ratio 1.
    """
    if not len(edges):  # no histogram seen yet: no evidence either way
        return np.zeros(total_c.shape), np.full(total_c.shape, -np.inf)
    anchor = anchor_edges(cum_b, total_b, quantile) if anchor is None else anchor
    fail_pair, pass_pair = edge_pairs(edges, factor)
    has_anchor = anchor >= 0
    safe_anchor = np.maximum(anchor, 0)
    t_fail = np.where(has_anchor, fail_pair[safe_anchor], -1)
    t_pass = np.where(has_anchor, pass_pair[safe_anchor], -1)
    n_b, x_b = exceedances(cum_b, total_b, np.where(has_anchor, anchor, -1))
    n_cf, x_cf = exceedances(cum_c, total_c, t_fail)
    n_cp, x_cp = exceedances(cum_c, total_c, t_pass)
    log_fail = sequential.count_ratio(
        n_cf, x_cf, np.where(t_fail >= 0, n_b, 0.0), x_b, 1.0, worse=True, fresh_starts=fresh_starts
    )
    log_pass = sequential.count_ratio(n_cp, x_cp, np.where(t_pass >= 0, n_b, 0.0), x_b, 1.0, worse=False)
    return log_fail, log_pass


def latency_quantile(
    cum_c: FloatArray,
    total_c: FloatArray,
    cum_b: FloatArray,
    total_b: FloatArray,
    edges: FloatArray,
    quantile: float,
    relative: float,
) -> Evidence:
    log_fail, log_pass = quantile_shift(
        cum_c, total_c, cum_b, total_b, edges, quantile, 1.0 + relative, fresh_starts=True
    )
    return Evidence(log_fail=log_fail, log_pass=np.maximum.accumulate(log_pass, axis=-1))


def gauge_differences(
    g_c: FloatArray, g_b: FloatArray, relative: float, absolute: float, increase: bool
) -> FloatArray:
    """Paired difference beyond the margin, positive where the canary is worse than allowed."""
    margin = np.maximum(relative * np.abs(g_b), absolute)
    worse_by = g_c - g_b if increase else g_b - g_c
    return np.asarray(worse_by - margin, dtype=np.float64)


def gauge(g_c: FloatArray, g_b: FloatArray, relative: float, absolute: float, increase: bool) -> Evidence:
    y = gauge_differences(g_c, g_b, relative, absolute, increase)
    return Evidence(
        log_fail=sequential.paired_sign(y, fresh_starts=True),
        log_pass=np.maximum.accumulate(sequential.paired_sign(-y), axis=-1),
    )


def distribution(counts_c: FloatArray, counts_b: FloatArray, relative: float, absolute: float) -> Evidence:
    """Output drift: any class whose share moves by more than the margin, up or down.

    Arrays are (..., time, class). Each class is tested in both directions at α / (2 K).
    """
    n_c = counts_c.sum(axis=-1)
    n_b = counts_b.sum(axis=-1)
    if counts_c.shape[-1] == 0:  # no class seen yet: no evidence either way
        return Evidence(log_fail=np.zeros(n_c.shape), log_pass=np.full(n_c.shape, -np.inf))
    fails: list[FloatArray] = []
    passes: list[FloatArray] = []
    for k in range(counts_c.shape[-1]):
        x_c, x_b = counts_c[..., k], counts_b[..., k]
        up = null_ratio(x_b, n_b, relative, absolute)
        down = 1.0 / up
        fails.append(sequential.count_ratio(n_c, x_c, n_b, x_b, up, worse=True, fresh_starts=True))
        fails.append(sequential.count_ratio(n_c, x_c, n_b, x_b, down, worse=False, fresh_starts=True))
        passes.append(sequential.count_ratio(n_c, x_c, n_b, x_b, up, worse=False))
        passes.append(sequential.count_ratio(n_c, x_c, n_b, x_b, down, worse=True))
    return Evidence(log_fail=_fail_of(*fails), log_pass=_pass_of(*passes), tests=2 * counts_c.shape[-1])
