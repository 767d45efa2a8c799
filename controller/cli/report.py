"""`kubectl modelrelease report NAME`: why each analysis of the release decided what it did.

For each analysis in the release's status, the observations are read again from Prometheus over
the same window the controller read (the revisions, track and evidence start are kept in the
analysis record) and the same judge replays every look (`analysis.timeline`): the evidence of each
metric against its threshold, the effect with its confidence band, the requests per arm and the
canary's share of them, and the look at which the decision was reached. Text by default;
`--html FILE` writes a self-contained page with plots (controller/cli/reporthtml.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from analysis import judge, timeline, verdicts
from controller.adapters.prometheus import prometheus_analysis, prometheus_source
from controller.cli import textformat
from controller.domain import actions, planning
from controller.resources import modelrelease, releasestatus

Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class AnalysisReport:
    record: releasestatus.StepAnalysis
    where: str  # "step 1 (analysis quality)" or "background"
    traffic: str | None  # what reached the canary during the step, as planned: "20%", "0% + 100% mirrored"
    timeline: timeline.Timeline | None
    problem: str | None = None  # why it could not be replayed


@dataclasses.dataclass(frozen=True)
class Report:
    namespace: str
    name: str
    status: releasestatus.ModelReleaseStatus
    analyses: tuple[AnalysisReport, ...]


def build_report(
    release: Obj,
    fetch_template: Callable[[str], Obj | None],
    source: prometheus_source.PrometheusSource,
    now: datetime,
) -> Report:
    spec = modelrelease.ModelReleaseSpec.model_validate(release["spec"])
    status = releasestatus.ModelReleaseStatus.model_validate(release.get("status") or {})
    plan = planning.plan_against_status(spec, status)
    reports = []
    for record in status.analysis:
        where, traffic = _where(record, plan)
        replayed, problem = _replay(release, spec, record, fetch_template, source, now)
        reports.append(AnalysisReport(record, where, traffic, replayed, problem))
    meta = release["metadata"]
    return Report(meta.get("namespace", ""), meta["name"], status, tuple(reports))


def _where(
    record: releasestatus.StepAnalysis, plan: planning.RolloutPlan | planning.Refusal
) -> tuple[str, str | None]:
    if record.step_index == releasestatus.BACKGROUND_STEP:
        return "background", None
    if isinstance(plan, planning.Refusal) or record.step_index >= len(plan.steps):
        return f"step {record.step_index}", None
    step = plan.steps[record.step_index]
    return step.label, step.describe_traffic()


def _replay(
    release: Obj,
    spec: modelrelease.ModelReleaseSpec,
    record: releasestatus.StepAnalysis,
    fetch_template: Callable[[str], Obj | None],
    source: prometheus_source.PrometheusSource,
    now: datetime,
) -> tuple[timeline.Timeline | None, str | None]:
    if record.canary_revision is None or record.baseline_revision is None:
        return None, "recorded by an older controller, without the revisions it compared: cannot replay"
    meta = release["metadata"]
    namespace = meta.get("namespace", "")
    template = prometheus_analysis.parse_template(namespace, record.template, fetch_template(record.template))
    if isinstance(template, str):
        return None, template
    target = prometheus_analysis.build_target(
        namespace,
        meta["name"],
        canary_revision=record.canary_revision,
        canary_track=record.canary_track or actions.Track.CANARY.value,
        baseline_revision=record.baseline_revision,
        model=record.canary_model_version or "",
    )
    # The controller's window ended when its backend asked Prometheus, a moment after the reconcile's
    # `now` that became finishedAt: one interval more lets the replay see every look it judged on
    # (a look after the decision only follows it).
    end = min(record.finished_at + template.interval, now) if record.finished_at else now
    window = prometheus_source.build_window(
        record.evidence_since or record.started_at, end, template.interval, spec.serving.warmup
    )
    try:
        series = source.fetch_observations(template, target, window)
        final = record.finished_at is not None and record.verdict == verdicts.Verdict.INCONCLUSIVE
        due = prometheus_source.first_interval_from(window, record.started_at)  # as the controller judged it
        return timeline.replay(template, series, final=final, canary_due=due), None
    except (judge.InputError, prometheus_source.DataError) as error:
        return None, f"Prometheus returned data the judge cannot read: {error}"


# ---- text ---------------------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _offset(at: datetime | None, start: datetime) -> str:
    return "-" if at is None else f"+{int((at - start).total_seconds())}s"


def decision_text(report: AnalysisReport) -> str:
    record = report.record
    line = f"{record.verdict.value}"
    if record.finished_at is not None:
        line += f" at {record.finished_at:%Y-%m-%d %H:%M:%S}Z"
        line += f", {int((record.finished_at - record.started_at).total_seconds())} s after it started"
    if report.timeline is not None:
        decided = report.timeline.decided
        looks = len(report.timeline.looks)
        if decided is not None:
            line += (
                f"; the judge decided {decided.summary.verdict.value} at look {decided.index + 1} of {looks}"
            )
        else:
            line += f"; undecided after {looks} looks"
    return line


def render_text(report: Report) -> str:
    lines = [f"ModelRelease {report.namespace}/{report.name}: {report.status.phase.value}"]
    if report.status.message:
        lines.append(f"  {report.status.message}")
    if not report.analyses:
        lines.append("  no analysis in this rollout yet")
    for each in report.analyses:
        record = each.record
        lines += ["", f"analysis {record.run} ({record.template}, {each.where}): {decision_text(each)}"]
        if record.rule:
            lines.append(f"  rule: {record.rule}")
        compared = f"  canary {record.canary_revision or '-'} (model {record.canary_model_version or '-'})"
        lines.append(compared + f" against stable {record.baseline_revision or '-'}")
        if each.traffic is not None:
            lines.append(f"  traffic to the canary during the step: {each.traffic}")
        if each.timeline is None:
            lines.append(f"  not replayed: {each.problem}")
            continue
        lines += _look_tables(each.timeline, record.started_at)
    return "\n".join(lines)


def _look_tables(replayed: timeline.Timeline, start: datetime) -> list[str]:
    lines: list[str] = []
    shown = _sampled(replayed.looks)
    for metric in replayed.template.metrics:
        threshold = replayed.threshold(metric.name)
        lines += ["", f"  {metric.name} ({metric.kind}): fails at evidence ≥ {threshold:.3g} (1/α)"]
        rows = [["LOOK", "TIME", "CANARY REQ", "STABLE REQ", "EFFECT", "BAND", "EVIDENCE", "VERDICT"]]
        for look in shown:
            result = look.metric(metric.name)
            if result is None:
                continue
            band = f"[{_number(result.ci_low)}, {_number(result.ci_high)}]"
            rows.append(
                [
                    str(look.index + 1),
                    _offset(look.at, start),
                    _number(look.canary_requests, 6),
                    _number(look.baseline_requests, 6),
                    _number(result.effect),
                    band,
                    _number(result.evidence),
                    result.verdict.value,
                ]
            )
        lines += ["    " + row for row in textformat.table(rows).splitlines()]
    return lines


def _sampled(looks: Sequence[timeline.Look], limit: int = 20) -> list[timeline.Look]:
    """Every look when few, else an even sample that keeps the first and the deciding ones."""
    if len(looks) <= limit:
        return list(looks)
    step = len(looks) / limit
    keep = {int(i * step) for i in range(limit)} | {len(looks) - 1}
    keep |= {look.index for look in looks if look.summary.verdict != verdicts.Verdict.RUNNING}
    return [look for look in looks if look.index in keep]
