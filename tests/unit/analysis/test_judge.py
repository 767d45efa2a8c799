"""The judge's rules on one release, and `modelrelease judge` on the documented example."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest

from analysis import judge, readings, reference, specs, verdicts
from analysis.tooling import observed, traffic_simulator
from controller.cli import main as cli

ROOT = pathlib.Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "judge-input.json"
TEMPLATE = reference.reference_template()


def _judged(
    scenario: traffic_simulator.Scenario, intervals: int = 30, *, final: bool = False
) -> verdicts.AnalysisSummary:
    canary, baseline = traffic_simulator.simulate_intervals(scenario, seeds=1, intervals=intervals, seed=5)
    return judge.assess(TEMPLATE, observed.interval_samples(TEMPLATE, canary, baseline, 0), final=final)


def test_a_canary_with_six_times_the_errors_fails_on_errors_with_evidence_and_interval() -> None:
    summary = _judged(
        traffic_simulator.Scenario("e", rps=500, canary=traffic_simulator.Behaviour(error_rate=0.03)),
        intervals=5,
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
    summary = _judged(traffic_simulator.Scenario("good", rps=3000), intervals=40)
    assert summary.verdict == verdicts.Verdict.PASS, summary.rule
    assert all(m.verdict == verdicts.Verdict.PASS for m in summary.metrics)


def test_no_pass_before_the_minimum_duration_even_when_the_bounds_are_inside() -> None:
    summary = _judged(traffic_simulator.Scenario("good", rps=3000), intervals=4)
    assert summary.verdict == verdicts.Verdict.RUNNING
    gpu = next(m for m in summary.metrics if m.name == "gpu-utilization")
    assert gpu.verdict == verdicts.Verdict.RUNNING


def test_an_undecided_run_at_max_duration_is_inconclusive_never_a_silent_pass() -> None:
    summary = _judged(traffic_simulator.Scenario("thin", rps=10), intervals=10, final=True)
    assert summary.verdict == verdicts.Verdict.INCONCLUSIVE
    assert summary.rule is not None
    assert "maxDuration reached" in summary.rule


def test_a_canary_without_requests_while_the_baseline_serves_is_inconclusive() -> None:
    summary = _judged(traffic_simulator.Scenario("silent", rps=300, canary_weight=0.0), intervals=10)
    assert summary.verdict == verdicts.Verdict.INCONCLUSIVE
    assert summary.rule is not None
    assert "no canary data" in summary.rule


def test_a_canary_with_no_series_at_all_while_the_baseline_serves_is_inconclusive_not_left_running() -> None:
    # The canary's pods never exported (a wrong label, a scrape that never reached them): every
    # interval has baseline counts and nothing for the canary, not even zeros.
    template = _one_metric(
        {
            "name": "errors",
            "kind": "errorRate",
            "errorRate": {"requests": "r", "errors": "e"},
            "margin": {"relative": 0.2},
        }
    )
    absent = tuple(
        readings.IntervalSample(baseline=readings.ArmSample(requests=300.0, errors=1.0)) for _ in range(5)
    )
    summary = judge.assess(template, {"errors": absent})
    assert summary.verdict == verdicts.Verdict.INCONCLUSIVE
    assert summary.rule == "no canary data for errors while the baseline had traffic: never a pass"
    # Baseline traffic from before the run started (the canary not yet due: its pods starting, its
    # targets not yet discovered) does not count toward the canary's silence.
    assert judge.assess(template, {"errors": absent}, canary_due=4).verdict == verdicts.Verdict.RUNNING


def test_a_non_critical_metric_failing_does_not_roll_back() -> None:
    relaxed = specs.AnalysisTemplateSpec.model_validate(
        {
            **TEMPLATE.to_manifest(),
            "metrics": [
                {**m.to_manifest(), "critical": m.name != "gpu-utilization"} for m in TEMPLATE.metrics
            ],
        }
    )
    hot = traffic_simulator.Scenario(
        "hot", rps=300, canary=dataclasses.replace(traffic_simulator.Behaviour(), gpu_utilisation=0.8)
    )
    canary, baseline = traffic_simulator.simulate_intervals(hot, seeds=1, intervals=20, seed=5)
    summary = judge.assess(relaxed, observed.interval_samples(relaxed, canary, baseline, 0))
    gpu = next(m for m in summary.metrics if m.name == "gpu-utilization")
    assert gpu.verdict == verdicts.Verdict.FAIL
    assert summary.verdict != verdicts.Verdict.FAIL


def test_histograms_whose_edges_change_between_intervals_are_refused_with_the_interval_named() -> None:
    template = specs.AnalysisTemplateSpec.model_validate(
        {"metrics": [{"name": "lat", "kind": "latency", "latency": {"buckets": "x"}}]}
    )
    first = readings.ArmSample(buckets={"0.1": 1, "+Inf": 2})
    second = readings.ArmSample(buckets={"0.2": 1, "+Inf": 2})
    series = {
        "lat": (
            readings.IntervalSample(canary=first, baseline=first),
            readings.IntervalSample(canary=second, baseline=first),
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
    assert {m["name"] for m in judgement["metrics"]} == {"errors", "latency", "gpu-utilization"}


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


def test_a_run_without_a_complete_interval_is_running_and_inconclusive_at_max_duration() -> None:
    empty = readings.IntervalSample()
    for series in (
        {m.name: () for m in TEMPLATE.metrics},
        {m.name: (empty, empty) for m in TEMPLATE.metrics},
    ):
        assert judge.assess(TEMPLATE, series).verdict == verdicts.Verdict.RUNNING
        assert judge.assess(TEMPLATE, series, final=True).verdict == verdicts.Verdict.INCONCLUSIVE


def _one_metric(metric: dict[str, object]) -> specs.AnalysisTemplateSpec:
    return specs.AnalysisTemplateSpec.model_validate(
        {"metrics": [{"minDuration": "2m", "minRequests": 0, **metric}]}
    )


def _gauge_series(canary: list[float], baseline: list[float]) -> tuple[readings.IntervalSample, ...]:
    return tuple(
        readings.IntervalSample(canary=readings.ArmSample(value=c), baseline=readings.ArmSample(value=b))
        for c, b in zip(canary, baseline, strict=True)
    )


def test_a_gauge_that_is_bad_when_it_falls_fails_when_the_canary_drops_below_the_margin() -> None:
    template = _one_metric(
        {
            "name": "throughput",
            "kind": "gauge",
            "gauge": {"value": "x"},
            "badDirection": "decrease",
            "margin": {"relative": 0.05},
        }
    )
    baseline = [100.0 + (i % 3) for i in range(20)]
    lower = judge.assess(template, {"throughput": _gauge_series([b * 0.8 for b in baseline], baseline)})
    higher = judge.assess(template, {"throughput": _gauge_series([b * 1.2 for b in baseline], baseline)})
    assert lower.verdict == verdicts.Verdict.FAIL
    assert higher.metrics[0].verdict == verdicts.Verdict.PASS


def test_a_template_of_gauges_alone_never_passes_because_nothing_shows_the_canary_served() -> None:
    """An idle GPU looks as good as a busy one: without a request count there is no pass."""
    template = _one_metric({"name": "gpu", "kind": "gauge", "gauge": {"value": "x"}})
    idle = _gauge_series([0.5] * 20, [0.5] * 20)
    running = judge.assess(template, {"gpu": idle})
    final = judge.assess(template, {"gpu": idle}, final=True)
    assert running.metrics[0].verdict == verdicts.Verdict.PASS
    assert running.verdict == verdicts.Verdict.RUNNING
    assert final.verdict == verdicts.Verdict.INCONCLUSIVE
    assert final.rule is not None
    assert "no metric counts the canary's requests" in final.rule


def test_a_gauge_canary_that_reports_nothing_is_never_a_pass() -> None:
    template = _one_metric({"name": "gpu", "kind": "gauge", "gauge": {"value": "x"}})
    silent = tuple(readings.IntervalSample(baseline=readings.ArmSample(value=0.5)) for _ in range(5))
    summary = judge.assess(template, {"gpu": silent})
    assert summary.verdict == verdicts.Verdict.INCONCLUSIVE
    assert summary.rule is not None
    assert "no canary data for gpu" in summary.rule


def test_the_share_of_requests_above_the_slo_edge_is_judged_like_an_error_rate() -> None:
    template = _one_metric(
        {
            "name": "lat",
            "kind": "latency",
            "latency": {"buckets": "x", "quantiles": [0.5], "sloSeconds": 0.2},
            "margin": {"relative": 0.1},
        }
    )

    def sample(total: float, above: float) -> readings.ArmSample:
        return readings.ArmSample(buckets={"0.1": total / 2, "0.2": total - above, "+Inf": total})

    series = tuple(
        readings.IntervalSample(canary=sample(1000, 50), baseline=sample(9000, 90)) for _ in range(5)
    )
    summary = judge.assess(template, {"lat": series})
    slo = next(m for m in summary.metrics if m.name == "lat:above-0.2s")
    assert slo.verdict == verdicts.Verdict.FAIL
    assert slo.canary == 0.05
    assert slo.baseline == 0.01


def test_output_drift_in_a_rare_class_fails_the_distribution() -> None:
    drifted = traffic_simulator.Scenario(
        "drift",
        rps=1000,
        canary=dataclasses.replace(traffic_simulator.Behaviour(), class_shares=(0.66, 0.2, 0.1, 0.04)),
    )
    summary = _judged(drifted, intervals=10)
    predictions = next(m for m in summary.metrics if m.name == "predictions")
    assert predictions.verdict == verdicts.Verdict.FAIL
    assert predictions.message is not None
    assert "class 'fraud'" in predictions.message


PROMETHEUS_DEFAULT = traffic_simulator.REAL_EDGES["prometheus-default"]


def _judged_on(
    scenario: traffic_simulator.Scenario, edges: traffic_simulator.FloatArray, intervals: int, seed: int = 5
) -> verdicts.AnalysisSummary:
    canary, baseline = traffic_simulator.simulate_intervals(
        scenario, seeds=1, intervals=intervals, seed=seed, edges=edges
    )
    return judge.assess(TEMPLATE, observed.interval_samples(TEMPLATE, canary, baseline, 0, edges))


def test_a_p99_a_quarter_slower_fails_on_buckets_two_and_a_half_times_apart() -> None:
    slower = traffic_simulator.Behaviour().with_quantile_change(0.99, 0.25)
    summary = _judged_on(traffic_simulator.Scenario("p99", rps=1000, canary=slower), PROMETHEUS_DEFAULT, 30)
    p99 = next(m for m in summary.metrics if m.name == "latency-p99")
    assert summary.verdict == verdicts.Verdict.FAIL, summary.rule
    assert p99.verdict == verdicts.Verdict.FAIL
    assert p99.resolution is not None
    assert "le=0.25s" in p99.resolution  # the first edge above the baseline's p99 of about 0.19 s
    assert p99.ci_low is not None
    assert p99.ci_low > 0.1  # the margin is exceeded at the confidence bound


def test_a_good_release_passes_on_coarse_buckets_and_reports_the_power_it_reached() -> None:
    summary = _judged_on(traffic_simulator.Scenario("good", rps=1000), PROMETHEUS_DEFAULT, 30)
    assert summary.verdict == verdicts.Verdict.PASS, summary.rule
    for metric in summary.metrics:
        assert metric.power is not None
        assert metric.power >= 1 - TEMPLATE.beta, metric


def test_a_running_metric_says_how_close_it_is_to_passing_and_to_failing() -> None:
    summary = _judged_on(traffic_simulator.Scenario("thin", rps=50), PROMETHEUS_DEFAULT, 6)
    errors = next(m for m in summary.metrics if m.name == "errors")
    assert errors.verdict == verdicts.Verdict.RUNNING
    assert errors.message is not None
    assert "power" in errors.message
    assert "needed to fail" in errors.message


@pytest.mark.parametrize("seed", range(8))
def test_every_confidence_interval_contains_its_estimate(seed: int) -> None:
    slower = traffic_simulator.Behaviour().with_quantile_change(0.5, 0.03)
    scenario = traffic_simulator.Scenario(
        "mixed", rps=200, canary=slower, episodes_per_hour=3, pod_offset=0.02
    )
    for edges in (PROMETHEUS_DEFAULT, traffic_simulator.DEFAULT_EDGES):
        for metric in _judged_on(scenario, edges, 20, seed).metrics:
            if metric.effect is None:
                continue
            assert metric.ci_low is None or metric.ci_low <= metric.effect, metric
            assert metric.ci_high is None or metric.effect <= metric.ci_high, metric


def test_a_latency_arm_that_never_reported_is_no_error_and_never_a_pass() -> None:
    """A canary never scraped, or a label typo in its query: Inconclusive once the baseline has served
    for minDuration (2m here), not left Running until maxDuration."""
    template = _one_metric({"name": "lat", "kind": "latency", "latency": {"buckets": "x"}})
    reported = readings.ArmSample(buckets={"0.1": 900, "0.25": 990, "+Inf": 1000})
    series = {"lat": tuple(readings.IntervalSample(baseline=reported) for _ in range(10))}
    early = {"lat": series["lat"][:1]}
    assert judge.assess(template, early).verdict == verdicts.Verdict.RUNNING
    summary = judge.assess(template, series)
    assert summary.verdict == verdicts.Verdict.INCONCLUSIVE
    assert summary.rule is not None
    assert summary.rule.startswith("no canary data for lat")


def _write_input(tmp_path: pathlib.Path, document: dict[str, object]) -> pathlib.Path:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(document))
    return path


def test_per_second_rates_where_counts_belong_exit_2_naming_the_field(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(EXAMPLE.read_text())
    document["observations"]["errors"][2]["canary"] = {"requests": 29.65, "errors": 1.0}
    assert cli.main(["judge", "--input", str(_write_input(tmp_path, document))]) == 2
    error = capsys.readouterr().err
    assert "observations.errors[2].canary" in error
    assert "requests is 29.65" in error
    assert "not per-second rates" in error
    assert "Traceback" not in error


def test_metrics_with_different_interval_counts_exit_2_listing_them(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(EXAMPLE.read_text())
    document["observations"]["errors"] = document["observations"]["errors"][:-1]
    assert cli.main(["judge", "--input", str(_write_input(tmp_path, document))]) == 2
    error = capsys.readouterr().err
    assert "every metric needs the same intervals" in error
    assert "errors: " in error
    assert "Traceback" not in error


def test_a_latency_arm_without_data_through_the_cli_prints_a_judgement(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(EXAMPLE.read_text())
    for interval in document["observations"]["latency"]:
        interval["canary"] = {}
    assert cli.main(["judge", "--input", str(_write_input(tmp_path, document))]) == 0
    judgement = json.loads(capsys.readouterr().out)
    latency = next(m for m in judgement["metrics"] if m["name"] == "latency")
    assert latency["verdict"] == "Running"
