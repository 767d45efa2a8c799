"""The judge's rules over many simulated releases at once, for calibration and the benchmark.

`judge.assess` reads one release's observations; this module applies the same evidence
builders and the same levels to arrays with a leading release axis, and finds for every
release the first interval at which the judge would fail it and the first at which every
critical metric would pass. A test checks that both agree release by release.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
import numpy.typing as npt

from analysis import evidence, sequential, specs
from analysis.tooling import traffic_simulator

IntArray = npt.NDArray[np.int64]


@dataclasses.dataclass(frozen=True)
class SubTest:
    name: str
    found: evidence.Evidence
    alpha: float
    beta: float
    critical: bool
    exposure: npt.NDArray[np.bool_]  # (S, T): enough requests and duration by this interval


@dataclasses.dataclass(frozen=True)
class Outcome:
    fail_at: IntArray  # (S,) first interval index of a rollback, -1 for none
    pass_at: IntArray  # (S,) first interval index at which every critical metric passed, -1 for none
    failed_by: list[str]  # per release: the sub-test that failed first ("" when none)


def _exposure(metric: specs.MetricSpec, n_c: np.ndarray, n_b: np.ndarray, interval: timedelta) -> np.ndarray:
    seen = (n_c > 0) | (n_b > 0)
    duration = np.cumsum(seen, axis=-1) * interval.total_seconds()
    enough = duration >= metric.min_duration.total_seconds()
    if metric.kind != specs.MetricKind.GAUGE:
        enough &= (np.cumsum(n_c, axis=-1) >= metric.min_requests) & (
            np.cumsum(n_b, axis=-1) >= metric.min_requests
        )
    return np.asarray(enough, dtype=bool)


def sub_tests(
    template: specs.AnalysisTemplateSpec,
    canary: traffic_simulator.ArmCounts,
    baseline: traffic_simulator.ArmCounts,
    edges: np.ndarray,
) -> list[SubTest]:
    tests: list[SubTest] = []
    for metric in template.metrics:
        alpha = template.alpha_for(metric)
        relative, absolute = metric.margin.relative, metric.margin.absolute
        exposure = _exposure(metric, canary.requests, baseline.requests, template.interval)
        match metric.kind:
            case specs.MetricKind.ERROR_RATE:
                found = evidence.rate(
                    canary.requests, canary.errors, baseline.requests, baseline.errors, relative, absolute
                )
                tests.append(SubTest(metric.name, found, alpha, template.beta, metric.critical, exposure))
            case specs.MetricKind.LATENCY:
                assert metric.latency is not None
                quantiles = metric.latency.quantiles
                share = alpha / (len(quantiles) + (metric.latency.slo_seconds is not None))
                for q in quantiles:
                    found = evidence.latency_quantile(
                        canary.buckets,
                        canary.requests,
                        baseline.buckets,
                        baseline.requests,
                        edges,
                        q,
                        relative,
                    )
                    name = specs.quantile_test_name(metric, q)
                    tests.append(SubTest(name, found, share, template.beta, metric.critical, exposure))
                slo = metric.latency.slo_seconds
                if slo is not None:
                    edge = np.full(canary.requests.shape, evidence.slo_edge(edges, slo), dtype=np.int64)
                    n_c, x_c = evidence.exceedances(canary.buckets, canary.requests, edge)
                    n_b, x_b = evidence.exceedances(baseline.buckets, baseline.requests, edge)
                    found = evidence.rate(n_c, x_c, n_b, x_b, relative, absolute)
                    tests.append(
                        SubTest(
                            specs.slo_name(metric.name, slo),
                            found,
                            share,
                            template.beta,
                            metric.critical,
                            exposure,
                        )
                    )
            case specs.MetricKind.GAUGE:
                increase = metric.bad_direction == specs.BadDirection.INCREASE
                found = evidence.gauge(canary.gpu, baseline.gpu, relative, absolute, increase)
                tests.append(SubTest(metric.name, found, alpha, template.beta, metric.critical, exposure))
            case specs.MetricKind.DISTRIBUTION:
                found = evidence.distribution(canary.classes, baseline.classes, relative, absolute)
                tests.append(SubTest(metric.name, found, alpha, template.beta, metric.critical, exposure))
            case specs.MetricKind.AGREEMENT:
                raise ValueError("the traffic simulator does not model a shadow's comparisons with stable")
    return tests


def _final_z(found: evidence.Evidence, shape: tuple[int, ...]) -> np.ndarray:
    if found.final_z is None:
        return np.full(shape, -np.inf)
    return np.asarray(found.final_z)


def outcomes(tests: list[SubTest]) -> Outcome:
    deciding = [t for t in tests if t.critical] or tests
    fails = np.stack(
        [sequential.first_crossing(t.found.log_fail, t.found.threshold(t.alpha)) for t in deciding]
    )
    never = np.iinfo(np.int64).max
    fail_times = np.where(fails >= 0, fails, never)
    first = fail_times.min(axis=0)
    fail_at = np.where(first < never, first, -1)
    failed_by = [
        deciding[int(i)].name if fail_at[s] >= 0 else "" for s, i in enumerate(fail_times.argmin(axis=0))
    ]
    # Anytime passes at every interval; the fixed-horizon test only at the last one (maxDuration).
    horizon = np.zeros(deciding[0].exposure.shape, dtype=bool)
    horizon[..., -1] = True
    passing = np.stack(
        [
            (
                (t.found.log_pass >= t.found.log_pass_needed(t.alpha, t.beta))
                | (horizon & (_final_z(t.found, horizon.shape) >= t.found.z_pass_needed(t.alpha, t.beta)))
            )
            & t.exposure
            for t in deciding
        ]
    ).all(axis=0)
    pass_first = np.argmax(passing, axis=-1)
    pass_at = np.where(passing.any(axis=-1), pass_first, -1)
    return Outcome(fail_at=fail_at.astype(np.int64), pass_at=pass_at.astype(np.int64), failed_by=failed_by)
