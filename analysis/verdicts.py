"""The vocabulary of an analysis outcome, shared by the judge, the controller's status,
Slack and the CLI."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from analysis import schema


class Verdict(StrEnum):
    RUNNING = "Running"
    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"


class MetricResult(schema.Frozen):
    """What one metric showed: the values per arm, the effect, and the evidence."""

    name: str
    verdict: Verdict
    baseline: float | None = None
    canary: float | None = None
    effect: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    evidence: float | None = None
    alpha: float | None = None
    power: float | None = None
    margin: float | None = None
    baseline_requests: int | None = None
    canary_requests: int | None = None
    resolution: str | None = None
    message: str | None = None


class AnalysisSummary(schema.Frozen):
    """The judge's word on one analysis run: the decision, the rule that fired, per metric."""

    verdict: Verdict
    rule: str | None = None
    alpha: float | None = None
    metrics: tuple[MetricResult, ...] = ()
    unavailable: str | None = Field(
        None,
        description="Why this look could not read the metrics (an outage of the backend); the verdict "
        "is then Running, and the step waits for data up to its maxDuration.",
    )
