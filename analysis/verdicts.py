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


class MetricEvidence(schema.Frozen):
    """One metric's compact evidence state: the judge's running sums after the intervals folded so far."""

    name: str
    edges: int = Field(0, ge=0, description="Finite bucket edges the state holds (latency).")
    classes: tuple[str, ...] = Field((), description="Classes compared so far (distribution).")
    state: str = Field(description="The judge's running state: base64 of little-endian float64s (opaque).")


class EvidenceRecord(schema.Frozen):
    """What the judge continues from at the next look, so a look reads and folds only new intervals."""

    basis: str = Field(
        description="Fingerprint of the template, arms and window start the state belongs to; "
        "a state of another basis is dropped and the window read afresh."
    )
    intervals: int = Field(ge=0, description="Settled intervals folded into the state.")
    metrics: tuple[MetricEvidence, ...] = ()


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
    evidence: EvidenceRecord | None = Field(
        None, description="The judge's compact state after the settled intervals (while the run is running)."
    )
