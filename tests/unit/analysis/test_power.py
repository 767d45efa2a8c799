"""The traffic-aware step length: the estimate of when a good canary passes, against the judge itself."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import power, specs
from analysis.tooling import batch, traffic_simulator

ERRORS_ONLY = specs.AnalysisTemplateSpec.model_validate(
    {
        "metrics": [
            {
                "name": "errors",
                "kind": "errorRate",
                "errorRate": {"requests": "r", "errors": "e"},
                "margin": {"relative": 0.2, "absolute": 0.001},
                "minRequests": 0,
                "minDuration": "1m",
            }
        ]
    }
)


def test_the_estimated_time_to_pass_is_within_a_factor_two_of_the_judges_median() -> None:
    """Bound: the estimate ignores the mixture's and the dispersion's cost, so it may be early, not
    more than 2× off; 200 seeded good releases at 300 requests/s, a 0.5 % error rate, 10 % canary."""
    estimate = power.estimate_step(ERRORS_ONLY, requests_per_second=300, canary_share=0.1, error_rate=0.005)
    canary, baseline = traffic_simulator.simulate_intervals(
        traffic_simulator.Scenario("aa", rps=300), seeds=200, intervals=90, seed=21
    )
    outcome = batch.outcomes(batch.sub_tests(ERRORS_ONLY, canary, baseline, traffic_simulator.DEFAULT_EDGES))
    assert (outcome.pass_at >= 0).mean() >= 0.9
    observed_minutes = float(np.median(outcome.pass_at[outcome.pass_at >= 0] + 1))
    estimated_minutes = estimate.duration.total_seconds() / 60
    print(f"estimated {estimated_minutes:.1f} min, observed median {observed_minutes:.1f} min")
    assert 0.5 <= observed_minutes / estimated_minutes <= 2.0


def test_more_traffic_or_a_wider_margin_shortens_the_step() -> None:
    def minutes(rps: float, error_rate: float) -> float:
        step = power.estimate_step(
            ERRORS_ONLY, requests_per_second=rps, canary_share=0.1, error_rate=error_rate
        )
        return step.duration.total_seconds() / 60

    assert minutes(1000, 0.005) < minutes(100, 0.005)
    # On a 0.1 % base the 0.1-point floor is a ×2 margin: far fewer requests needed.
    assert minutes(100, 0.001) < minutes(100, 0.005)


def test_an_impossible_canary_share_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="canary share 1 is not between 0 and 1"):
        power.estimate_step(ERRORS_ONLY, requests_per_second=100, canary_share=1.0, error_rate=0.005)
