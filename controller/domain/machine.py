"""Every state transition of a ModelRelease, in one module.

`advance` looks at the spec, the stored status and a snapshot of the world, and makes at
most one move: a status transition (with its one-shot actions: notify, registry, Git), or
the desired-state actions that bring the world in line with the status, or nothing (wait,
with the time to look again). The engine calls it until nothing moves.

Order of precedence in one move: resolve the model; act on a fresh operator command; then
the situation — first deploy, steady on stable, holding a rollback, starting a rollout, or
walking the planned steps of one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from analysis import schema, verdicts
from controller.domain import actions, naming, planning
from controller.domain import decision as decisions
from controller.domain import observations as obs_
from controller.resources import modelrelease, releasestatus

Phase = releasestatus.Phase
Verdict = verdicts.Verdict
POLL = timedelta(seconds=30)  # how often to look again while waiting on something without a watch
CANARY_UNAVAILABLE = "CanaryUnavailable"


@dataclass(frozen=True)
class Move:
    status: releasestatus.ModelReleaseStatus
    actions: tuple[actions.Action, ...] = ()
    events: tuple[decisions.Event, ...] = ()
    wake_at: datetime | None = None


@dataclass(frozen=True)
class Target:
    """The revision the spec asks for, with its resolved model."""

    revision: str
    model_version: str
    model_uri: str
    gpus_per_replica: int


@dataclass(frozen=True)
class _Want:
    replicas: int | None  # None: leave the replica count as it is
    create: actions.CreateWorkload | None = None


def advance(
    spec: modelrelease.ModelReleaseSpec,
    status: releasestatus.ModelReleaseStatus,
    observations: obs_.Observations,
    now: datetime,
) -> Move:
    return _Turn(spec, status, observations, now).run()


class _Turn:
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
        self.events: list[decisions.Event] = []
        self.wake_hint: datetime | None = None
        self.desired_traffic: actions.SetTrafficWeight | None = None
        budget = spec.gpu_budget
        self.gpu_resource = budget.resource_name if budget else "nvidia.com/gpu"

    # ---- plumbing -------------------------------------------------------------------------

    def _set(self, **changes: Any) -> None:
        self.status = self.status.model_copy(update=changes)

    def _event(
        self,
        reason: str,
        message: str,
        warning: bool = False,
        *,
        key: str | None = None,
        scope: str | None = None,
    ) -> None:
        """`key` names the transition when the message carries what a replay after a crash would say
        differently (a time, a readiness count, the judge's latest figures); `scope` replaces the
        revision and attempt when the Event is about something else (a retired Deployment), so it
        is said once whichever rollout says it."""
        kind = decisions.EventType.WARNING if warning else decisions.EventType.NORMAL
        self.events.append(decisions.Event(type=kind, reason=reason, message=message, key=key, scope=scope))

    def _move(self, wake_at: datetime | None = None) -> Move:
        return Move(self.status, tuple(self.acts), tuple(self.events), _earliest(wake_at, self.wake_hint))

    def _notify(
        self,
        event: actions.NotificationEvent,
        revision: str,
        suffix: str,
        message: str,
        verdict: Verdict | None = None,
    ) -> None:
        slack = self.spec.notifications.slack
        key = naming.notification_key(revision, self.status.attempt, suffix)
        if slack is None or key in self.status.notifications:
            return
        model_version = self.status.canary_model_version or self.status.stable_model_version
        self.acts.append(
            actions.Notify(
                key=key,
                channel=slack.channel,
                event=event,
                revision=revision,
                model_version=model_version,
                message=message,
                verdict=verdict,
            )
        )
        self._set(notifications=(*self.status.notifications, key))

    def _warm(self, workload: obs_.Workload | None, replicas: int) -> tuple[bool, datetime | None]:
        """At least `replicas` pods Ready and past warm-up; else when that will be, if known."""
        warm_at = workload.warm_at(replicas, self.spec.serving.warmup) if workload is not None else None
        if warm_at is None:
            return False, None
        return warm_at <= self.now, warm_at

    def _create(self, target: Target, replicas: int) -> actions.CreateWorkload:
        return actions.CreateWorkload(
            name=naming.workload_name(self.name, target.revision),
            revision=target.revision,
            replicas=replicas,
            model_name=self.spec.model.name,
            model_version=target.model_version,
            model_uri=target.model_uri,
            serving=self.spec.serving,
            gpus_per_replica=target.gpus_per_replica,
        )

    def _retiring_wants(self) -> dict[str, _Want]:
        return {r.name: _Want(None) for r in self.status.retiring}

    def _converge(self, wants: dict[str, _Want], traffic: actions.SetTrafficWeight | None) -> bool:
        """Queue the actions that make the world match `wants` and `traffic`; True if any.

        Order keeps every intermediate state safe: traffic that takes exposure away first,
        then removals and scale-downs (freeing GPUs), then creations and scale-ups, and
        traffic that adds exposure last.
        """
        downs: list[actions.Action] = []
        ups: list[actions.Action] = []
        for name in sorted(self.obs.workloads):
            if name not in wants:
                downs.append(actions.DeleteWorkload(name=name))
        for name, want in wants.items():
            seen = self.obs.workloads.get(name)
            if seen is None:
                if want.create is not None:
                    ups.append(want.create)
            elif want.replicas is not None and seen.replicas != want.replicas:
                scale = actions.ScaleWorkload(name=name, replicas=want.replicas)
                (downs if want.replicas < seen.replicas else ups).append(scale)
        first: list[actions.Action] = []
        last: list[actions.Action] = []
        current = self.obs.traffic
        held = False
        if traffic is not None and (current is None or not current.matches(traffic)):
            if not _adds_exposure(traffic, current):
                first.append(traffic)
            elif self._ready_for(traffic):
                last.append(traffic)
            else:
                # Never route toward a workload that is not Ready, whatever the status says
                # (e.g. resuming from a status older than the world): wait for it instead.
                held = True
                self.wake_hint = self.now + POLL
        queued = [*first, *downs, *ups, *last]
        self.acts.extend(queued)
        return bool(queued) or held

    def _ready_for(self, traffic: actions.SetTrafficWeight) -> bool:
        receiving = {traffic.stable_revision} if traffic.canary_weight < 100 else set()
        if traffic.canary_revision is not None and traffic.canary_weight > 0:
            receiving.add(traffic.canary_revision)
        ready = {w.revision for w in self.obs.workloads.values() if w.ready_replicas > 0}
        return receiving <= ready

    def _plan(self) -> planning.RolloutPlan | planning.Refusal:
        stable = planning.StableFootprint(
            replicas=self.status.stable_replicas or self.spec.serving.replicas,
            gpus_per_replica=self.status.stable_gpus_per_replica,
        )
        return planning.plan_rollout(self.spec, stable)

    def _in_rollout(self, target: Target) -> bool:
        st = self.status
        return (
            st.phase in releasestatus.ROLLOUT_PHASES
            and st.stable_revision is not None
            and st.canary_revision == target.revision
        )

    def _stop_running_analyses(self, rule: str) -> None:
        finished = []
        for record in self.status.analysis:
            if record.verdict == Verdict.RUNNING and record.finished_at is None:
                self.acts.append(actions.StopAnalysis(run=record.run))
                # Stopped before the judge decided: no verdict was reached, and the record says so.
                record = record.model_copy(
                    update={"finished_at": self.now, "rule": rule, "verdict": Verdict.INCONCLUSIVE}
                )
            finished.append(record)
        self._set(analysis=tuple(finished))

    def _scale_down_delay(self) -> timedelta:
        strategy = self.spec.strategy.canary or self.spec.strategy.blue_green
        assert strategy is not None
        return strategy.scale_down_delay

    # ---- entry ----------------------------------------------------------------------------

    def run(self) -> Move:
        target = self._resolve()
        if target is None:
            return self._without_target()
        for handler in (self._on_retry, self._on_abort, self._on_promote_full, self._on_promote):
            if handler(target):
                return self._move()
        if self._report_unknown_commands(target):
            return self._move()
        st = self.status
        if st.revision != target.revision:
            self._set(revision=target.revision)
            return self._move()
        if st.stable_revision is None:
            return self._first_deploy(target)
        if target.revision == st.stable_revision:
            return self._steady(target)
        rolled_back = st.last_rollback is not None and st.last_rollback.revision == target.revision
        if st.phase == Phase.ROLLED_BACK and rolled_back:
            return self._hold()
        if st.canary_revision != target.revision:
            return self._begin(target)
        return self._progress(target)

    # ---- model resolution -----------------------------------------------------------------

    def _resolve(self) -> Target | None:
        reference = naming.build_model_reference(self.spec.model)
        pinned = self.status.resolved_model
        if pinned is None or pinned.reference != reference:
            found = self.obs.model
            if found is None:
                return None
            wanted = self.spec.model.require_tags
            if any(found.tags.get(k) != v for k, v in wanted.items()):
                return None
            pinned = releasestatus.ResolvedModel(reference=reference, version=found.version, uri=found.uri)
            self._set(resolved_model=pinned)
        return Target(
            revision=naming.build_revision(self.spec.serving, self.spec.model.name, pinned.version),
            model_version=pinned.version,
            model_uri=pinned.uri,
            gpus_per_replica=self.spec.serving.gpus_per_replica(self.gpu_resource),
        )

    def _unresolved_reason(self) -> tuple[Phase, str, str]:
        model = self.spec.model
        wanted = (
            f"{model.name} {'version ' + model.version if model.version else 'alias ' + str(model.alias)}"
        )
        found = self.obs.model
        if found is not None:
            lacking = {k: v for k, v in model.require_tags.items() if found.tags.get(k) != v}
            shown = ", ".join(f"{k}={v}" for k, v in sorted(lacking.items()))
            return (
                Phase.FAILED,
                "RequiredTagsMissing",
                f"model {model.name} version {found.version} lacks the required tags {shown}",
            )
        if self.obs.model_error:
            return Phase.FAILED, "ModelNotResolved", f"cannot resolve {wanted}: {self.obs.model_error}"
        return Phase.PENDING, "ResolvingModel", f"waiting for the registry to resolve {wanted}"

    def _without_target(self) -> Move:
        """No rollout can start: hold the world on stable (abandoning any canary) and say why."""
        phase, reason, message = self._unresolved_reason()
        st = self.status
        if st.canary_revision is not None and st.stable_revision is not None:
            self._abandon_canary("RolloutAbandoned", f"rollout of {st.canary_revision} abandoned: {message}")
            return self._move()
        if phase == Phase.FAILED and st.stable_revision is not None:
            phase = Phase.BLOCKED  # the new model cannot start, but stable serves as before
        if (st.phase, st.reason, st.message) != (phase, reason, message):
            self._set(phase=phase, reason=reason, message=message)
            self._event(reason, message, warning=phase in (Phase.FAILED, Phase.BLOCKED))
            return self._move()
        if st.stable_revision is None:
            return self._move()
        return self._hold()

    # ---- operator commands ----------------------------------------------------------------

    def _take(self, command: str) -> bool:
        """True once per fresh command token; the token is then recorded as handled."""
        token: str | None = getattr(self.obs.commands, command)
        if token is None or token == getattr(self.status.handled_commands, command):
            return False
        self._set(handled_commands=self.status.handled_commands.model_copy(update={command: token}))
        return True

    def _report_unknown_commands(self, target: Target) -> bool:
        """A misspelt command annotation is said once per token (and per rollout), never ignored silently."""
        reported = False
        for entry in self.obs.commands.unknown:
            key = naming.notification_key(target.revision, self.status.attempt, f"unknown-command/{entry}")
            if key in self.status.notifications:
                continue
            annotation = entry.partition("=")[0]
            self._set(notifications=(*self.status.notifications, key))
            self._event(
                "UnknownCommand",
                f"annotation {annotation} is not a command (known: abort, promote, promote-full, retry); "
                "it is ignored",
                warning=True,
                key=entry,
            )
            reported = True
        return reported

    def _on_retry(self, target: Target) -> bool:
        if not self._take("retry"):
            return False
        if self.status.phase in (Phase.ROLLED_BACK, Phase.FAILED, Phase.BLOCKED):
            self._set(
                phase=Phase.PENDING,
                reason="RetryRequested",
                message="retry requested",
                step_started_at=self.now,
            )
            self._event("RetryRequested", f"retrying revision {target.revision}")
        else:
            self._event("RetryIgnored", f"nothing to retry in phase {self.status.phase.value}")
        return True

    def _on_abort(self, target: Target) -> bool:
        if not self._take("abort"):
            return False
        if self._in_rollout(target):
            self._rollback(target, "Aborted", f"aborted by an operator at {self._step_label()}")
        else:
            self._event("AbortIgnored", f"no rollout in progress (phase {self.status.phase.value})")
        return True

    def _on_promote_full(self, target: Target) -> bool:
        if not self._take("promote_full"):
            return False
        plan = self._plan()
        if not self._in_rollout(target) or isinstance(plan, planning.Refusal):
            self._event("PromoteIgnored", f"no rollout to promote (phase {self.status.phase.value})")
            return True
        self._stop_running_analyses("skipped by promote --full")
        self._record_approval(target, releasestatus.ApprovalDecision.APPROVE, "operator", "promote-full")
        self._set(
            promote_full=True,
            current_step_index=len(plan.steps),
            step_started_at=self.now,
            phase=Phase.PROMOTING,
            reason="PromotedFull",
            message="promote --full: skipping the remaining steps",
        )
        self._event("PromotedFull", "remaining steps skipped by an operator")
        return True

    def _on_promote(self, target: Target) -> bool:
        if not self._take("promote"):
            return False
        plan = self._plan()
        index = self.status.current_step_index
        if (
            not self._in_rollout(target)
            or isinstance(plan, planning.Refusal)
            or index is None
            or index >= len(plan.steps)
            or plan.steps[index].kind == planning.StepKind.WEIGHT
        ):
            self._event("PromoteIgnored", f"no gate to promote past at {self._step_label()}")
            return True
        entry = plan.steps[index]
        self._stop_running_analyses("skipped by promote")
        if entry.kind == planning.StepKind.APPROVAL:
            self._record_approval(target, releasestatus.ApprovalDecision.APPROVE, "operator", "promote")
        self._complete(target, index, entry, plan)
        return True

    # ---- situations -----------------------------------------------------------------------

    def _first_deploy(self, target: Target) -> Move:
        """No stable yet: deploy the revision whole, route to it when warm, and call it stable."""
        st = self.status
        replicas = self.spec.serving.replicas
        if st.canary_revision != target.revision:
            self._set(
                phase=Phase.PROGRESSING,
                reason="FirstDeploy",
                message=f"deploying model {target.model_version} (revision {target.revision})",
                canary_revision=target.revision,
                canary_model_version=target.model_version,
                attempt=1,
                rollout_started_at=self.now,
                step_started_at=self.now,
                current_step_index=None,
                canary_weight=0,
                analysis=(),
                approvals=(),
                notifications=(),
            )
            self._event("FirstDeploy", self.status.message)
            return self._move()
        if st.phase == Phase.FAILED:
            return self._move()  # left as it is for debugging, until the spec changes or a retry
        name = naming.workload_name(self.name, target.revision)
        if self._converge({name: _Want(replicas, self._create(target, replicas))}, None):
            return self._move()
        workload = self.obs.workloads.get(name)
        warm, warm_at = self._warm(workload, replicas)
        if warm:
            self._set(
                stable_revision=target.revision,
                stable_model_version=target.model_version,
                stable_replicas=replicas,
                stable_gpus_per_replica=target.gpus_per_replica,
                canary_revision=None,
                canary_model_version=None,
                step_started_at=None,
                phase=Phase.SUCCEEDED,
                reason="Deployed",
                message=f"serving model {target.model_version} (revision {target.revision})",
            )
            self.acts.append(self._promote_model(target))
            self._notify(actions.NotificationEvent.PROMOTED, target.revision, "deployed", self.status.message)
            self._event("Deployed", self.status.message)
            return self._move()
        deadline = self._deadline()
        if self.now >= deadline:
            message = (
                f"first deploy: {self._readiness(name, workload, replicas)} after {self._deadline_text()}"
            )
            self._set(phase=Phase.FAILED, reason="ProgressDeadlineExceeded", message=message)
            self._notify(actions.NotificationEvent.FAILED, target.revision, "failed", message)
            self._event("ProgressDeadlineExceeded", message, warning=True, key="first-deploy")
            return self._move()
        return self._move(_earliest(deadline, warm_at))

    def _steady(self, target: Target) -> Move:
        """The spec asks for what stable already serves: keep it whole and alone."""
        st = self.status
        if st.canary_revision is not None:
            self._abandon_canary("RolloutAbandoned", f"the spec is back at stable revision {target.revision}")
            return self._move()
        if st.phase != Phase.SUCCEEDED:
            message = f"serving model {st.stable_model_version} (revision {target.revision})"
            if st.last_rollback is not None and st.phase == Phase.ROLLED_BACK:
                message += f"; the rollout of revision {st.last_rollback.revision} was rolled back"
            self._set(phase=Phase.SUCCEEDED, reason="Stable", message=message)
            self._event("Stable", message)
            return self._move()
        replicas = self.spec.serving.replicas
        if st.stable_replicas != replicas or st.stable_gpus_per_replica != target.gpus_per_replica:
            self._set(stable_replicas=replicas, stable_gpus_per_replica=target.gpus_per_replica)
            return self._move()
        if self._retire_due():
            return self._move()
        name = naming.workload_name(self.name, target.revision)
        wants = {name: _Want(replicas, self._create(target, replicas)), **self._retiring_wants()}
        traffic = actions.SetTrafficWeight(
            stable_revision=target.revision, canary_revision=None, canary_weight=0
        )
        if self._converge(wants, traffic):
            return self._move()
        return self._move(min((r.at for r in self.status.retiring), default=None))

    def _hold(self) -> Move:
        """Stable only, whole; everything else removed once it has no traffic."""
        st = self.status
        if self._retire_due():
            return self._move()
        assert st.stable_revision is not None
        name = naming.workload_name(self.name, st.stable_revision)
        wants = {name: _Want(st.stable_replicas), **self._retiring_wants()}
        traffic = actions.SetTrafficWeight(
            stable_revision=st.stable_revision, canary_revision=None, canary_weight=0
        )
        if self._converge(wants, traffic):
            return self._move()
        return self._move(min((r.at for r in st.retiring), default=None))

    def _retire_due(self) -> bool:
        due = [r for r in self.status.retiring if r.at <= self.now]
        if due:
            self._set(retiring=tuple(r for r in self.status.retiring if r.at > self.now))
            for r in due:
                message = f"previous stable {r.name} removed after the scale-down delay"
                self._event("ScaledDown", message, scope=f"retired/{r.name}")
        return bool(due)

    def _abandon_canary(self, reason: str, message: str) -> None:
        self._stop_running_analyses("rollout abandoned")
        self._set(
            canary_revision=None,
            canary_model_version=None,
            canary_weight=0,
            current_step_index=None,
            step_started_at=None,
            promote_full=False,
        )
        self._event(reason, message)

    def _begin(self, target: Target) -> Move:
        st = self.status
        if st.canary_revision is not None:
            self._abandon_canary(
                "RolloutSuperseded", f"revision {st.canary_revision} abandoned for {target.revision}"
            )
            return self._move()
        plan = self._plan()
        if isinstance(plan, planning.Refusal):
            if (st.phase, st.reason, st.message) != (Phase.BLOCKED, plan.reason, plan.message):
                self._set(phase=Phase.BLOCKED, reason=plan.reason, message=plan.message)
                self._notify(actions.NotificationEvent.FAILED, target.revision, "refused", plan.message)
                self._event(plan.reason, plan.message, warning=True)
                return self._move()
            return self._hold()
        if self._retire_due():
            return self._move()
        for early in st.retiring:  # the new rollout's plan has no room for them: removed now, and said
            self._event(
                "ScaledDown",
                f"previous stable {early.name} removed before its scale-down delay ended: "
                "a new rollout starts",
                scope=f"retired/{early.name}",
            )
        again = st.last_rollback is not None and st.last_rollback.revision == target.revision
        self._set(
            phase=Phase.PROGRESSING,
            reason="RolloutStarted",
            message=f"rolling out model {target.model_version} (revision {target.revision}) "
            f"over {len(plan.steps)} steps",
            canary_revision=target.revision,
            canary_model_version=target.model_version,
            attempt=st.attempt + 1 if again else 1,
            rollout_started_at=self.now,
            current_step_index=0,
            step_started_at=self.now,
            steps_hash=naming.build_steps_hash(self.spec.strategy),
            promote_full=False,
            canary_weight=0,
            analysis=(),
            approvals=(),
            notifications=(),
            retiring=(),
        )
        self._notify(actions.NotificationEvent.STARTED, target.revision, "started", self.status.message)
        self._event("RolloutStarted", self.status.message)
        return self._move()

    # ---- walking the steps ----------------------------------------------------------------

    def _progress(self, target: Target) -> Move:
        st = self.status
        plan = self._plan()
        if isinstance(plan, planning.Refusal):
            self._rollback(target, plan.reason, plan.message)
            return self._move()
        steps_hash = naming.build_steps_hash(self.spec.strategy)
        if st.steps_hash != steps_hash:
            self._stop_running_analyses("steps changed")
            self._set(
                steps_hash=steps_hash,
                attempt=st.attempt + 1,
                current_step_index=0,
                step_started_at=self.now,
                rollout_started_at=self.now,
                canary_weight=0,
                analysis=(),
                approvals=(),
                promote_full=False,
                phase=Phase.PROGRESSING,
                reason="StepsChanged",
                message="the steps changed; progress starts again at step 0",
            )
            self._event("StepsChanged", self.status.message)
            return self._move()
        index = st.current_step_index or 0
        entry = plan.steps[index] if index < len(plan.steps) else plan.promotion
        assert st.stable_revision is not None
        stable_name = naming.workload_name(self.name, st.stable_revision)
        canary_name = naming.workload_name(self.name, target.revision)
        wants = {
            stable_name: _Want(entry.stable_replicas),
            canary_name: _Want(entry.canary_replicas, self._create(target, entry.canary_replicas)),
        }
        traffic = actions.SetTrafficWeight(
            stable_revision=st.stable_revision,
            canary_revision=target.revision,
            canary_weight=st.canary_weight,
        )
        self.desired_traffic = traffic
        if self._canary_lost(canary_name, stable_name):
            return self._shelter_on_stable(target, index, wants)
        if st.reason == CANARY_UNAVAILABLE:
            message = f"canary {canary_name} is Ready again; {self._step_label()} continues"
            self._set(reason="CanaryRecovered", message=message)
            self._event("CanaryRecovered", message)
            return self._move()
        # The step's own transition is tried first: after a restart the world may be ahead of a
        # status that was never written, and converging first would undo work (scale down warm
        # GPU pods, take traffic back) only to redo it a moment later.
        before = self.status
        move = self._step(target, index, entry, plan)
        if move.status != before or move.actions:
            return move
        if self._converge(wants, traffic) or self._keep_analysis_running():
            return self._move()
        return move

    def _canary_lost(self, canary_name: str, stable_name: str) -> bool:
        """The canary carries weight but has no Ready pod (deleted by hand, every pod crashed) while
        stable could serve: its users get errors, whatever the status says."""
        sheltering = self.status.reason == CANARY_UNAVAILABLE  # its weight is already taken away
        carries_weight = self.status.canary_weight > 0 and (
            self.obs.traffic is None or self.obs.traffic.canary_weight > 0
        )
        if not (sheltering or carries_weight):
            return False
        canary = self.obs.workloads.get(canary_name)
        stable = self.obs.workloads.get(stable_name)
        return (
            (canary is None or canary.ready_replicas == 0)
            and stable is not None
            and stable.ready_replicas > 0
        )

    def _shelter_on_stable(self, target: Target, index: int, wants: dict[str, _Want]) -> Move:
        """Route everything to stable until the canary is Ready again; a running analysis of this step
        is dropped, to start afresh on traffic the canary really serves."""
        st = self.status
        if st.reason != CANARY_UNAVAILABLE:
            dropped = [r for r in st.analysis if r.step_index == index and r.finished_at is None]
            self.acts.extend(actions.StopAnalysis(run=r.run) for r in dropped)
            name = naming.workload_name(self.name, target.revision)
            message = (
                f"canary {name} has no Ready pod at {self._step_label()}: all traffic back on stable "
                "until it is Ready" + ("; the analysis starts again then" if dropped else "")
            )
            self._set(
                analysis=tuple(r for r in st.analysis if r not in dropped),
                reason=CANARY_UNAVAILABLE,
                message=message,
            )
            self._event(CANARY_UNAVAILABLE, message, warning=True)
            return self._move()
        assert st.stable_revision is not None
        shelter = actions.SetTrafficWeight(
            stable_revision=st.stable_revision, canary_revision=target.revision, canary_weight=0
        )
        self._converge(wants, shelter)
        return self._move(self.now + POLL)

    def _traffic_reached(self) -> bool:
        """Traffic is at least where the status says (ahead is fine: a status not yet written)."""
        seen, wanted = self.obs.traffic, self.desired_traffic
        if seen is None or wanted is None:
            return False
        same_arms = (seen.stable_revision, seen.canary_revision) == (
            wanted.stable_revision,
            wanted.canary_revision,
        )
        return same_arms and seen.canary_weight >= wanted.canary_weight

    def _step(
        self, target: Target, index: int, entry: planning.PlannedStep, plan: planning.RolloutPlan
    ) -> Move:
        if index >= len(plan.steps):
            return self._promote_when_warm(target, entry)
        if entry.kind == planning.StepKind.WEIGHT:
            return self._weight_step(target, index, entry, plan)
        if entry.kind == planning.StepKind.PAUSE:
            return self._pause_step(target, index, entry, plan)
        if entry.kind == planning.StepKind.APPROVAL:
            return self._approval_step(target, index, entry, plan)
        return self._analysis_step(target, index, entry, plan)

    def _approvals_for(self, index: int, target: Target) -> list[obs_.ObservedApproval]:
        """Decisions on this gate of this attempt, oldest first."""
        started = self.status.rollout_started_at
        assert started is not None
        # creationTimestamp has whole seconds: an approval made in the second the attempt began counts.
        since = started.replace(microsecond=0)
        return sorted(
            (
                a
                for a in self.obs.approvals
                if a.revision == target.revision and a.step == index and a.created_at >= since
            ),
            key=lambda a: (a.created_at, a.name),
        )

    def _keep_analysis_running(self) -> bool:
        """An analysis the status says is running must be running (e.g. after a restart)."""
        restarted = False
        for record in self.status.analysis:
            if (
                record.verdict == Verdict.RUNNING
                and record.finished_at is None
                and record.run not in self.obs.analysis
            ):
                self.acts.append(self._start_analysis(record))
                restarted = True
        return restarted

    def _start_analysis(self, record: releasestatus.StepAnalysis) -> actions.StartAnalysis:
        plan_entry = self._analysis_spec(record.step_index)
        canary, stable = self.status.canary_revision, self.status.stable_revision
        assert canary is not None
        assert stable is not None
        return actions.StartAnalysis(
            run=record.run,
            template=record.template,
            step_index=record.step_index,
            canary_revision=canary,
            baseline_revision=stable,
            start=record.started_at,
            max_duration=plan_entry.max_duration,
        )

    def _analysis_spec(self, index: int) -> modelrelease.AnalysisStep:
        plan = self._plan()
        assert not isinstance(plan, planning.Refusal)
        spec = plan.steps[index].analysis
        assert spec is not None
        return spec

    def _deadline(self) -> datetime:
        assert self.status.step_started_at is not None
        return self.status.step_started_at + self.spec.progress_deadline + self.spec.serving.warmup

    def _deadline_text(self) -> str:
        return schema.format_duration(self.spec.progress_deadline + self.spec.serving.warmup)

    def _readiness(self, name: str, workload: obs_.Workload | None, replicas: int) -> str:
        ready = workload.ready_replicas if workload else 0
        text = f"{name} has {ready}/{replicas} ready replicas"
        if workload is not None and workload.failing:
            text += f" ({workload.failing})"
        return text

    def _step_label(self) -> str:
        index = self.status.current_step_index
        plan = self._plan()
        if index is None or isinstance(plan, planning.Refusal):
            return f"phase {self.status.phase.value}"
        return plan.steps[index].label if index < len(plan.steps) else "promotion"

    def _wait_for_warm(
        self,
        target: Target,
        label: str,
        workload: obs_.Workload | None,
        replicas: int,
        warm_at: datetime | None,
    ) -> Move:
        deadline = self._deadline()
        if self.now >= deadline:
            name = naming.workload_name(self.name, target.revision)
            message = f"{label}: {self._readiness(name, workload, replicas)} after {self._deadline_text()}"
            self._rollback(target, "ProgressDeadlineExceeded", message)
            return self._move()
        return self._move(_earliest(deadline, warm_at))

    def _weight_step(
        self, target: Target, index: int, entry: planning.PlannedStep, plan: planning.RolloutPlan
    ) -> Move:
        canary = self.obs.workloads.get(naming.workload_name(self.name, target.revision))
        warm, warm_at = self._warm(canary, entry.canary_replicas)
        assert self.status.stable_revision is not None
        stable = self.obs.workloads.get(naming.workload_name(self.name, self.status.stable_revision))
        stable_needed = min(
            entry.stable_replicas, math.ceil((self.status.stable_replicas or 0) * (100 - entry.weight) / 100)
        )
        if warm and stable is not None and stable.ready_replicas >= stable_needed and self._traffic_reached():
            self._complete(target, index, entry, plan)
            return self._move()
        return self._wait_for_warm(target, entry.label, canary, entry.canary_replicas, warm_at)

    def _pause_step(
        self, target: Target, index: int, entry: planning.PlannedStep, plan: planning.RolloutPlan
    ) -> Move:
        st = self.status
        if st.phase != Phase.PAUSED:
            until = f" for {schema.format_duration(entry.pause)}" if entry.pause else " until promoted"
            self._set(phase=Phase.PAUSED, reason="PauseStep", message=f"{entry.label}: paused{until}")
            self._notify(
                actions.NotificationEvent.PAUSED, target.revision, f"pause-{index}", self.status.message
            )
            self._event("Paused", self.status.message)
            return self._move()
        if entry.pause is None:
            return self._move()
        assert st.step_started_at is not None
        ends = st.step_started_at + entry.pause
        if self.now >= ends:
            self._complete(target, index, entry, plan)
            return self._move()
        return self._move(ends)

    def _approval_step(
        self, target: Target, index: int, entry: planning.PlannedStep, plan: planning.RolloutPlan
    ) -> Move:
        st = self.status
        if st.phase != Phase.AWAITING_APPROVAL:
            message = (
                f"{entry.label}: waiting for an approval of revision {target.revision}: create an "
                f"Approval with release {self.name}, revision {target.revision}, step {index} "
                "(docs/operations.md)"
            )
            self._set(phase=Phase.AWAITING_APPROVAL, reason="AwaitingApproval", message=message)
            key = naming.notification_key(target.revision, st.attempt, f"approval-{index}")
            assert entry.approval is not None
            slack = self.spec.notifications.slack
            self.acts.append(
                actions.RequestApproval(
                    key=key,
                    step_index=index,
                    revision=target.revision,
                    model_version=target.model_version,
                    slack=entry.approval.slack and slack is not None,
                    channel=slack.channel if slack else None,
                )
            )
            self._set(notifications=(*self.status.notifications, key))
            self._event("AwaitingApproval", message)
            return self._move()
        relevant = self._approvals_for(index, target)
        rejection = next((a for a in relevant if a.decision == releasestatus.ApprovalDecision.REJECT), None)
        if rejection is not None:
            self._record_approval(
                target,
                rejection.decision,
                rejection.by,
                rejection.name,
                rejection.created_at,
                rejection.reason,
            )
            why = f": {rejection.reason}" if rejection.reason else ""
            self._rollback(target, "ApprovalRejected", f"{entry.label}: rejected by {rejection.by}{why}")
            return self._move()
        if relevant:
            approval = relevant[0]
            self._record_approval(
                target, approval.decision, approval.by, approval.name, approval.created_at, approval.reason
            )
            self._complete(target, index, entry, plan)
            return self._move()
        if self._report_mismatched_approvals(index, target):
            return self._move()
        return self._move()

    def _report_mismatched_approvals(self, index: int, target: Target) -> bool:
        """An Approval made for this release during this attempt that does not name the waiting gate
        is reported once (an Event on it and the status message), never silently ignored."""
        started = self.status.rollout_started_at
        assert started is not None
        since = started.replace(microsecond=0)
        reported = False
        for approval in self.obs.approvals:
            if approval.created_at < since or (approval.revision, approval.step) == (target.revision, index):
                continue
            key = naming.notification_key(target.revision, self.status.attempt, f"ignored-{approval.name}")
            if key in self.status.notifications:
                continue
            wrong = []
            if approval.revision != target.revision:
                wrong.append(f"revision {approval.revision} (waiting: {target.revision})")
            if approval.step != index:
                wrong.append(f"step {approval.step} (waiting: {index})")
            message = f"Approval {approval.name} ignored: it names {' and '.join(wrong)}"
            self._set(
                notifications=(*self.status.notifications, key),
                message=f"{message}; still waiting for step {index} of revision {target.revision}",
            )
            self.events.append(
                decisions.Event(
                    type=decisions.EventType.WARNING,
                    reason="ApprovalIgnored",
                    message=message,
                    key=approval.name,
                    regarding_approval=approval.name,
                )
            )
            reported = True
        return reported

    def _record_approval(
        self,
        target: Target,
        decision: releasestatus.ApprovalDecision,
        by: str,
        via: str,
        at: datetime | None = None,
        reason: str = "",
    ) -> None:
        record = releasestatus.ApprovalRecord(
            step_index=self.status.current_step_index or 0,
            revision=target.revision,
            decision=decision,
            by=by,
            at=at or self.now,
            via=via,
            reason=reason,
        )
        self._set(approvals=(*self.status.approvals, record))
        self._event("Approval", f"{decision.value} by {by} via {via}")

    def _analysis_step(
        self, target: Target, index: int, entry: planning.PlannedStep, plan: planning.RolloutPlan
    ) -> Move:
        st = self.status
        assert entry.analysis is not None
        run = naming.analysis_run_name(self.name, target.revision, st.attempt, index)
        record = next((r for r in st.analysis if r.run == run), None)
        if record is None:
            seen, wanted = self.obs.traffic, self.desired_traffic
            if seen is None or wanted is None or not seen.matches(wanted):
                return self._move()  # the comparison starts once traffic is at this step's weight
            record = releasestatus.StepAnalysis(
                step_index=index, run=run, template=entry.analysis.template, started_at=self.now
            )
            self._set(
                analysis=(*st.analysis, record),
                phase=Phase.PROGRESSING,
                reason="Analysing",
                message=f"{entry.label}: comparing canary with stable",
            )
            self.acts.append(self._start_analysis(record))
            self._event("AnalysisStarted", f"{entry.label}: run {run}")
            return self._move()
        if record.verdict == Verdict.INCONCLUSIVE or record.finished_at is not None:
            return self._move()  # paused until promote or abort
        result = self.obs.analysis.get(run)
        verdict = result.verdict if result is not None else Verdict.RUNNING
        rule = result.rule if result is not None else None
        ends = record.started_at + entry.analysis.max_duration
        if verdict == Verdict.RUNNING and self.now >= ends:
            verdict = Verdict.INCONCLUSIVE
            rule = (
                f"maxDuration {schema.format_duration(entry.analysis.max_duration)} reached without a verdict"
            )
        if verdict == Verdict.RUNNING:
            return self._move(min(ends, self.now + POLL))
        metrics = result.metrics if result is not None else ()
        finished = record.model_copy(
            update={"finished_at": self.now, "verdict": verdict, "rule": rule, "metrics": metrics}
        )
        self._set(analysis=tuple(finished if r.run == run else r for r in st.analysis))
        self.acts.append(actions.StopAnalysis(run=run))
        summary = f"{entry.label}: {verdict.value}" + (f" ({rule})" if rule else "")
        self._notify(
            actions.NotificationEvent.ANALYSIS, target.revision, f"analysis-{index}", summary, verdict
        )
        if verdict == Verdict.PASS:
            self._event("AnalysisPassed", summary, key=run)
            self._complete(target, index, entry, plan)
        elif verdict == Verdict.FAIL:
            self._rollback(target, "AnalysisFailed", summary, metrics)
        else:
            message = f"{summary}; promote to continue or abort to roll back"
            self._set(phase=Phase.PAUSED, reason="AnalysisInconclusive", message=message)
            self._event("AnalysisInconclusive", message, warning=True, key=run)
        return self._move()

    def _complete(
        self, target: Target, index: int, entry: planning.PlannedStep, plan: planning.RolloutPlan
    ) -> None:
        last = index + 1 >= len(plan.steps)
        self._set(
            current_step_index=index + 1,
            step_started_at=self.now,
            canary_weight=entry.weight,
            phase=Phase.PROMOTING if last else Phase.PROGRESSING,
            reason="Promoting" if last else "StepCompleted",
            message=f"{entry.label} complete" + ("; promoting" if last else ""),
        )
        self._notify(
            actions.NotificationEvent.STEP_COMPLETED, target.revision, f"step-{index}", self.status.message
        )
        self._event("StepCompleted", self.status.message)

    def _promote_when_warm(self, target: Target, entry: planning.PlannedStep) -> Move:
        st = self.status
        if st.phase != Phase.PROMOTING:
            self._set(phase=Phase.PROMOTING, reason="Promoting", message="all steps complete; promoting")
            return self._move()
        canary = self.obs.workloads.get(naming.workload_name(self.name, target.revision))
        warm, warm_at = self._warm(canary, entry.canary_replicas)
        if not warm or not self._traffic_reached():
            return self._wait_for_warm(target, "promotion", canary, entry.canary_replicas, warm_at)
        assert st.stable_revision is not None
        previous = naming.workload_name(self.name, st.stable_revision)
        retire_at = self.now + self._scale_down_delay()
        message = (
            f"model {target.model_version} (revision {target.revision}) promoted; "
            f"previous stable {previous} is removed at {retire_at.isoformat()}"
        )
        self._set(
            stable_revision=target.revision,
            stable_model_version=target.model_version,
            stable_replicas=entry.canary_replicas,
            stable_gpus_per_replica=target.gpus_per_replica,
            canary_revision=None,
            canary_model_version=None,
            canary_weight=0,
            current_step_index=None,
            step_started_at=None,
            promote_full=False,
            retiring=(*st.retiring, releasestatus.Retiring(name=previous, at=retire_at)),
            phase=Phase.SUCCEEDED,
            reason="Promoted",
            message=message,
        )
        self.acts.append(self._promote_model(target))
        self._notify(actions.NotificationEvent.PROMOTED, target.revision, "promoted", message)
        self._event("Promoted", message, key="promoted")
        return self._move()

    def _promote_model(self, target: Target) -> actions.PromoteModel:
        return actions.PromoteModel(
            model_name=self.spec.model.name, version=target.model_version, alias=self.spec.model.promote_alias
        )

    def _rollback(
        self,
        target: Target,
        reason: str,
        message: str,
        evidence: tuple[verdicts.MetricResult, ...] = (),
    ) -> None:
        """Give all traffic back to stable (the hold path does it, traffic first), and say why."""
        st = self.status
        self._stop_running_analyses(f"rolled back: {reason}")
        self.acts.append(
            actions.TagRolledBack(
                model_name=self.spec.model.name, version=target.model_version, reason=reason
            )
        )
        if self.spec.git_write_back.enabled and st.stable_model_version is not None:
            self.acts.append(
                actions.WriteBackToGit(
                    key=naming.notification_key(target.revision, st.attempt, "writeback"),
                    model_name=self.spec.model.name,
                    restore_version=st.stable_model_version,
                    rolled_back_version=target.model_version,
                    reason=f"{reason}: {message}",
                )
            )
        rollback = releasestatus.Rollback(
            revision=target.revision,
            model_version=target.model_version,
            reason=reason,
            message=message,
            at=self.now,
            evidence=evidence,
        )
        self._notify(
            actions.NotificationEvent.ROLLED_BACK, target.revision, "rolledback", f"{reason}: {message}"
        )
        self._set(
            phase=Phase.ROLLED_BACK,
            reason=reason,
            message=message,
            last_rollback=rollback,
            canary_revision=None,
            canary_model_version=None,
            canary_weight=0,
            current_step_index=None,
            step_started_at=None,
            promote_full=False,
        )
        self._event(reason, message, warning=True, key="rolled-back")  # once per attempt


def _adds_exposure(desired: actions.SetTrafficWeight, current: obs_.Traffic | None) -> bool:
    """True when the change sends traffic somewhere it did not go before (so it waits until last)."""
    if current is None:
        return True
    if desired.stable_revision != current.stable_revision:
        return True
    if desired.canary_weight == 0 or desired.canary_revision is None:
        return False
    return desired.canary_revision != current.canary_revision or desired.canary_weight > current.canary_weight


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return min(known) if known else None
