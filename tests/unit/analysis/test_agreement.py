"""The agreement metric: a shadow's share of compared requests that disagree with stable, judged
against an absolute bound and anytime-valid. Fixed seeds; each test states the bound it checks."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import evidence, judge, readings, sequential, specs, verdicts

BOUND = 0.02  # "disagrees on at most 2 % of requests"
ALPHA, BETA = 0.05, 0.1
RUNS, INTERVALS = 2000, 60


def comparisons(
    share: float | np.ndarray, *, seed: int, per_interval: float = 200.0
) -> tuple[np.ndarray, np.ndarray]:
    """RUNS × INTERVALS compared-request counts (Poisson load) and their disagreements."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(per_interval, size=(RUNS, INTERVALS)).astype(np.float64)
    p = np.broadcast_to(np.asarray(share, dtype=np.float64), n.shape)
    return n, rng.binomial(n.astype(np.int64), p).astype(np.float64)


def failed(n: np.ndarray, x: np.ndarray) -> np.ndarray:
    found = evidence.agreement(n, x, BOUND)
    return np.asarray(sequential.first_crossing(found.log_fail, ALPHA) >= 0)


def passed_by(n: np.ndarray, x: np.ndarray) -> np.ndarray:
    found = evidence.agreement(n, x, BOUND)
    return np.asarray(sequential.first_crossing(found.log_pass, BETA))


def test_a_shadow_exactly_at_the_bound_is_failed_in_at_most_alpha_of_releases_looking_every_interval() -> (
    None
):
    n, x = comparisons(BOUND, seed=11)
    assert failed(n, x).mean() <= ALPHA  # Ville: P(ever ≥ 1/α) ≤ α under the null, however often looked at


def test_bursty_disagreement_averaging_the_bound_is_still_failed_in_at_most_alpha_of_releases() -> None:
    # One kind of request at a time: the share swings between 0.5 % and 3.5 % from interval to
    # interval (mean 2 %), far more than binomial noise; the dispersion tempering must absorb it.
    rng = np.random.default_rng(12)
    swings = np.where(rng.random((RUNS, INTERVALS)) < 0.5, 0.005, 0.035)
    n, x = comparisons(swings, seed=13)
    assert failed(n, x).mean() <= ALPHA


def test_a_shadow_that_disagrees_on_ten_percent_fails_within_six_intervals_in_nearly_every_release() -> None:
    n, x = comparisons(0.10, seed=14)
    crossing = sequential.first_crossing(evidence.agreement(n, x, BOUND).log_fail, ALPHA)
    assert ((crossing >= 0) & (crossing < 6)).mean() >= 0.99  # one interval adds at most AGREEMENT_CAP


def test_a_shadow_that_disagrees_on_half_a_percent_passes_within_thirty_intervals_in_most_releases() -> None:
    n, x = comparisons(0.005, seed=15)
    by = passed_by(n, x)
    assert ((by >= 0) & (by < 30)).mean() >= 0.95  # power 1 − β within 30 × 200 comparisons
    assert not failed(n, x).any()


def template(min_requests: int = 100) -> specs.AnalysisTemplateSpec:
    return specs.AnalysisTemplateSpec.model_validate(
        {
            "interval": "10s",
            "metrics": [
                {
                    "name": "agreement",
                    "kind": "agreement",
                    "agreement": {"comparisons": 'shadow_comparisons_total{revision="{{revision}}"}'},
                    "margin": {"absolute": BOUND},
                    "minRequests": min_requests,
                    "minDuration": "1m",
                }
            ],
        }
    )


def samples(agree: list[int], disagree: list[int]) -> tuple[readings.IntervalSample, ...]:
    return tuple(
        readings.IntervalSample(canary=readings.ArmSample(counts={"agree": a, "disagree": d}))
        for a, d in zip(agree, disagree, strict=True)
    )


def test_the_judge_fails_a_disagreeing_shadow_and_says_its_share_against_the_bound() -> None:
    summary = judge.assess(template(), {"agreement": samples([180] * 4, [20] * 4)})
    assert summary.verdict == verdicts.Verdict.FAIL
    [result] = summary.metrics
    assert result.canary == pytest.approx(0.1)
    assert result.baseline is None
    assert "disagrees on 10.00% of 800 compared requests (bound 2.00%)" in (result.message or "")


def test_the_judge_passes_an_agreeing_shadow_once_it_saw_enough_comparisons_for_long_enough() -> None:
    summary = judge.assess(template(), {"agreement": samples([999] * 30, [1] * 30)})
    assert summary.verdict == verdicts.Verdict.PASS, summary.rule


def test_an_agreement_metric_needs_a_share_bound() -> None:
    with pytest.raises(ValueError, match=r"margin\.absolute is the share of requests it may disagree on"):
        specs.MetricSpec.model_validate(
            {
                "name": "agreement",
                "kind": "agreement",
                "agreement": {"comparisons": "x"},
                "margin": {"relative": 0.1},
            }
        )


def test_minimum_duration_applies_to_the_shadow_too() -> None:
    summary = judge.assess(template(), {"agreement": samples([999] * 5, [0] * 5)})
    assert summary.verdict == verdicts.Verdict.RUNNING  # 5 × 10 s observed of the 1 m needed
    assert "waiting for minRequests/minDuration" in (summary.metrics[0].message or "")
