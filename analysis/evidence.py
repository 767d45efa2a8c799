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

Every builder continues from an `EvidenceState` (None: from the first interval) and returns the
state after the intervals it was given with the evidence, so the judge adds only new intervals
at each look and reaches exactly what it would on the whole window (`sequential`).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from analysis import sequential

FloatArray = sequential.FloatArray
# Edges arrive through text labels ("%.6g" in most exporters): ratios are exact only to ~1e-6.
EDGE_TOLERANCE = 1e-4


# A metric's pass level (max(α_i, β)) is split between two tests of "worse by the margin or more":
# the anytime e-process, which may pass at any look, gets this share; the fixed-horizon test read
# once at maxDuration gets the rest. By the union bound a canary worse by the margin still passes
# with probability ≤ the level. The e-process pays for looking every minute (Ville's bound is
# loose: at 100 requests/s a good canary's error test reaches 1/β within the hour in 70 % of
# releases where a test looked at once passes 85 %); the fixed-horizon test takes back most of that
# at maxDuration, while early passes still come from the e-process (docs/analysis.md).
ANYTIME_PASS_SHARE = 0.3


def anytime_pass_threshold(level: float) -> float:
    """What a pass e-process must reach (in log) to pass at any look, for a pass level."""
    return math.log(1.0 / (ANYTIME_PASS_SHARE * level))


def horizon_pass_z(level: float) -> float:
    """What the fixed-horizon statistic must reach at maxDuration, for a pass level."""
    return statistics.NormalDist().inv_cdf(1.0 - (1.0 - ANYTIME_PASS_SHARE) * level)


# What one interval may add to a latency test's log evidence, per alternative: a few minutes of
# a slowdown on one arm (a noisy neighbour, node pressure, a warm-up longer than configured)
# cannot reach 1/α alone, while a sustained shift still crosses within about ten intervals.
LATENCY_CAP = 0.7
# Local slope of log survival against log latency, when the buckets cannot tell it.
DEFAULT_SLOPE = 2.0
SLOPE_LIMITS = (0.5, 12.0)


@dataclasses.dataclass(frozen=True)
class Resolution:
    """Where a latency quantile was actually tested, per interval (-1 / NaN before any baseline)."""

    anchor: npt.NDArray[np.int64]  # index of the first edge at or above the baseline's quantile
    slope: FloatArray  # local slope of log survival in log latency at that edge


@dataclasses.dataclass(frozen=True)
class TestState:
    """Where one test stands: its fail and pass mixtures, the highest evidence each has reached, the
    fixed-horizon score and the dispersion that tempers the test (None where nothing is tempered)."""

    fail: sequential.MixtureState
    passing: sequential.MixtureState
    fail_peak: FloatArray  # 0 before any interval: the e-process starts at 1
    pass_peak: FloatArray  # -inf before any interval
    score: sequential.ScoreState | sequential.SignState
    dispersion: sequential.DispersionState | None


@dataclasses.dataclass(frozen=True)
class RateState:
    """The baseline's pooled bad events and requests, which turn an absolute margin into a ratio."""

    x: FloatArray
    n: FloatArray


@dataclasses.dataclass(frozen=True)
class EvidenceState:
    """What a builder continues from: one state per test, and per compared class the baseline's rate."""

    tests: tuple[TestState, ...]
    baselines: tuple[RateState, ...] = ()


@dataclasses.dataclass(frozen=True)
class Evidence:
    """The evidence over the intervals given (time last) and the state after them."""

    log_fail: FloatArray
    log_pass: FloatArray
    state: EvidenceState
    tests: int = 1
    resolution: Resolution | None = None
    # Cumulative statistic of the fixed-horizon test against "worse by the margin or more", about
    # standard normal at that boundary: what the judge reads once, at maxDuration. For a metric
    # of several tests, the smallest (every one must pass).
    final_z: FloatArray | None = None

    def threshold(self, alpha: float) -> float:
        """Per-test level: the metric's α split over its tests."""
        return alpha / self.tests

    def pass_level(self, alpha: float, beta: float) -> float:
        """The level of "worse by the margin or more": β, or the per-test α where that is larger."""
        return max(self.threshold(alpha), beta)

    def log_pass_needed(self, alpha: float, beta: float) -> float:
        """What the anytime pass e-process must reach to pass at any look."""
        return anytime_pass_threshold(self.pass_level(alpha, beta))

    def z_pass_needed(self, alpha: float, beta: float) -> float:
        """What the fixed-horizon statistic must reach at maxDuration."""
        return horizon_pass_z(self.pass_level(alpha, beta))


def fail_peak(state: EvidenceState) -> float:
    """The highest log fail evidence any test has reached so far (0 before any interval)."""
    return max((float(t.fail_peak) for t in state.tests), default=0.0)


def pass_now(state: EvidenceState) -> float:
    """The log pass evidence of the metric: every test must pass, so the smallest of their peaks."""
    return min((float(t.pass_peak) for t in state.tests), default=-math.inf)


def z_now(state: EvidenceState) -> float:
    """The fixed-horizon statistic of the metric now: the smallest of its tests'."""
    return min((float(t.score.z()) for t in state.tests), default=-math.inf)


def _earlier_rate(x: FloatArray, n: FloatArray, state: RateState | None) -> tuple[FloatArray, RateState]:
    """Pooled rate over the intervals before each one (add-one, so it is never 0)."""
    x0, n0 = np.nan_to_num(x), np.nan_to_num(n)
    was = state or RateState(np.zeros(x0.shape[:-1]), np.zeros(x0.shape[:-1]))
    sum_x, sum_n = sequential.running(x0, was.x), sequential.running(n0, was.n)
    rate = ((sum_x - x0) + 1.0) / ((sum_n - n0) + 1.0)
    return np.asarray(rate, dtype=np.float64), RateState(
        sequential.last(sum_x, was.x), sequential.last(sum_n, was.n)
    )


def null_ratio(
    x_b: FloatArray, n_b: FloatArray, relative: float, absolute: float, state: RateState | None = None
) -> tuple[FloatArray, RateState]:
    """1 + margin as a ratio of rates, per interval, from the baseline seen so far."""
    rate, after = _earlier_rate(x_b, n_b, state)
    return np.asarray(1.0 + np.maximum(relative, absolute / rate), dtype=np.float64), after


def _pass_of(*log_passes: FloatArray) -> FloatArray:
    """All pass tests must have crossed: the smallest of their running maxima."""
    return np.asarray(np.min(np.stack(log_passes, axis=0), axis=0), dtype=np.float64)


def _fail_of(*log_fails: FloatArray) -> FloatArray:
    """Any fail test crossing is enough: the largest of them at each interval."""
    return np.asarray(np.max(np.stack(log_fails, axis=0), axis=0), dtype=np.float64)


# One side of a test: (worse?, weight of fresh starts, its state) -> (log evidence, state after).
Tested = Callable[[bool, float, sequential.MixtureState | None], tuple[FloatArray, sequential.MixtureState]]


def _both_ways(
    tested: Tested, state: TestState | None
) -> tuple[
    FloatArray, sequential.MixtureState, FloatArray, sequential.MixtureState, sequential.ScoreState | None
]:
    """One test's fail and pass e-processes, each continued from its state, and its score's state."""
    log_fail, fail = tested(True, sequential.FAIL_FRESH, None if state is None else state.fail)
    log_pass, passing = tested(False, sequential.PASS_FRESH, None if state is None else state.passing)
    was_score = None if state is None else state.score
    assert was_score is None or isinstance(was_score, sequential.ScoreState)
    return log_fail, fail, log_pass, passing, was_score


def _tested(
    log_fail: FloatArray,
    log_pass: FloatArray,
    state: TestState | None,
    fail: sequential.MixtureState,
    passing: sequential.MixtureState,
    score: sequential.ScoreState | sequential.SignState,
    dispersed: sequential.DispersionState | None,
) -> tuple[FloatArray, TestState]:
    """The pass evidence as its running maximum, and the test's state after these intervals."""
    shape = log_fail.shape[:-1]
    fail_before = np.zeros(shape) if state is None else state.fail_peak
    pass_before = np.full(shape, -np.inf) if state is None else state.pass_peak
    peak = np.maximum.accumulate(np.concatenate([pass_before[..., None], log_pass], axis=-1), axis=-1)[
        ..., 1:
    ]
    return np.asarray(peak, dtype=np.float64), TestState(
        fail=fail,
        passing=passing,
        fail_peak=np.asarray(np.maximum(fail_before, np.max(log_fail, axis=-1, initial=-np.inf))),
        pass_peak=sequential.last(peak, pass_before),
        score=score,
        dispersion=dispersed,
    )


def count_evidence(
    n_c: FloatArray,
    x_c: FloatArray,
    n_b: FloatArray,
    x_b: FloatArray,
    rho0: FloatArray | float,
    cap: float | None = None,
    resolution: Resolution | None = None,
    state: TestState | None = None,
) -> Evidence:
    """Fail and pass e-processes of one count-ratio test, tempered by the measured dispersion."""
    phi, dispersed = sequential.dispersion(n_c, x_c, n_b, x_b, None if state is None else state.dispersion)

    def tested(
        worse: bool, fresh: float, was: sequential.MixtureState | None
    ) -> tuple[FloatArray, sequential.MixtureState]:
        return sequential.count_ratio(
            n_c,
            x_c,
            n_b,
            x_b,
            rho0,
            worse=worse,
            toward_one=not worse,
            fresh_starts=fresh,
            dispersion=phi,
            cap=cap,
            state=was,
        )

    log_fail, fail, log_pass, passing, was_score = _both_ways(tested, state)
    final_z, score = sequential.count_ratio_z(n_c, x_c, n_b, x_b, rho0, dispersion=phi, state=was_score)
    peak, after = _tested(log_fail, log_pass, state, fail, passing, score, dispersed)
    return Evidence(
        log_fail=log_fail,
        log_pass=peak,
        state=EvidenceState(tests=(after,)),
        resolution=resolution,
        final_z=final_z,
    )


def rate(
    n_c: FloatArray,
    x_c: FloatArray,
    n_b: FloatArray,
    x_b: FloatArray,
    relative: float,
    absolute: float,
    state: EvidenceState | None = None,
) -> Evidence:
    """Errors (or any bad events) per request: bad when the canary's rate is higher."""
    rho0, baseline = null_ratio(x_b, n_b, relative, absolute, None if state is None else state.baselines[0])
    found = count_evidence(n_c, x_c, n_b, x_b, rho0, state=None if state is None else state.tests[0])
    return dataclasses.replace(found, state=dataclasses.replace(found.state, baselines=(baseline,)))


@dataclasses.dataclass(frozen=True)
class HistogramState:
    """One arm's histogram pooled over the intervals so far: cumulative counts per finite edge, total."""

    cum: FloatArray
    total: FloatArray

    @staticmethod
    def initial(edges: int, shape: tuple[int, ...] = ()) -> HistogramState:
        return HistogramState(np.zeros((*shape, edges)), np.zeros(shape))


def pooled_before(
    cum: FloatArray, total: FloatArray, state: HistogramState | None = None
) -> tuple[FloatArray, FloatArray, HistogramState]:
    """Per interval, the histogram pooled over the intervals before it, and the pool after all of them.

    `cum` is (..., time, edge), `total` (..., time).
    """
    was = state or HistogramState.initial(cum.shape[-1], total.shape[:-1])
    by_edge = sequential.running(np.swapaxes(cum, -1, -2), was.cum)  # (..., edge, time)
    totals = sequential.running(total, was.total)
    pooled = np.swapaxes(by_edge, -1, -2)
    after = HistogramState(sequential.last(by_edge, was.cum), sequential.last(totals, was.total))
    return np.asarray(pooled - cum, dtype=np.float64), np.asarray(totals - total, dtype=np.float64), after


def anchor_edges(pooled_cum: FloatArray, pooled_total: FloatArray, quantile: float) -> npt.NDArray[np.int64]:
    """Per interval, the first edge at or above the baseline's quantile in the intervals before it
    (`pooled_before`).

    That is the first edge with at most a share 1 − quantile of the baseline's requests above it
    (the last edge when the quantile lies beyond every finite edge; -1 before any baseline).
    Above, not nearest: a regression that moves the tail but not the body (a slow path getting
    slower) shows its full size in the requests above the quantile, and is diluted by the
    unmoved body at an edge below it. On Prometheus' default buckets with p99 between 0.25 s and
    0.5 s, the edge below caught none of 200 releases with p99 +25 % and passed every p99 +10 %
    one; the edge above caught 96.5 % (docs/analysis.md).
    """
    if pooled_cum.shape[-1] == 0:  # no finite edge (or no interval): nothing to anchor on
        return np.full(pooled_total.shape, -1, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        exceed = 1.0 - pooled_cum / pooled_total[..., None]
    above = exceed <= (1.0 - quantile) * (1 + EDGE_TOLERANCE)
    anchor = np.where(above.any(axis=-1), np.argmax(above, axis=-1), pooled_cum.shape[-1] - 1)
    return np.where(pooled_total > 0, anchor, -1).astype(np.int64)


def slo_edge(edges: FloatArray, slo_seconds: float) -> int:
    """The first edge at or above the SLO (-1 when all edges are below it)."""
    index = int(np.searchsorted(edges, slo_seconds * (1 - EDGE_TOLERANCE)))
    return index if index < len(edges) else -1


def exceedances(
    cum: FloatArray, total: FloatArray, edge: npt.NDArray[np.int64]
) -> tuple[FloatArray, FloatArray]:
    """Requests (total) and requests above `edge` per interval; intervals without an edge get 0 requests."""
    if cum.shape[-1] == 0:  # no finite edge seen (no histogram yet): nothing to count above
        zero = np.zeros(np.broadcast_shapes(total.shape, edge.shape))
        return zero, zero.copy()
    safe = np.maximum(edge, 0)
    below = np.take_along_axis(cum, safe[..., None], axis=-1)[..., 0]
    usable = edge >= 0
    return np.where(usable, total, 0.0), np.where(usable, total - below, 0.0)


def tail_slopes(
    pooled_cum: FloatArray, pooled_total: FloatArray, edges: FloatArray, anchor: npt.NDArray[np.int64]
) -> FloatArray:
    """Per interval, the local slope of log survival in log latency at the anchor edge.

    From the baseline pooled over the intervals before each one (`pooled_before`, so it is
    predictable): the slope of the parabola through the anchor and its neighbouring edges in
    log-log coordinates (one secant at the ends). It turns a relative margin on a quantile into a
    ratio of exceedances at one edge: a quantile (1 + m) times higher puts (1 + m)^slope times
    as many requests above the edge, whatever the spacing of the buckets.
    """
    slopes = np.full(anchor.shape, DEFAULT_SLOPE)
    if pooled_cum.shape[-1] < 2:
        return slopes
    total = pooled_total[..., None]
    survival = (total - pooled_cum + 0.5) / (total + 1.0)
    log_s, log_e = np.log(survival), np.log(edges)
    last = len(edges) - 1
    a = np.clip(anchor, 0, last)
    lo, hi = np.maximum(a - 1, 0), np.minimum(a + 1, last)

    def at(index: npt.NDArray[np.int64]) -> FloatArray:
        return np.take_along_axis(log_s, index[..., None], axis=-1)[..., 0]

    h_left, h_right = log_e[a] - log_e[lo], log_e[hi] - log_e[a]
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(h_left > 0, (at(lo) - at(a)) / h_left, np.nan)
        right = np.where(h_right > 0, (at(a) - at(hi)) / h_right, np.nan)
        both = (left * h_right + right * h_left) / (h_left + h_right)
    slope = np.where(np.isfinite(both), both, np.where(np.isfinite(left), left, right))
    slope = np.where(np.isfinite(slope), np.clip(slope, *SLOPE_LIMITS), DEFAULT_SLOPE)
    return np.asarray(np.where(anchor >= 0, slope, np.nan), dtype=np.float64)


def latency_quantile(
    cum_c: FloatArray,
    total_c: FloatArray,
    cum_b: FloatArray,
    total_b: FloatArray,
    edges: FloatArray,
    quantile: float,
    relative: float,
    state: EvidenceState | None = None,
    baseline_before: HistogramState | None = None,
) -> Evidence:
    """Is the canary's quantile more than (1 + relative) times the baseline's?

    One-edge exceedance test: at the first edge at or above the baseline's quantile (chosen from
    earlier intervals), the canary's share of requests above it is compared with the baseline's by
    the count-ratio test, with null ratio (1 + relative)^slope from the local tail slope. The
    margin keeps its meaning on buckets 2.5× apart, where a test between two edges could not
    resolve it; the verdict reports the edge and slope it used. Before any histogram (no edges)
    the intervals carry no evidence either way. `baseline_before`: the baseline pooled over the
    intervals before these (the caller keeps it: the metric's quantiles share it).
    """
    pooled_cum, pooled_total, _ = pooled_before(cum_b, total_b, baseline_before)
    anchor = anchor_edges(pooled_cum, pooled_total, quantile)
    slope = tail_slopes(pooled_cum, pooled_total, edges, anchor)
    n_c, x_c = exceedances(cum_c, total_c, anchor)
    n_b, x_b = exceedances(cum_b, total_b, anchor)
    rho0 = np.where(anchor >= 0, (1.0 + relative) ** np.nan_to_num(slope, nan=DEFAULT_SLOPE), 1.0)
    return count_evidence(
        n_c,
        x_c,
        n_b,
        x_b,
        rho0,
        LATENCY_CAP,
        Resolution(anchor=anchor, slope=slope),
        state=None if state is None else state.tests[0],
    )


def gauge_differences(
    g_c: FloatArray, g_b: FloatArray, relative: float, absolute: float, increase: bool
) -> FloatArray:
    """Paired difference beyond the margin, positive where the canary is worse than allowed."""
    margin = np.maximum(relative * np.abs(g_b), absolute)
    worse_by = g_c - g_b if increase else g_b - g_c
    return np.asarray(worse_by - margin, dtype=np.float64)


def gauge(
    g_c: FloatArray,
    g_b: FloatArray,
    relative: float,
    absolute: float,
    increase: bool,
    state: EvidenceState | None = None,
) -> Evidence:
    y = gauge_differences(g_c, g_b, relative, absolute, increase)
    was = None if state is None else state.tests[0]
    log_fail, fail = sequential.paired_sign(
        y, fresh_starts=sequential.FAIL_FRESH, state=None if was is None else was.fail
    )
    log_pass, passing = sequential.paired_sign(
        -y, fresh_starts=sequential.PASS_FRESH, state=None if was is None else was.passing
    )
    was_score = None if was is None else was.score
    assert was_score is None or isinstance(was_score, sequential.SignState)
    final_z, score = sequential.sign_z(y, state=was_score)
    peak, after = _tested(log_fail, log_pass, was, fail, passing, score, None)
    return Evidence(log_fail=log_fail, log_pass=peak, state=EvidenceState(tests=(after,)), final_z=final_z)


def row_totals(counts: FloatArray) -> FloatArray:
    """Per interval, the sum over classes (last axis), added in class order: a class that was absent
    (zeros) changes no total, so the totals do not depend on which classes a look knew of."""
    if counts.shape[-1] == 0:
        return np.zeros(counts.shape[:-1])
    return np.asarray(np.cumsum(counts, axis=-1)[..., -1], dtype=np.float64)


def distribution(
    counts_c: FloatArray,
    counts_b: FloatArray,
    relative: float,
    absolute: float,
    state: EvidenceState | None = None,
) -> Evidence:
    """Output drift: any class whose share moves by more than the margin, up or down.

    Arrays are (..., time, class). Each class is tested in both directions at α / (2 K). The state
    holds two tests (up, down) and the baseline's rate per class, in the order of the columns.
    """
    n_c, n_b = row_totals(counts_c), row_totals(counts_b)
    fails: list[FloatArray] = []
    passes: list[FloatArray] = []
    finals: list[FloatArray] = []
    tests: list[TestState] = []
    baselines: list[RateState] = []
    for k in range(counts_c.shape[-1]):
        x_c, x_b = counts_c[..., k], counts_b[..., k]
        up, baseline = null_ratio(x_b, n_b, relative, absolute, None if state is None else state.baselines[k])
        baselines.append(baseline)
        # Fewer of this class on the canary by more than the margin is the same test with the
        # arms swapped: the baseline's share is more than `up` times the canary's.
        for direction, arms in enumerate(((n_c, x_c, n_b, x_b), (n_b, x_b, n_c, x_c))):
            was = None if state is None else state.tests[2 * k + direction]
            tested = count_evidence(*arms, up, state=was)
            fails.append(tested.log_fail)
            passes.append(tested.log_pass)
            assert tested.final_z is not None
            finals.append(tested.final_z)
            tests.extend(tested.state.tests)
    after = EvidenceState(tests=tuple(tests), baselines=tuple(baselines))
    if not fails:  # no class seen yet: no evidence either way
        return Evidence(log_fail=np.zeros(n_c.shape), log_pass=np.full(n_c.shape, -np.inf), state=after)
    return Evidence(
        log_fail=_fail_of(*fails),
        log_pass=_pass_of(*passes),
        state=after,
        tests=2 * counts_c.shape[-1],
        final_z=np.asarray(np.min(np.stack(finals, axis=0), axis=0), dtype=np.float64),
    )


# What one interval may add to an agreement test's log evidence. Disagreement comes in bursts (one
# kind of request at a time): measured on a share swinging between 0.5 % and 3.5 % around a 2 %
# bound, uncapped evidence failed 16 % of such releases, capped at 1.0 under 3 %
# (tests/unit/analysis/test_agreement.py); a shadow disagreeing on 10 % still fails within six
# intervals of 200 comparisons.
AGREEMENT_CAP = 1.0


def agreement(
    n: FloatArray, disagreements: FloatArray, bound: float, state: EvidenceState | None = None
) -> Evidence:
    """A shadow's disagreements with stable: bad when more than `bound` (a share) of the compared
    requests disagree. One arm, an absolute bound: no baseline to compare with."""
    was = None if state is None else state.tests[0]
    was_dispersion = None if was is None else was.dispersion
    phi, dispersed = sequential.share_dispersion(n, disagreements, was_dispersion)

    def tested(
        worse: bool, fresh: float, mixture: sequential.MixtureState | None
    ) -> tuple[FloatArray, sequential.MixtureState]:
        return sequential.share(
            n,
            disagreements,
            bound,
            worse=worse,
            fresh_starts=fresh,
            dispersion=phi,
            cap=AGREEMENT_CAP,
            state=mixture,
        )

    log_fail, fail, log_pass, passing, was_score = _both_ways(tested, was)
    final_z, score = sequential.share_z(n, disagreements, bound, dispersion=phi, state=was_score)
    peak, after = _tested(log_fail, log_pass, was, fail, passing, score, dispersed)
    return Evidence(log_fail=log_fail, log_pass=peak, state=EvidenceState(tests=(after,)), final_z=final_z)
