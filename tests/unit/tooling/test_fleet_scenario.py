"""A fleet scenario says how each model version serves; a wrong field is named, not ignored."""

from __future__ import annotations

import pytest

from controller.tooling import fleet


def test_a_version_with_a_slower_tail_and_more_errors_serves_that_way() -> None:
    scenario = fleet.FleetScenario.from_document(
        {
            "requestsPerSecond": 500,
            "buckets": "vllm-ttft",
            "versions": {3: {"p99Change": 0.3, "errorRate": 0.015}},
        }
    )
    base, slow = scenario.behaviour("2"), scenario.behaviour("3")
    assert scenario.requests_per_second == 500
    assert slow.error_rate == 0.015
    assert slow.latency_quantile(0.99) == pytest.approx(base.latency_quantile(0.99) * 1.3, rel=1e-3)
    assert base == scenario.base  # a version the scenario does not name behaves as the base


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"requestPerSecond": 5}, "scenario: requestPerSecond: not a scenario field"),
        ({"buckets": "fine"}, "scenario: buckets: 'fine' is not one of"),
        ({"versions": {"3": {"p99": 0.3}}}, "scenario: versions.3.p99: not a behaviour field"),
    ],
)
def test_a_wrong_field_is_refused_with_its_path(document: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        fleet.FleetScenario.from_document(document)
