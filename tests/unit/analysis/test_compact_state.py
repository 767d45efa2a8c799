"""The judge's compact state: a look that continues from it reaches exactly what a full recomputation does.

The controller keeps the judge's state after the settled intervals in the run's record in status
and, at each look, folds in only what is new, judging the newest two intervals (which a late scrape
can still change) on a copy. These tests do what it does — the state goes through its JSON form
between looks, as through the API server — and compare the looks' whole summaries (verdict, rule,
every figure and message) with `judge.assess` on the window so far: on recorded releases (every
scenario of the benchmark, simulated at 100 requests/s for an hour on Prometheus' default buckets
and on native histograms), and on any document the schema admits cut into any pieces (Hypothesis).
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis import judge, readings, reference, specs, verdicts
from analysis.tooling import judge_benchmark, observed, traffic_simulator
from controller.adapters.prometheus import prometheus_source
from tests.unit.analysis import documents

BASIS = "recorded"
SETTLING = 2  # the newest intervals judged on a copy, as the controller's RESETTLE
Series = Mapping[str, Sequence[readings.IntervalSample]]


def _through_status(record: verdicts.EvidenceRecord) -> verdicts.EvidenceRecord:
    """The record as the next look reads it back: JSON in status, camelCase, nulls left out."""
    return verdicts.EvidenceRecord.model_validate(json.loads(json.dumps(record.to_manifest())))


def _look(
    template: specs.AnalysisTemplateSpec,
    series: Series,
    record: verdicts.EvidenceRecord | None,
    count: int,
    *,
    final: bool,
) -> tuple[verdicts.AnalysisSummary, verdicts.EvidenceRecord]:
    """One look at the first `count` intervals as the controller makes it: resume, fold the settled
    new ones, judge the newest on a copy."""
    state = judge.resume(template, record, BASIS) or judge.start(template)
    settled = max(state.intervals, count - SETTLING)
    kept = judge.fold(template, {name: got[state.intervals : settled] for name, got in series.items()}, state)
    latest = judge.fold(template, {name: got[settled:count] for name, got in series.items()}, kept)
    return judge.conclude(template, latest, final=final), _through_status(kept.record(BASIS))


CASES = {case.scenario.name: case for case in judge_benchmark.cases()}


def _recorded(name: str, edges: np.ndarray) -> tuple[specs.AnalysisTemplateSpec, Series]:
    case = CASES[name]
    template = reference.reference_template()
    canary, baseline = traffic_simulator.simulate_intervals(
        case.scenario, seeds=1, intervals=judge_benchmark.INTERVALS, seed=11, edges=edges
    )
    return template, observed.interval_samples(template, canary, baseline, 0, edges)


@pytest.mark.parametrize("name", list(CASES))
def test_looks_from_the_compact_state_equal_a_full_recomputation_on_every_recorded_release(
    name: str,
) -> None:
    template, series = _recorded(name, traffic_simulator.REAL_EDGES["prometheus-default"])
    record = None
    for count in range(judge_benchmark.INTERVALS + 1):
        final = count == judge_benchmark.INTERVALS
        looked, record = _look(template, series, record, count, final=final)
        if count % 4 == 1 or final:  # every fourth look recomputed in full (each costs the whole window)
            whole = judge.assess(template, {k: v[:count] for k, v in series.items()}, final=final)
            assert looked == whole, f"{name}, look {count}"
    assert record.intervals == judge_benchmark.INTERVALS - SETTLING


@pytest.mark.parametrize("name", ["aa", "p99+25", "episodes"])
def test_the_compact_state_on_native_histograms_continues_bit_for_bit(name: str) -> None:
    template, series = _recorded(name, prometheus_source.NATIVE_EDGES[20:70])
    record = None
    for count in range(0, judge_benchmark.INTERVALS + 1, 7):
        looked, record = _look(template, series, record, count, final=False)
        assert looked == judge.assess(template, {k: v[:count] for k, v in series.items()}), f"{name}, {count}"


def _pieces(draw: st.DrawFn, length: int) -> list[int]:
    cuts = draw(st.lists(st.integers(0, length), max_size=5))
    return sorted({0, length, *cuts})


@given(documents.document(), st.data())
def test_any_document_folded_in_any_pieces_through_status_gets_the_verdict_of_the_whole(
    document: dict[str, Any], data: st.DataObject
) -> None:
    given_input = readings.JudgeInput.model_validate(document)
    template, series = given_input.template, given_input.observations
    length = min((len(v) for v in series.values()), default=0)
    cuts = _pieces(data.draw, length)
    try:
        whole: verdicts.AnalysisSummary | None = judge.assess(template, series, final=given_input.final)
    except judge.InputError:
        whole = None  # unreadable buckets: the pieces must refuse them too
    record = None
    try:
        for begin, end in itertools.pairwise(cuts):
            state = judge.resume(template, record, BASIS)
            assert (state.intervals if state else 0) == begin
            folded = judge.fold(template, {k: v[begin:end] for k, v in series.items()}, state)
            record = _through_status(folded.record(BASIS))
        pieces: verdicts.AnalysisSummary | None = judge.conclude(
            template, judge.resume(template, record, BASIS) or judge.start(template), final=given_input.final
        )
    except judge.InputError:
        pieces = None
    assert pieces == whole


def _state() -> tuple[specs.AnalysisTemplateSpec, verdicts.EvidenceRecord]:
    template, series = _recorded("aa", traffic_simulator.REAL_EDGES["prometheus-default"])
    return template, judge.fold(template, {k: v[:30] for k, v in series.items()}).record(BASIS)


def _altered(record: verdicts.EvidenceRecord, **change: Any) -> verdicts.EvidenceRecord:
    first = record.metrics[0].model_copy(update=change)
    return record.model_copy(update={"metrics": (first, *record.metrics[1:])})


def test_a_state_of_another_basis_or_one_that_does_not_fit_the_template_is_dropped_not_used() -> None:
    template, record = _state()
    assert judge.resume(template, record, BASIS) is not None
    raw = base64.b64decode(record.metrics[0].state)
    assert judge.resume(template, record, "another window") is None
    assert judge.resume(template, _altered(record, state=base64.b64encode(raw[:-8]).decode()), BASIS) is None
    assert judge.resume(template, _altered(record, state="not base64!"), BASIS) is None
    assert judge.resume(template, _altered(record, name="renamed"), BASIS) is None
    assert judge.resume(template, record.model_copy(update={"intervals": 29}), BASIS) is None
    fewer = template.model_copy(update={"metrics": template.metrics[1:]})
    assert judge.resume(fewer, record, BASIS) is None
    negative_count = np.frombuffer(raw, dtype="<f8").copy()
    negative_count[0] = -3.0  # the metric's count of intervals
    assert (
        judge.resume(
            template, _altered(record, state=base64.b64encode(negative_count.tobytes()).decode()), BASIS
        )
        is None
    )


def test_status_holds_about_a_kilobyte_per_metric_whatever_the_window() -> None:
    """Bytes of the packed state per metric on Prometheus' default buckets (the figures in
    docs/analysis.md): an error rate 620, a latency quantile 1,088, a gauge 416, a distribution
    of four classes 4,204 — the same after 10 minutes as after 4 hours."""
    template = reference.reference_template()
    edges = traffic_simulator.REAL_EDGES["prometheus-default"]
    sizes = []
    for intervals in (10, 240):
        canary, baseline = traffic_simulator.simulate_intervals(
            traffic_simulator.Scenario("size"), seeds=1, intervals=intervals, seed=3, edges=edges
        )
        series = observed.interval_samples(template, canary, baseline, 0, edges)
        record = judge.fold(template, series).record(BASIS)
        sizes.append({m.name: len(m.state) for m in record.metrics})
    assert sizes[0] == sizes[1]
    assert sizes[0] == {
        "errors": 620,
        "latency-p50": 1088,
        "latency-p99": 1088,
        "gpu-utilization": 416,
        "predictions": 4204,
    }
