"""The judge replayed look by look (the verdict report's core): each look is the judge on the
intervals so far, so the replay decides where and as the controller did."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from analysis import judge, readings, reference, timeline, verdicts
from analysis.tooling import observed, traffic_simulator

TEMPLATE = reference.reference_template()


def _series(
    scenario: traffic_simulator.Scenario, intervals: int
) -> Mapping[str, Sequence[readings.IntervalSample]]:
    canary, baseline = traffic_simulator.simulate_intervals(scenario, seeds=1, intervals=intervals, seed=5)
    return observed.interval_samples(TEMPLATE, canary, baseline, 0)


def test_a_bad_canary_is_running_until_one_look_fails_it_and_that_look_is_the_judge_on_its_prefix() -> None:
    bad = traffic_simulator.Scenario("e", rps=500, canary=traffic_simulator.Behaviour(error_rate=0.03))
    series = _series(bad, 8)
    replayed = timeline.replay(TEMPLATE, series)
    assert len(replayed.looks) == 8
    decided = replayed.decided
    assert decided is not None
    assert decided.summary.verdict == verdicts.Verdict.FAIL
    assert all(look.summary.verdict == verdicts.Verdict.RUNNING for look in replayed.looks[: decided.index])
    prefix = {name: tuple(intervals[: decided.index + 1]) for name, intervals in series.items()}
    assert decided.summary == judge.assess(TEMPLATE, prefix)
    errors = decided.metric("errors")
    assert errors is not None
    assert errors.evidence is not None
    assert errors.evidence >= replayed.threshold("errors")
    assert decided.canary_requests is not None
    assert decided.baseline_requests is not None
    assert decided.baseline_requests > decided.canary_requests > 0


def test_an_undecided_run_that_reached_max_duration_ends_inconclusive_at_its_last_look_only() -> None:
    quiet = traffic_simulator.Scenario("quiet", rps=2)
    replayed = timeline.replay(TEMPLATE, _series(quiet, 4), final=True)
    assert [look.summary.verdict for look in replayed.looks] == [verdicts.Verdict.RUNNING] * 3 + [
        verdicts.Verdict.INCONCLUSIVE
    ]
