"""The judge never fails on an observations document the schema admits (Hypothesis, 200 examples in CI).

Each example is a `modelrelease judge --input` document (`documents.document`). The document goes
through the same validation as the CLI; whatever it admits, the judge returns a verdict whose
figures are finite (status is JSON) and whose confidence bounds contain their estimates.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given

from analysis import judge, readings, verdicts
from tests.unit.analysis import documents


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


@given(documents.document())
def test_any_document_the_schema_admits_gets_a_verdict_with_finite_figures(document: dict[str, Any]) -> None:
    given_input = readings.JudgeInput.model_validate(document)
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
