"""The judge never fails on an observations document the schema admits (Hypothesis, 200 examples in CI).

Each example is a `modelrelease judge --input` document: a template with every metric kind (an
error rate; latency with two quantiles and an SLO; a per-request gauge; a distribution; or a
shadow's agreement), 0–14 intervals whose arms are empty or carry counts anywhere from 0 to
10^9, bucket layouts from none to 40 edges (tiny, huge, one), classes appearing and vanishing,
gauges of any sign and size, and `final` either way. The document goes through the same
validation as the CLI; whatever it admits, the judge returns a verdict whose figures are finite
(status is JSON) and whose confidence bounds contain their estimates.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from analysis import judge, observations, verdicts

COMPARED = {
    "interval": "1m",
    "alpha": 0.05,
    "beta": 0.1,
    "metrics": [
        {
            "name": "errors",
            "kind": "errorRate",
            "errorRate": {"requests": "r", "errors": "e"},
            "margin": {"relative": 0.2, "absolute": 0.001},
            "minRequests": 10,
        },
        {
            "name": "latency",
            "kind": "latency",
            "latency": {"buckets": "b", "quantiles": [0.5, 0.99], "sloSeconds": 0.3},
            "margin": {"relative": 0.1},
            "minRequests": 10,
        },
        {
            "name": "gpu",
            "kind": "gauge",
            "gauge": {"value": "g", "perRequest": True, "requests": "r"},
            "margin": {"relative": 0.05, "absolute": 0.01},
            "minRequests": 0,
        },
        {
            "name": "classes",
            "kind": "distribution",
            "distribution": {"counts": "c", "label": "class"},
            "margin": {"relative": 0.2, "absolute": 0.005},
            "minRequests": 10,
        },
    ],
}
SHADOW = {
    "interval": "10s",
    "metrics": [
        {
            "name": "agreement",
            "kind": "agreement",
            "agreement": {"comparisons": "s"},
            "margin": {"absolute": 0.02},
            "minRequests": 10,
            "minDuration": "20s",
        }
    ],
}
COUNT = st.integers(0, 10**9) | st.integers(0, 50)
EDGE_LAYOUTS = st.one_of(
    st.just([]),
    st.just([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]),
    st.lists(st.floats(1e-6, 1e6, allow_nan=False), min_size=1, max_size=40, unique=True).map(sorted),
)


@st.composite
def _histogram(draw: st.DrawFn, edges: list[float]) -> dict[str, float]:
    increments = draw(st.lists(COUNT, min_size=len(edges) + 1, max_size=len(edges) + 1))
    cumulative, total = {}, 0
    for edge, increment in zip([*edges, math.inf], increments, strict=True):
        total += increment
        cumulative["+Inf" if math.isinf(edge) else repr(edge)] = float(total)
    return cumulative


@st.composite
def _arm(draw: st.DrawFn, kind: str, edges: list[float], classes: list[str]) -> dict[str, Any]:
    if draw(st.integers(0, 4)) == 0:
        return {}  # no scrape, no traffic
    match kind:
        case "errorRate":
            requests = draw(COUNT)
            return {"requests": float(requests), "errors": float(draw(st.integers(0, requests)))}
        case "latency":
            return {"buckets": draw(_histogram(edges))}
        case "gauge":
            value = draw(st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False))
            return {"value": value, "requests": float(draw(COUNT))}
        case _:
            present = draw(st.lists(st.sampled_from(classes), unique=True, max_size=len(classes)))
            return {"counts": {name: float(draw(COUNT)) for name in present}}


@st.composite
def _document(draw: st.DrawFn) -> dict[str, Any]:
    template = draw(st.sampled_from([COMPARED, SHADOW]))
    intervals = draw(st.integers(0, 14))
    edges = draw(EDGE_LAYOUTS)
    found: dict[str, list[dict[str, Any]]] = {}
    for metric in template["metrics"]:
        kind = metric["kind"]
        classes = ["agree", "disagree", "other"] if kind == "agreement" else ["a", "b", "c", "rare"]
        rows = []
        for _ in range(intervals):
            canary = draw(_arm(kind, edges, classes))
            baseline = {} if kind == "agreement" else draw(_arm(kind, edges, classes))
            rows.append({"canary": canary, "baseline": baseline})
        found[metric["name"]] = rows
    return {"template": template, "final": draw(st.booleans()), "observations": found}


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


@given(_document())
def test_any_document_the_schema_admits_gets_a_verdict_with_finite_figures(document: dict[str, Any]) -> None:
    given_input = observations.JudgeInput.model_validate(document)
    summary = judge.assess(given_input.template, given_input.observations, final=given_input.final)
    assert summary.verdict in set(verdicts.Verdict)
    if given_input.final:
        assert summary.verdict != verdicts.Verdict.RUNNING
    dumped = summary.model_dump(mode="json")
    assert _finite(dumped), dumped
    for metric in summary.metrics:
        if metric.effect is not None and metric.ci_low is not None:
            assert metric.ci_low <= metric.effect, metric
        if metric.effect is not None and metric.ci_high is not None:
            assert metric.effect <= metric.ci_high, metric
