"""Observations documents for property tests: whatever `modelrelease judge --input` admits.

A template with every metric kind (an error rate; latency with two quantiles and an SLO; a
per-request gauge; a distribution; or a shadow's agreement), 0–14 intervals whose arms are empty
or carry counts anywhere from 0 to 10^9, bucket layouts from none to 40 edges (tiny, huge, one),
classes appearing and vanishing, gauges of any sign and size, and `final` either way.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

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
def histogram(draw: st.DrawFn, edges: list[float]) -> dict[str, float]:
    increments = draw(st.lists(COUNT, min_size=len(edges) + 1, max_size=len(edges) + 1))
    cumulative, total = {}, 0
    for edge, increment in zip([*edges, math.inf], increments, strict=True):
        total += increment
        cumulative["+Inf" if math.isinf(edge) else repr(edge)] = float(total)
    return cumulative


@st.composite
def arm(draw: st.DrawFn, kind: str, edges: list[float], classes: list[str]) -> dict[str, Any]:
    if draw(st.integers(0, 4)) == 0:
        return {}  # no scrape, no traffic
    match kind:
        case "errorRate":
            requests = draw(COUNT)
            return {"requests": float(requests), "errors": float(draw(st.integers(0, requests)))}
        case "latency":
            return {"buckets": draw(histogram(edges))}
        case "gauge":
            value = draw(st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False))
            return {"value": value, "requests": float(draw(COUNT))}
        case _:
            present = draw(st.lists(st.sampled_from(classes), unique=True, max_size=len(classes)))
            return {"counts": {name: float(draw(COUNT)) for name in present}}


@st.composite
def document(draw: st.DrawFn) -> dict[str, Any]:
    template = draw(st.sampled_from([COMPARED, SHADOW]))
    intervals = draw(st.integers(0, 14))
    edges = draw(EDGE_LAYOUTS)
    found: dict[str, list[dict[str, Any]]] = {}
    for metric in template["metrics"]:
        kind = metric["kind"]
        classes = ["agree", "disagree", "other"] if kind == "agreement" else ["a", "b", "c", "rare"]
        rows = []
        for _ in range(intervals):
            canary = draw(arm(kind, edges, classes))
            baseline = {} if kind == "agreement" else draw(arm(kind, edges, classes))
            rows.append({"canary": canary, "baseline": baseline})
        found[metric["name"]] = rows
    return {"template": template, "final": draw(st.booleans()), "observations": found}
