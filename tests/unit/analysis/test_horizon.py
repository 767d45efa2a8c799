"""The fixed-horizon pass at maxDuration, and the latency edge above the quantile.

Bounds. A canary worse by exactly its margin must pass with probability ≤ β = 10 % (the anytime
e-process spends 30 % of it, the fixed-horizon test at maxDuration the rest): over 1,000 such
releases the passes stay at or below the 99th percentile of Binomial(1000, 0.1) = 123. A good
canary's error test at 100 requests/s has about 85 % power looked at once at 60 minutes (the
normal approximation: ln 1.2 / sd of the log ratio of 180 and 1,620 errors ≈ 2.3 standard
errors); with the horizon test the judge passes at least 78 % of 400 A/A releases, where the
anytime test alone passed about 70 %. Seeds are fixed, so outcomes are deterministic.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import stats

from analysis import judge, reference, specs, verdicts
from analysis.tooling import batch, judge_benchmark, observed, traffic_simulator

ERRORS_ONLY = specs.AnalysisTemplateSpec.model_validate(
    {
        **reference.reference_manifest()["spec"],
        "metrics": [reference.reference_manifest()["spec"]["metrics"][0]],
    }
)
EDGES = traffic_simulator.REAL_EDGES["prometheus-default"]


def _outcome(scenario: traffic_simulator.Scenario, releases: int, seed: int) -> tuple[batch.Outcome, tuple]:
    arms = traffic_simulator.simulate_intervals(
        scenario, seeds=releases, intervals=60, seed=seed, start_seconds=180, edges=EDGES
    )
    return batch.outcomes(batch.sub_tests(ERRORS_ONLY, *arms, EDGES)), arms


def test_a_canary_worse_by_exactly_its_margin_passes_in_at_most_beta_of_releases() -> None:
    at_margin = dataclasses.replace(traffic_simulator.Behaviour(), error_rate=0.006)  # ×1.2 of 0.5 %
    outcome, _ = _outcome(traffic_simulator.Scenario("margin", rps=100, canary=at_margin), 1000, seed=21)
    passed = int((outcome.pass_at >= 0).sum())
    bound = int(stats.binom.ppf(0.99, 1000, ERRORS_ONLY.beta))
    print(f"{passed}/1000 canaries at the margin passed (bound {bound})")
    assert bound == 123
    assert passed <= bound


def test_good_canaries_the_anytime_test_left_undecided_pass_the_fixed_horizon_test_at_max_duration() -> None:
    outcome, _ = _outcome(traffic_simulator.Scenario("aa", rps=100), 400, seed=22)
    passed = outcome.pass_at >= 0
    at_horizon = outcome.pass_at == 59
    print(f"passed {passed.mean():.1%}, of which at maxDuration {at_horizon.mean():.1%}")
    assert passed.mean() >= 0.78
    assert at_horizon.mean() >= 0.1  # the horizon test is what carries them, not the anytime one
    assert (outcome.fail_at < 0).all()


def test_the_judge_passes_at_max_duration_only_on_the_final_look_and_says_which_test_passed() -> None:
    outcome, (canary, baseline) = _outcome(traffic_simulator.Scenario("aa", rps=100), 40, seed=23)
    release = int(np.flatnonzero(outcome.pass_at == 59)[0])
    samples = observed.interval_samples(ERRORS_ONLY, canary, baseline, release, EDGES)
    assert judge.assess(ERRORS_ONLY, samples).verdict == verdicts.Verdict.RUNNING
    final = judge.assess(ERRORS_ONLY, samples, final=True)
    assert final.verdict == verdicts.Verdict.PASS, final.rule
    assert final.metrics[0].message is not None
    assert final.metrics[0].message.startswith("fixed-horizon test at maxDuration: z ")


def test_a_tail_regression_between_coarse_edges_is_tested_at_the_edge_above_the_p99() -> None:
    """p99 0.33 s between 0.25 s and 0.5 s: below it the unmoved body dilutes a slower slow path."""
    base = judge_benchmark.BATCHING
    scenario = traffic_simulator.Scenario(
        "tail", rps=1000, baseline=base, canary=base.with_quantile_change(0.99, 0.25)
    )
    template = reference.reference_template()
    canary, baseline = traffic_simulator.simulate_intervals(
        scenario, seeds=1, intervals=20, seed=24, start_seconds=180, edges=EDGES
    )
    summary = judge.assess(template, observed.interval_samples(template, canary, baseline, 0, EDGES))
    p99 = next(m for m in summary.metrics if m.name == "latency-p99")
    assert p99.verdict == verdicts.Verdict.FAIL, p99
    assert p99.resolution is not None
    assert "le=0.5s, the first edge at or above the baseline's" in p99.resolution
