"""The judge's compact state per metric, and its packed form in an analysis record of `.status`.

Each metric kind keeps what its tests continue from (`evidence.EvidenceState`) and the running
sums its verdict reports (values, exposure, the confidence bounds' counts). A look folds the new
intervals into it (`judge.fold`), so its cost does not grow with the window. In status it is one
base64 string of float64s per metric: its layout follows from the template (the metric's kind,
quantiles, SLO) and from two things the record names beside it — the number of bucket edges of
a latency metric and the classes a distribution metric has seen. Anything that does not unpack
to that layout is refused (`StateError`) and the caller reads the window afresh: a state can
cost a re-read, never a wrong verdict.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
from typing import Any

import numpy as np

from analysis import confidence, evidence, sequential, specs, verdicts

FloatArray = sequential.FloatArray
SCALAR: tuple[int, ...] = ()


class StateError(ValueError):
    """A packed state that does not fit its metric; the window is read afresh."""


@dataclasses.dataclass(frozen=True)
class ExposureState:
    """Requests per arm, intervals both arms reported, and intervals the baseline reported since the
    canary was due."""

    canary: FloatArray
    baseline: FloatArray
    observed: FloatArray
    baseline_observed: FloatArray

    @staticmethod
    def initial() -> ExposureState:
        zero = np.zeros(SCALAR)
        return ExposureState(zero, zero, zero, zero)


@dataclasses.dataclass(frozen=True)
class Pooled:
    """Pooled counts of the tested events (errors, requests above an edge) and requests per arm."""

    x_c: FloatArray
    n_c: FloatArray
    x_b: FloatArray
    n_b: FloatArray

    @staticmethod
    def initial() -> Pooled:
        zero = np.zeros(SCALAR)
        return Pooled(zero, zero, zero, zero)

    def add(self, x_c: FloatArray, n_c: FloatArray, x_b: FloatArray, n_b: FloatArray) -> Pooled:
        def total(values: FloatArray, before: FloatArray) -> FloatArray:
            return sequential.last(sequential.running(values, before), before)

        return Pooled(total(x_c, self.x_c), total(n_c, self.n_c), total(x_b, self.x_b), total(n_b, self.n_b))


@dataclasses.dataclass(frozen=True)
class CountState:
    """A count-ratio test (an error rate, an SLO) and its pooled counts."""

    evidence: evidence.EvidenceState
    pooled: Pooled


@dataclasses.dataclass(frozen=True)
class QuantileState:
    """A quantile's exceedance test, its pooled exceedances, and the last edge and slope it used."""

    evidence: evidence.EvidenceState
    pooled: Pooled
    anchor: FloatArray  # -1 before the baseline showed a histogram
    slope: FloatArray


@dataclasses.dataclass(frozen=True)
class ErrorRateState:
    intervals: int
    test: CountState
    exposure: ExposureState


@dataclasses.dataclass(frozen=True)
class LatencyState:
    intervals: int
    edges: FloatArray  # finite edges; empty before any histogram
    canary: evidence.HistogramState
    baseline: evidence.HistogramState
    exposure: ExposureState
    quantiles: tuple[QuantileState, ...]
    slo: CountState | None


@dataclasses.dataclass(frozen=True)
class GaugeState:
    intervals: int
    evidence: evidence.EvidenceState
    canary_sum: FloatArray  # over intervals both arms reported
    baseline_sum: FloatArray
    both: FloatArray
    relative: confidence.Moments  # of canary / baseline − 1
    canary_requests: FloatArray  # perRequest gauges
    baseline_requests: FloatArray
    canary_seen: FloatArray  # intervals each arm reported
    baseline_seen: FloatArray


@dataclasses.dataclass(frozen=True)
class DistributionState:
    intervals: int
    classes: tuple[str, ...]  # sorted; the evidence holds two tests and one baseline rate per class
    evidence: evidence.EvidenceState
    canary_counts: FloatArray  # per class
    canary_total: FloatArray
    baseline_total: FloatArray
    canary_reported: FloatArray  # every count the canary reported (intervals it alone reported too)
    baseline_reported: FloatArray
    observed: FloatArray


@dataclasses.dataclass(frozen=True)
class AgreementState:
    intervals: int
    evidence: evidence.EvidenceState
    compared: FloatArray
    disagreed: FloatArray
    observed: FloatArray


MetricState = ErrorRateState | LatencyState | GaugeState | DistributionState | AgreementState


def _test(
    fail: int,
    passing: int,
    score: sequential.ScoreState | sequential.SignState,
    dispersion: sequential.DispersionState | None,
) -> evidence.TestState:
    """A test before any interval: `fail` and `passing` alternatives in its two mixtures."""
    return evidence.TestState(
        fail=sequential.MixtureState.initial(fail, SCALAR, sequential.FAIL_FRESH),
        passing=sequential.MixtureState.initial(passing, SCALAR, sequential.PASS_FRESH),
        fail_peak=np.zeros(SCALAR),
        pass_peak=np.full(SCALAR, -np.inf),
        score=score,
        dispersion=dispersion,
    )


def count_test(*, tested_rate: bool) -> evidence.EvidenceState:
    """The state of a count-ratio test before any interval (`tested_rate`: with a baseline rate)."""
    test = _test(
        len(sequential.RATIO_FACTORS),
        len(sequential.TOWARD_ONE_EXPONENTS),
        sequential.ScoreState.initial(SCALAR),
        sequential.DispersionState.initial(SCALAR),
    )
    baselines = (evidence.RateState(np.zeros(SCALAR), np.zeros(SCALAR)),) if tested_rate else ()
    return evidence.EvidenceState(tests=(test,), baselines=baselines)


def distribution_evidence(classes: int) -> evidence.EvidenceState:
    one = count_test(tested_rate=True)
    return evidence.EvidenceState(tests=one.tests * (2 * classes), baselines=one.baselines * classes)


def initial(metric: specs.MetricSpec, *, edges: int = 0, classes: tuple[str, ...] = ()) -> MetricState:
    """A metric's state before any interval, shaped for `edges` bucket edges or these `classes`."""
    zero = np.zeros(SCALAR)
    match metric.kind:
        case specs.MetricKind.ERROR_RATE:
            return ErrorRateState(
                0, CountState(count_test(tested_rate=True), Pooled.initial()), ExposureState.initial()
            )
        case specs.MetricKind.LATENCY:
            assert metric.latency is not None
            quantile = QuantileState(
                count_test(tested_rate=False), Pooled.initial(), np.full(SCALAR, -1.0), zero
            )
            slo = None
            if metric.latency.slo_seconds is not None:
                slo = CountState(count_test(tested_rate=True), Pooled.initial())
            return LatencyState(
                intervals=0,
                edges=np.zeros(edges),
                canary=evidence.HistogramState.initial(edges),
                baseline=evidence.HistogramState.initial(edges),
                exposure=ExposureState.initial(),
                quantiles=(quantile,) * len(metric.latency.quantiles),
                slo=slo,
            )
        case specs.MetricKind.GAUGE:
            signs = len(sequential.SIGN_PROBABILITIES)
            gauge_test = _test(signs, signs, sequential.SignState.initial(SCALAR), None)
            tested = evidence.EvidenceState(tests=(gauge_test,))
            return GaugeState(0, tested, zero, zero, zero, confidence.Moments(), zero, zero, zero, zero)
        case specs.MetricKind.DISTRIBUTION:
            tested = distribution_evidence(len(classes))
            return DistributionState(0, classes, tested, np.zeros(len(classes)), zero, zero, zero, zero, zero)
        case specs.MetricKind.AGREEMENT:
            shares = len(sequential.SHARE_FACTORS)
            share_test = _test(
                shares,
                shares,
                sequential.ScoreState.initial(SCALAR),
                sequential.DispersionState.initial(SCALAR),
            )
            return AgreementState(0, evidence.EvidenceState(tests=(share_test,)), zero, zero, zero)


def _numbers(value: Any, into: list[FloatArray]) -> list[FloatArray]:
    """Every number of a state, in field order, as flat arrays (what `pack` writes and `_rebuild`
    reads back)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            _numbers(getattr(value, field.name), into)
    elif isinstance(value, tuple):
        for item in value:
            _numbers(item, into)
    elif isinstance(value, np.ndarray):
        into.append(value.ravel())
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        into.append(np.array([value], dtype=np.float64))
    # None and strings (class names) carry no numbers: the record holds them beside the state.
    return into


def _flat(state: Any) -> FloatArray:
    parts = _numbers(state, [])
    return np.concatenate(parts).astype("<f8") if parts else np.zeros(0, dtype="<f8")


def _rebuild(like: Any, numbers: FloatArray, at: list[int]) -> Any:
    """A copy of `like` with its numbers taken, in order, from `numbers` (`at`: the next to take)."""
    if dataclasses.is_dataclass(like) and not isinstance(like, type):
        return dataclasses.replace(
            like, **{f.name: _rebuild(getattr(like, f.name), numbers, at) for f in dataclasses.fields(like)}
        )
    if isinstance(like, tuple):
        return tuple(_rebuild(item, numbers, at) for item in like)
    if isinstance(like, np.ndarray):
        taken = numbers[at[0] : at[0] + like.size]
        at[0] += like.size
        return np.array(taken, dtype=np.float64).reshape(like.shape)
    if isinstance(like, bool) or not isinstance(like, (int, float)):
        return like
    number = float(numbers[at[0]])
    at[0] += 1
    if isinstance(like, int):
        if not (math.isfinite(number) and number == int(number) and number >= 0):
            raise StateError(f"a count of intervals is {number!r}")
        return int(number)
    return number


def pack(name: str, state: MetricState) -> verdicts.MetricEvidence:
    """The record of one metric's state (exact: float64s, so the next look continues bit for bit)."""
    numbers = _flat(state)
    edges = len(state.edges) if isinstance(state, LatencyState) else 0
    classes = state.classes if isinstance(state, DistributionState) else ()
    return verdicts.MetricEvidence(
        name=name, edges=edges, classes=classes, state=base64.b64encode(numbers.tobytes()).decode("ascii")
    )


def unpack(metric: specs.MetricSpec, record: verdicts.MetricEvidence) -> MetricState:
    """A metric's state from its record; `StateError` when it does not fit the metric."""
    if record.classes != tuple(sorted(set(record.classes))):
        raise StateError(f"{metric.name}: classes are not sorted and distinct")
    like = initial(metric, edges=record.edges, classes=record.classes)
    try:
        raw = base64.b64decode(record.state.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise StateError(f"{metric.name}: the state is not base64 ({error})") from error
    expected = len(_flat(like))
    if len(raw) != 8 * expected:
        raise StateError(
            f"{metric.name}: the state holds {len(raw) // 8} numbers, the metric needs {expected}"
        )
    state: MetricState = _rebuild(like, np.frombuffer(raw, dtype="<f8").astype(np.float64), [0])
    if isinstance(state, LatencyState) and not (
        np.all(np.isfinite(state.edges)) and np.all(np.diff(state.edges) > 0)
    ):
        raise StateError(f"{metric.name}: the state's bucket edges are not increasing")
    return state
