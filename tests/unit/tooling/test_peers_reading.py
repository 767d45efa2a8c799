"""How the side-by-side benchmark reads what each tool decided, and the p99 line the peers check."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from controller.tooling import fleet, peers

MODELRELEASE, FLAGGER, ARGO = peers.KINDS


def _obj(status: dict[str, Any], generation: int = 2) -> dict[str, Any]:
    return {"metadata": {"name": "x", "generation": generation}, "status": status}


def test_histogram_quantile_interpolates_within_the_bucket_the_rank_falls_in() -> None:
    edges = np.array([0.1, 0.25, 0.5])
    # 100 requests: 90 at or below 0.1, 99 at or below 0.25, 100 at or below 0.5.
    cumulative = np.array([90.0, 99.0, 100.0])
    assert peers.prometheus_quantile(edges, cumulative, 100, 0.5) == pytest.approx(0.1 * 50 / 90)
    assert peers.prometheus_quantile(edges, cumulative, 100, 0.95) == pytest.approx(0.1 + 0.15 * 5 / 9)
    # One request above the highest edge: the rank of the 99.5th falls in +Inf.
    assert peers.prometheus_quantile(edges, np.array([90.0, 99.0, 99.0]), 100, 0.995) == 0.5


def test_the_p99_line_sits_above_what_model_1_usually_shows_and_below_a_doubled_p99() -> None:
    """At 600 requests an interval (10 % of 100 requests/s for a minute) the stable's own p99
    crosses the line in about 1 interval of 100: above the p99 of its expected histogram."""
    scenario = fleet.FleetScenario(requests_per_second=100.0)
    line = peers.latency_line(scenario, 600, windows=2000)
    edges = scenario.edges
    expected = peers.prometheus_quantile(edges, scenario.behaviour("1").latency_cdf(edges), 1.0, 0.99)
    assert expected < line < 2 * expected


def test_each_tools_decision_is_read_from_its_own_status() -> None:
    assert peers.decision(MODELRELEASE, _obj({"phase": "RolledBack", "observedGeneration": 2}), {}) == (
        "rolled back"
    )
    promoted = {"phase": "Succeeded", "stableModelVersion": "2", "observedGeneration": 2}
    assert peers.decision(MODELRELEASE, _obj(promoted), {}) == "promoted"
    assert peers.decision(MODELRELEASE, _obj(promoted | {"observedGeneration": 1}), {}) is None  # stale
    assert peers.decision(FLAGGER, _obj({"phase": "Failed"}), {}) == "rolled back"
    assert peers.decision(FLAGGER, _obj({"phase": "Progressing"}), {}) is None
    before = _obj({"phase": "Healthy", "stableRS": "old"})
    assert peers.decision(ARGO, _obj({"phase": "Healthy", "stableRS": "old"}), before) is None
    assert peers.decision(ARGO, _obj({"phase": "Healthy", "stableRS": "new"}), before) == "promoted"
    assert peers.decision(ARGO, _obj({"phase": "Degraded", "abort": True}), before) == "rolled back"
