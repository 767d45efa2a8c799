"""The analysis backend for real releases: the judge on Prometheus data.

Each look judges the run's whole window (from the canary's start in this rollout,
`rolloutStartedAt` in status, to now, so earlier steps' traffic counts) — but reads and folds only
what is new: the run's record in status carries the judge's compact state after the settled
intervals (`StepAnalysis.evidence`), and a look asks Prometheus for the intervals after it, folds
the ones that have settled into a new state (returned with the verdict, for the engine to record)
and judges the newest `RESETTLE` on a copy, because a late scrape or an ingestion lag can still
change an interval that has just ended. Folding in pieces gives exactly what folding the window
at once gives (`analysis.judge.fold`), so a restarted controller continues from status and reaches
the verdict a full recomputation reaches; a state that belongs to another template, arm or window
start (its `basis`), or does not unpack, is dropped and the window read afresh.

The AnalysisTemplate is read from the release's namespace on every look; a missing or invalid
template makes the run Inconclusive with the reason (never a pass). Prometheus being down is
transient, and the engine decides on it (the step waits up to its maxDuration); after a failed
query Prometheus is not asked again for OUTAGE_BACKOFF, so a hung server holds one reconcile per
backoff, not every release's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from analysis import counters, judge, specs, verdicts
from controller import errors, ports
from controller.adapters import kubeapi
from controller.adapters.prometheus import prometheus_source
from controller.domain import actions
from controller.resources import meta

OUTAGE_BACKOFF = timedelta(seconds=30)
# Intervals re-read (and judged, not folded) at every look: scrapes that were late can still land.
RESETTLE = 2


class PrometheusAnalysis:
    def __init__(
        self,
        api: kubeapi.KubeApi,
        source: prometheus_source.PrometheusSource,
        clock: Callable[[], datetime],
    ) -> None:
        self._api = api
        self._source = source
        self._clock = clock
        self.intervals_read = 0  # (metric, interval) pairs asked of Prometheus: what a look costs it
        # The last failure and until when Prometheus is not asked again: a health cache of this
        # process, not release state (a restart asks at once).
        self._outage: tuple[datetime, str] | None = None

    def fetch_results(
        self, release: ports.ReleaseRef, runs: Sequence[actions.StartAnalysis]
    ) -> dict[str, verdicts.AnalysisSummary]:
        results: dict[str, verdicts.AnalysisSummary] = {}
        if self._outage is not None and self._clock() < self._outage[0]:
            raise errors.UnavailableError(f"{self._outage[1]} (asked again after {self._outage[0]:%H:%M:%S})")
        for run in runs:
            template = self._fetch_template(release.namespace, run.template)
            if isinstance(template, str):
                results[run.run] = verdicts.AnalysisSummary(
                    verdict=verdicts.Verdict.INCONCLUSIVE, rule=template
                )
                continue
            target = build_target(
                release.namespace,
                release.name,
                canary_revision=run.canary_revision,
                canary_track=run.canary_track.value,
                baseline_revision=run.baseline_revision,
                model=run.canary_model_version,
            )
            # At maxDuration the judge looks once more, as the fixed-horizon test it may read only
            # then, on the window up to maxDuration and not beyond: a controller that restarts
            # before recording the verdict looks at the same intervals and reaches the same verdict.
            ends = run.start + run.max_duration
            final = self._clock() >= ends
            window = prometheus_source.build_window(
                run.evidence_since or run.start,
                min(self._clock(), ends),
                template.interval,
                release.spec.serving.warmup,
            )
            try:
                due = prometheus_source.first_interval_from(window, run.start)
                results[run.run] = self._judge(template, target, window, run, due, final=final)
                self._outage = None
            except prometheus_source.SourceError as error:
                self._outage = (self._clock() + OUTAGE_BACKOFF, str(error))
                raise errors.UnavailableError(str(error)) from error
            except (judge.InputError, prometheus_source.DataError) as error:
                rule = f"Prometheus returned data the judge cannot read: {error}"
                results[run.run] = verdicts.AnalysisSummary(verdict=verdicts.Verdict.INCONCLUSIVE, rule=rule)
        return results

    def _judge(
        self,
        template: specs.AnalysisTemplateSpec,
        target: prometheus_source.Target,
        window: counters.Window,
        run: actions.StartAnalysis,
        due: int,
        *,
        final: bool,
    ) -> verdicts.AnalysisSummary:
        """The verdict on the whole window, from the run's state and the intervals after it.

        The canary is due to report from the run's start (its step's traffic was in place): `due`.
        """
        basis = evidence_basis(template, target, window)
        state = judge.resume(template, run.evidence, basis)
        if state is None or state.intervals > window.count:
            state = judge.start(template)
        known = state.intervals
        rest = counters.Window(
            start=window.start + known * window.interval,
            interval=window.interval,
            count=window.count - known,
            warmup=window.warmup,
        )
        fresh = (
            self._source.fetch_observations(template, target, rest)
            if rest.count
            else {metric.name: () for metric in template.metrics}
        )
        self.intervals_read += rest.count * len(template.metrics)
        settle = max(0, rest.count - RESETTLE)
        kept = judge.fold(
            template, {name: got[:settle] for name, got in fresh.items()}, state, canary_due=due
        )
        latest = judge.fold(
            template, {name: got[settle:] for name, got in fresh.items()}, kept, canary_due=due
        )
        summary = judge.conclude(template, latest, final=final)
        return summary.model_copy(update={"evidence": kept.record(basis)})

    def _fetch_template(self, namespace: str, name: str) -> specs.AnalysisTemplateSpec | str:
        """The template's spec, or why it cannot be used."""
        path = kubeapi.build_path(meta.API_VERSION, "analysistemplates", namespace, name)
        try:
            body = self._api.get(path)
        except errors.NotFoundError:
            return parse_template(namespace, name, None)
        return parse_template(namespace, name, body)

    def apply_start(self, release: ports.ReleaseRef, action: actions.StartAnalysis) -> None:
        """Nothing to start: the window is read from Prometheus as the looks come."""

    def apply_stop(self, release: ports.ReleaseRef, action: actions.StopAnalysis) -> None:
        """Nothing runs between looks: the run's state lives in its record, which the engine closes."""


def evidence_basis(
    template: specs.AnalysisTemplateSpec, target: prometheus_source.Target, window: counters.Window
) -> str:
    """What a compact state belongs to: the template, the arms and the window's start and spacing."""
    described = {
        "template": template.model_dump(mode="json"),
        "target": dataclasses.asdict(target),
        "window": [window.start, window.interval, window.warmup],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:24]


def build_target(
    namespace: str,
    release: str,
    *,
    canary_revision: str,
    canary_track: str,
    baseline_revision: str,
    model: str,
) -> prometheus_source.Target:
    """What the template's queries select: the canary's pods by revision and track, the stable's."""
    return prometheus_source.Target(
        namespace=namespace,
        release=release,
        canary=prometheus_source.ArmSelector(canary_revision, canary_track),
        baseline=prometheus_source.ArmSelector(baseline_revision, actions.Track.STABLE.value),
        model=model,
    )


def parse_template(
    namespace: str, name: str, body: dict[str, Any] | None
) -> specs.AnalysisTemplateSpec | str:
    """The template's spec from its object (None: not found), or why it cannot be used."""
    if body is None:
        return f"AnalysisTemplate {namespace}/{name} does not exist"
    try:
        return specs.AnalysisTemplateSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"AnalysisTemplate {namespace}/{name} is invalid at spec.{where}: {first['msg']}"
