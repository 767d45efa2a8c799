"""One turn of the machine: the inputs, the plan (computed once), and what the turn has decided.

The other modules of the package decide by calling `Turn.change` (a named status change from
`changes`), `Turn.act`, `Turn.event` and `Turn.notify`; `Turn.move` hands the result back.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from analysis import schema, verdicts
from controller.domain import actions, naming, planning
from controller.domain import decision as decisions
from controller.domain import observations as obs_
from controller.domain.machine import changes
from controller.resources import modelrelease, releasestatus

Phase = releasestatus.Phase
Verdict = verdicts.Verdict
MetricResult = verdicts.MetricResult
Target = changes.Target
POLL = timedelta(seconds=30)  # how often to look again while waiting on something without a watch


@dataclass(frozen=True)
class Move:
    status: releasestatus.ModelReleaseStatus
    actions: tuple[actions.Action, ...] = ()
    events: tuple[decisions.Event, ...] = ()
    wake_at: datetime | None = None
    # Status must be written before anything that follows is done, as after a move that acts.
    checkpoint: bool = False


class Turn:
    def __init__(
        self,
        spec: modelrelease.ModelReleaseSpec,
        status: releasestatus.ModelReleaseStatus,
        observations: obs_.Observations,
        now: datetime,
    ) -> None:
        self.spec = spec
        self.status = status
        self.obs = observations
        self.now = now
        self.name = observations.release.name
        self.acts: list[actions.Action] = []
        self.checkpointed = False
        self.events: list[decisions.Event] = []
        self.wake_hint: datetime | None = None

    @functools.cached_property
    def plan(self) -> planning.RolloutPlan | planning.Refusal:
        """The rollout's steps under the GPU budget, sized against the stable as this turn found it."""
        return planning.plan_against_status(self.spec, self.status)

    # ---- deciding -----------------------------------------------------------------------------

    def change(self, status: releasestatus.ModelReleaseStatus) -> None:
        """Take a status made by one of the named changes in `changes`."""
        self.status = status

    def act(self, *todo: actions.Action) -> None:
        self.acts.extend(todo)

    def event(
        self,
        reason: str,
        message: str,
        warning: bool = False,
        *,
        key: str | None = None,
        scope: str | None = None,
        regarding_approval: str | None = None,
    ) -> None:
        """`key` names the transition when the message carries what a replay after a crash would say
        differently (a time, a readiness count, the judge's latest figures); `scope` replaces the
        revision and attempt when the Event is about something else (a retired Deployment), so it
        is said once whichever rollout says it."""
        kind = decisions.EventType.WARNING if warning else decisions.EventType.NORMAL
        self.events.append(
            decisions.Event(
                type=kind,
                reason=reason,
                message=message,
                key=key,
                scope=scope,
                regarding_approval=regarding_approval,
            )
        )

    def once_key(self, revision: str, suffix: str) -> str:
        """The idempotency key of a one-shot message or write of this attempt."""
        return naming.build_idempotency_key(revision, self.status.attempt, suffix)

    def notify(
        self,
        event: actions.NotificationEvent,
        revision: str,
        suffix: str,
        message: str,
        verdict: Verdict | None = None,
        *,
        metrics: tuple[MetricResult, ...] = (),
        step_index: int | None = None,
        closes_gate: bool = False,
    ) -> None:
        slack = self.spec.notifications.slack
        key = self.once_key(revision, suffix)
        if slack is None or key in self.status.notifications:
            return
        model_version = self.status.canary_model_version or self.status.stable_model_version
        self.act(
            actions.Notify(
                key=key,
                channel=slack.channel,
                event=event,
                revision=revision,
                model_version=model_version,
                message=message,
                verdict=verdict,
                metrics=metrics,
                step_index=step_index,
                closes_gate=closes_gate,
            )
        )
        self.change(changes.noted(self.status, key))

    def wait_until(self, moment: datetime) -> None:
        self.wake_hint = earliest(self.wake_hint, moment)

    def move(self, wake_at: datetime | None = None) -> Move:
        return Move(
            self.status,
            tuple(self.acts),
            tuple(self.events),
            earliest(wake_at, self.wake_hint),
            checkpoint=self.checkpointed,
        )

    def checkpoint(self) -> None:
        """End the decision with this move, as a move that acts does: the resume rules count on
        status recording it (a promotion, a rollback) before the world moves on."""
        self.checkpointed = True

    def moved(self, before: releasestatus.ModelReleaseStatus) -> bool:
        return self.status != before or bool(self.acts)

    # ---- reading ------------------------------------------------------------------------------

    def workload_name(self, revision: str) -> str:
        return naming.workload_name(self.name, revision)

    def workload(self, revision: str) -> obs_.Workload | None:
        return self.obs.workloads.get(self.workload_name(revision))

    def warm(self, workload: obs_.Workload | None, replicas: int) -> tuple[bool, datetime | None]:
        """At least `replicas` pods Ready and past warm-up; else when that will be, if known."""
        warm_at = workload.warm_at(replicas, self.spec.serving.warmup) if workload is not None else None
        if warm_at is None:
            return False, None
        return warm_at <= self.now, warm_at

    def create(self, target: Target, replicas: int, track: actions.Track) -> actions.CreateWorkload:
        return actions.CreateWorkload(
            name=self.workload_name(target.revision),
            revision=target.revision,
            track=track,
            replicas=replicas,
            model_name=self.spec.model.name,
            model_version=target.model_version,
            model_uri=target.model_uri,
            serving=self.spec.serving,
            gpus_per_replica=target.gpus_per_replica,
        )

    @property
    def canary_track(self) -> actions.Track:
        return actions.Track.PREVIEW if self.spec.strategy.blue_green is not None else actions.Track.CANARY

    def in_rollout(self, target: Target) -> bool:
        st = self.status
        return (
            st.phase in releasestatus.ROLLOUT_PHASES
            and st.stable_revision is not None
            and st.canary_revision == target.revision
        )

    def step_label(self) -> str:
        index = self.status.current_step_index
        plan = self.plan
        if index is None or isinstance(plan, planning.Refusal):
            return f"phase {self.status.phase.value}"
        return plan.steps[index].label if index < len(plan.steps) else "promotion"

    def deadline(self) -> datetime:
        assert self.status.step_started_at is not None
        return self.status.step_started_at + self.spec.progress_deadline + self.spec.serving.warmup

    def deadline_text(self) -> str:
        return schema.format_duration(self.spec.progress_deadline + self.spec.serving.warmup)

    def readiness(self, name: str, workload: obs_.Workload | None, replicas: int) -> str:
        ready = workload.ready_replicas if workload else 0
        text = f"{name} has {ready}/{replicas} ready replicas"
        if workload is not None and workload.failing:
            text += f" ({workload.failing})"
        return text

    def scale_down_delay(self) -> timedelta:
        strategy = self.spec.strategy.canary or self.spec.strategy.blue_green
        assert strategy is not None
        return strategy.scale_down_delay

    # ---- analyses -----------------------------------------------------------------------------

    def stop_running_analyses(self, rule: str) -> None:
        running = [r for r in self.status.analysis if r.verdict == Verdict.RUNNING and r.finished_at is None]
        self.act(*(actions.StopAnalysis(run=r.run) for r in running))
        self.change(changes.analyses_stopped(self.status, rule, self.now))


# A background analysis has no maxDuration of its own: it runs until the rollout ends.
BACKGROUND_RUNS_FOR = timedelta(days=30)


def build_analysis_run(
    spec: modelrelease.ModelReleaseSpec,
    status: releasestatus.ModelReleaseStatus,
    record: releasestatus.StepAnalysis,
    plan: planning.RolloutPlan | planning.Refusal,
) -> actions.StartAnalysis:
    """The run descriptor of a recorded analysis: what the backend starts, and is asked about."""
    assert not isinstance(plan, planning.Refusal)
    if record.step_index == releasestatus.BACKGROUND_STEP:
        max_duration = BACKGROUND_RUNS_FOR
    else:
        step = plan.steps[record.step_index].analysis
        assert step is not None
        max_duration = step.max_duration
    canary, stable = status.canary_revision, status.stable_revision
    assert canary is not None
    assert stable is not None
    return actions.StartAnalysis(
        run=record.run,
        template=record.template,
        step_index=record.step_index,
        canary_revision=canary,
        canary_track=actions.Track.PREVIEW if spec.strategy.blue_green is not None else actions.Track.CANARY,
        canary_model_version=status.canary_model_version or "",
        baseline_revision=stable,
        start=record.started_at,
        max_duration=max_duration,
        evidence_since=earliest(status.rollout_started_at, record.started_at),
        evidence=record.evidence,
    )


def described(record: releasestatus.StepAnalysis, run: actions.StartAnalysis) -> releasestatus.StepAnalysis:
    """The record with what its run compares (revisions, track, model, evidence start)."""
    return record.model_copy(
        update={
            "canary_revision": run.canary_revision,
            "canary_track": run.canary_track.value,
            "canary_model_version": run.canary_model_version,
            "baseline_revision": run.baseline_revision,
            "evidence_since": run.evidence_since,
        }
    )


def earliest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return min(known) if known else None
