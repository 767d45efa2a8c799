"""The judge's rules on one release, and `modelrelease judge` on the documented example."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest

from analysis import judge, observations, reference, simulator, specs, verdicts
from controller.cli import main as cli
from tests.unit.analysis import simulated

ROOT = pathlib.Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "judge-input.json"
TEMPLATE = reference.reference_template()


def _judged(
    scenario: simulator.Scenario, intervals: int = 30, *, final: bool = False
) -> verdicts.AnalysisSummary:
    canary, baseline = simulator.simulate_intervals(scenario, seeds=1, intervals=intervals, seed=5)
    return judge.assess(TEMPLATE, simulated.interval_samples(TEMPLATE, canary, baseline, 0), final=final)


def test_a_canary_with_six_times_the_errors_fails_on_errors_with_evidence_and_interval() -> None:
    summary = _judged(
        simulator.Scenario("e", rps=500, canary=simulator.Behaviour(error_rate=0.03)), intervals=5
    )
    assert summary.verdict == verdicts.Verdict.FAIL
    errors = next(m for m in summary.metrics if m.name == "errors")
    assert errors.evidence is not None
    assert errors.alpha is not None
    assert errors.evidence >= 1 / errors.alpha
    assert errors.ci_low is not None
    assert errors.ci_low > 0.2
    assert summary.rule is not None
    assert summary.rule.startswith("errors: evidence")


def test_a_good_release_with_plenty_of_traffic_passes_every_critical_metric() -> None:
    summary = _judged(simulator.Scenario("good", rps=3000), intervals=40)
    assert summary.verdict == verdicts.Verdict.PASS, summary.rule
    assert all(m.verdict == verdicts.Verdict.PASS for m in summary.metrics)


def test_no_pass_before_the_minimum_duration_even_when_the_bounds_are_inside() -> None:
    summary = _judged(simulator.Scenario("good", rps=3000), intervals=4)
    assert summary.verdict == verdicts.Verdict.RUNNING
    gpu = next(m for m in summary.metrics if m.name == "gpu-utilization")
    assert gpu.verdict == verdicts.Verdict.RUNNING


def test_an_undecided_run_at_max_duration_is_inconclusive_never_a_silent_pass() -> None:
    summary = _judged(simulator.Scenario("thin", rps=10), intervals=10, final=True)
    assert summary.verdict == verdicts.Verdict.INCONCLUSIVE
    assert summary.rule is not None
    assert "maxDuration reached" in summary.rule


def test_a_canary_without_requests_while_the_baseline_serves_is_inconclusive() -> None:
    summary = _judged(simulator.Scenario("silent", rps=300, canary_weight=0.0), intervals=10)
    assert summary.verdict == verdicts.Verdict.INCONCLUSIVE
    assert summary.rule is not None
    assert "no canary data" in summary.rule


def test_a_non_critical_metric_failing_does_not_roll_back() -> None:
    relaxed = specs.AnalysisTemplateSpec.model_validate(
        {
            **TEMPLATE.to_manifest(),
            "metrics": [
                {**m.to_manifest(), "critical": m.name != "gpu-utilization"} for m in TEMPLATE.metrics
            ],
        }
    )
    hot = simulator.Scenario(
        "hot", rps=300, canary=dataclasses.replace(simulator.Behaviour(), gpu_utilisation=0.8)
    )
    canary, baseline = simulator.simulate_intervals(hot, seeds=1, intervals=20, seed=5)
    summary = judge.assess(relaxed, simulated.interval_samples(relaxed, canary, baseline, 0))
    gpu = next(m for m in summary.metrics if m.name == "gpu-utilization")
    assert gpu.verdict == verdicts.Verdict.FAIL
    assert summary.verdict != verdicts.Verdict.FAIL


def test_histograms_whose_edges_change_between_intervals_are_refused_with_the_interval_named() -> None:
    template = specs.AnalysisTemplateSpec.model_validate(
        {"metrics": [{"name": "lat", "kind": "latency", "latency": {"buckets": "x"}}]}
    )
    first = observations.ArmSample(buckets={"0.1": 1, "+Inf": 2})
    second = observations.ArmSample(buckets={"0.2": 1, "+Inf": 2})
    series = {
        "lat": (
            observations.IntervalSample(canary=first, baseline=first),
            observations.IntervalSample(canary=second, baseline=first),
        )
    }
    with pytest.raises(judge.InputError, match=r"observations.lat\[1\].canary.buckets: edges differ"):
        judge.assess(template, series)


def test_the_documented_example_prints_a_fail_judgement_and_exits_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["judge", "--input", str(EXAMPLE)]) == 0
    judgement = json.loads(capsys.readouterr().out)
    assert judgement["verdict"] == "Fail"
    assert judgement["rule"].startswith("errors:")
    assert {m["name"] for m in judgement["metrics"]} == {"errors", "latency:p99", "gpu-utilization"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["observations"]["errors"][2]["canary"].update(errors=10**9),
            "observations.errors[2].canary: errors (1e+09) exceed requests",
        ),
        (lambda d: d["observations"].pop("latency"), "no intervals for metric(s) latency"),
        (lambda d: d["template"]["metrics"][0].update(kind="errorrate"), "template.metrics[0].kind"),
        (
            lambda d: d["observations"]["latency"][0]["baseline"]["buckets"].pop("+Inf"),
            "buckets need a '+Inf' edge",
        ),
        (
            lambda d: d["observations"]["gpu-utilization"][1].update(canary={"requests": 5}),
            "gpu-utilization[1].canary: a gauge metric needs value",
        ),
    ],
)
def test_bad_judge_input_exits_two_naming_the_field(
    change: object, message: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(EXAMPLE.read_text())
    change(document)  # type: ignore[operator]
    broken = tmp_path / "input.json"
    broken.write_text(json.dumps(document))
    assert cli.main(["judge", "--input", str(broken)]) == 2
    assert message in capsys.readouterr().err
