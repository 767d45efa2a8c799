"""Calibration: good releases judged at every interval are rarely rolled back; bad ones are caught.

Bound: with 500 independent good releases, if the judge's false-rollback probability were
exactly α = 5 %, the number of false rollbacks would exceed the 99th percentile of
Binomial(500, 0.05) = 37 with probability ≤ 1 %. The judge is anytime-valid, so its true rate
is ≤ α whatever the number of looks; the test asserts the count stays within that bound.
Seeds are fixed, so the outcome is deterministic; changing the judge can make it fail.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from analysis import judge, reference, verdicts
from analysis.tooling import batch, observed, traffic_simulator

RELEASES = 500
TEMPLATE = reference.reference_template()
BOUND = int(stats.binom.ppf(0.99, RELEASES, TEMPLATE.alpha))
INTERVALS = 60

AUTOSCALED = "A/A at 100 rps resized mid-analysis: load and the canary's share of pods move"
RESIZES = ((0, 0.25), (1200, 1 / 3), (2400, 0.5))
AUTOSCALED_GOOD = traffic_simulator.Scenario(
    "autoscaled", rps=100, diurnal_amplitude=0.6, diurnal_phase=2.0, pod_offset=0.02, weight_schedule=RESIZES
)

LAYOUTS = {
    "Prometheus default buckets": traffic_simulator.REAL_EDGES["prometheus-default"],
    "vLLM TTFT buckets": traffic_simulator.REAL_EDGES["vllm-ttft"],
    "TGI buckets": traffic_simulator.REAL_EDGES["tgi"],
    "fine buckets": traffic_simulator.DEFAULT_EDGES,
}
GOOD = {
    "A/A at 100 rps with diurnal load, bursts and pod offsets": traffic_simulator.Scenario(
        "aa", rps=100, pod_offset=0.02, diurnal_amplitude=0.3, diurnal_phase=1.0, bursts_per_hour=3
    ),
    "A/A at 1000 rps with slowdowns of minutes landing on either arm": traffic_simulator.Scenario(
        "episodes", rps=1000, episodes_per_hour=3
    ),
    "A/A at 1000 rps with a warm-up longer than the window's delay": traffic_simulator.Scenario(
        "warmup", rps=1000, warmup_seconds=180
    ),
    "A/A at 1000 rps with a warm-up and weights changing between steps": traffic_simulator.Scenario(
        "steps",
        rps=1000,
        warmup_seconds=30,
        weight_schedule=((0, 0.1), (1380, 0.25), (2580, 0.5)),
    ),
    # An autoscaled release resized twice mid-analysis: the load halves and then doubles (the
    # reason an HPA resizes), and the replica router's canary share moves with the size (1 of 4
    # pods, 2 of 6, 1 of 2). The judge compares per-request rates, so volume shifts must not bias it.
    AUTOSCALED: AUTOSCALED_GOOD,
    # The sharpest case: the canary exactly at the edge of its margins (errors +0.1 point,
    # p99 +10 %, GPU +5 %), where the null is tight and a miscalibrated test shows first.
    "canary exactly at its margins at 1000 rps": traffic_simulator.Scenario(
        "edge",
        rps=1000,
        canary=dataclasses.replace(
            traffic_simulator.Behaviour().with_quantile_change(0.99, 0.10),
            error_rate=0.006,
            gpu_utilisation=0.5775,
        ),
    ),
}


def _outcome(
    scenario: traffic_simulator.Scenario,
    seed: int,
    edges: traffic_simulator.FloatArray = traffic_simulator.DEFAULT_EDGES,
) -> batch.Outcome:
    canary, baseline = traffic_simulator.simulate_intervals(
        scenario, seeds=RELEASES, intervals=INTERVALS, seed=seed, start_seconds=180, edges=edges
    )
    return batch.outcomes(batch.sub_tests(TEMPLATE, canary, baseline, edges))


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_releases_judged_at_every_interval_are_rolled_back_within_the_binomial_bound(
    name: str, layout: str
) -> None:
    outcome = _outcome(GOOD[name], seed=11, edges=LAYOUTS[layout])
    false_rollbacks = int((outcome.fail_at >= 0).sum())
    passed = int((outcome.pass_at >= 0).sum())
    print(f"{name} on {layout}: {false_rollbacks}/{RELEASES} false rollbacks, {passed} passed")
    assert BOUND == 37
    assert false_rollbacks <= BOUND, f"{false_rollbacks}/{RELEASES} false rollbacks: {set(outcome.failed_by)}"


def test_twice_the_errors_at_1000_rps_are_caught_in_almost_every_release() -> None:
    bad = traffic_simulator.Scenario("errors", rps=1000, canary=traffic_simulator.Behaviour(error_rate=0.01))
    outcome = _outcome(bad, seed=12)
    caught = outcome.fail_at >= 0
    # Power, not validity: at 60 errors/min on the canary the evidence crosses within minutes.
    assert caught.mean() >= 0.99
    assert np.median(outcome.fail_at[caught]) <= 5
    assert {name for name, hit in zip(outcome.failed_by, caught, strict=True) if hit} == {"errors"}


def test_twice_the_errors_are_caught_as_often_when_the_release_is_resized_mid_analysis() -> None:
    """Power under resizes: the same doubled error rate, with and without the autoscaled schedule."""
    bad = traffic_simulator.Behaviour(error_rate=0.01)
    steady = traffic_simulator.Scenario("steady", rps=1000, canary=bad, canary_weight=0.25)
    resized = dataclasses.replace(AUTOSCALED_GOOD, rps=1000, canary=bad)
    caught = {
        name: _outcome(scenario, seed=15).fail_at >= 0
        for name, scenario in (("steady", steady), ("resized", resized))
    }
    assert caught["resized"].mean() >= 0.99
    assert caught["steady"].mean() >= 0.99


def test_a_fixed_horizon_test_looked_at_every_interval_would_exceed_alpha() -> None:
    """Why anytime validity matters: a z-test on the error counts at each look inflates false alarms."""
    canary, baseline = traffic_simulator.simulate_intervals(
        dataclasses.replace(GOOD["A/A at 100 rps with diurnal load, bursts and pod offsets"], rps=1000),
        seeds=RELEASES,
        intervals=INTERVALS,
        seed=13,
    )
    xc, nc = np.cumsum(canary.errors, axis=1), np.cumsum(canary.requests, axis=1)
    xb, nb = np.cumsum(baseline.errors, axis=1), np.cumsum(baseline.requests, axis=1)
    pooled = (xc + xb) / (nc + nb)
    z = (xc / nc - xb / nb) / np.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nb))
    naive = (z > stats.norm.ppf(1 - TEMPLATE.alpha)).any(axis=1).mean()
    assert naive > 2 * TEMPLATE.alpha  # repeated looks at a one-sided 5 % test: far above 5 %


def test_the_judge_and_the_batch_rules_agree_release_by_release() -> None:
    scenario = traffic_simulator.Scenario(
        "mixed", rps=300, canary=traffic_simulator.Behaviour(error_rate=0.0075), pod_offset=0.01
    )
    canary, baseline = traffic_simulator.simulate_intervals(scenario, seeds=12, intervals=30, seed=14)
    outcome = batch.outcomes(batch.sub_tests(TEMPLATE, canary, baseline, traffic_simulator.DEFAULT_EDGES))
    assert 0 < int((outcome.fail_at >= 0).sum()) < 12  # both kinds of release are in the sample
    for release in range(12):
        samples = observed.interval_samples(TEMPLATE, canary, baseline, release)
        # The batch's last interval is maxDuration: the judge's final look, where the fixed-horizon
        # test may pass; one look earlier, only the anytime test can.
        summary = judge.assess(TEMPLATE, samples, final=True)
        expected = verdicts.Verdict.FAIL if outcome.fail_at[release] >= 0 else None
        if expected is None and outcome.pass_at[release] >= 0:
            expected = verdicts.Verdict.PASS
        assert summary.verdict == (expected or verdicts.Verdict.INCONCLUSIVE), (release, summary.rule)
        earlier = judge.assess(TEMPLATE, {name: rows[:-1] for name, rows in samples.items()})
        anytime = 0 <= outcome.pass_at[release] < 29 and outcome.fail_at[release] < 0
        assert (earlier.verdict == verdicts.Verdict.PASS) == anytime, (release, earlier.rule)
