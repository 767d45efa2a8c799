"""A small in-memory world for exercising the engine: Deployments that become Ready after a
start delay, a traffic router, scripted analysis verdicts and approvers, and a clock.

It checks the engine's safety invariants after every single action, so a decision whose
prefix would overload the GPU budget or send traffic to a cold workload fails the test at
the exact action that did it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from analysis import verdicts
from controller.domain import actions, engine, naming
from controller.domain import decision as decisions
from controller.domain import observations as obs_
from controller.resources import modelrelease, releasestatus

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
RELEASE = "fraud"

VerdictScript = Callable[[actions.StartAnalysis, datetime], verdicts.Verdict]


def passes_after(delay: timedelta) -> VerdictScript:
    def script(run: actions.StartAnalysis, now: datetime) -> verdicts.Verdict:
        return verdicts.Verdict.PASS if now >= run.start + delay else verdicts.Verdict.RUNNING

    return script


def fails_after(delay: timedelta) -> VerdictScript:
    def script(run: actions.StartAnalysis, now: datetime) -> verdicts.Verdict:
        return verdicts.Verdict.FAIL if now >= run.start + delay else verdicts.Verdict.RUNNING

    return script


def always(verdict: verdicts.Verdict) -> VerdictScript:
    return lambda run, now: verdict


class InvariantBrokenError(AssertionError):
    pass


@dataclass
class Deployment:
    """A Deployment with its pods: each pod becomes Ready `start_delay` after it started."""

    name: str
    revision: str
    gpus_per_replica: int
    pods: list[datetime] = field(default_factory=list)  # start times, oldest first

    @property
    def replicas(self) -> int:
        return len(self.pods)

    def ready_at(self, start_delay: timedelta, never: bool) -> list[datetime]:
        return [] if never else [start + start_delay for start in self.pods]

    def scale(self, replicas: int, now: datetime) -> None:
        # Kubernetes removes the newest (least ready) pods first when scaling down.
        self.pods = self.pods[:replicas] + [now] * max(0, replicas - len(self.pods))


@dataclass
class World:
    model_version: str = "7"
    now: datetime = T0
    start_delay: timedelta = timedelta(seconds=20)
    never_ready: set[str] = field(default_factory=set)  # revisions whose pods never become Ready
    deployments: dict[str, Deployment] = field(default_factory=dict)
    traffic: obs_.Traffic | None = None
    runs: dict[str, actions.StartAnalysis] = field(default_factory=dict)
    verdict: VerdictScript = field(default_factory=lambda: passes_after(timedelta(minutes=5)))
    approvals: list[obs_.ObservedApproval] = field(default_factory=list)
    approver: Callable[[actions.RequestApproval, datetime], releasestatus.ApprovalDecision | None] | None = (
        None
    )
    commands: obs_.Commands = field(default_factory=obs_.Commands)
    generation: int = 1
    gpu_budget: int | None = None
    log: list[tuple[datetime, actions.Action]] = field(default_factory=list)
    requests: list[actions.RequestApproval] = field(default_factory=list)
    peak_gpus: int = 0
    creations: list[str] = field(default_factory=list)  # every Deployment really created, in order
    model_tags: dict[str, str] = field(default_factory=dict)
    model_status: str = "READY"
    registry_down: bool = False
    registry_pinned: bool = False  # no registry configured: every write settles as skipped
    metrics_down: str | None = None  # the analysis backend's outage, as the shell reports it
    registry_writes: dict[str, str] = field(default_factory=dict)  # key → what the registry now holds
    git_commits: dict[str, str] = field(default_factory=dict)  # write-back key -> the commit carrying it
    git_down: bool = False  # write-backs fail (the repository is unreachable)
    followed_alias_at: str | None = None  # where spec.model.follow's alias points
    followed_tags: dict[str, str] = field(default_factory=dict)  # that version's tags and status
    followed_status: str = "READY"
    bumps: dict[str, str] = field(default_factory=dict)  # bump key -> the commit carrying it
    adopted_replicas: dict[str, int] = field(default_factory=dict)  # workloadRef Deployments scaled

    def read_adopted(self, spec: modelrelease.ModelReleaseSpec) -> modelrelease.ModelReleaseSpec:
        """The spec as the shell hands it over: the adopted Deployment read again (its size now)."""
        ref, adopted = spec.serving.workload_ref, spec.serving.adopted
        if ref is None or adopted is None or ref.name not in self.adopted_replicas:
            return spec
        serving = spec.serving.adopting(adopted.template, self.adopted_replicas[ref.name])
        return spec.model_copy(update={"serving": serving})

    # -- the world moving on its own --------------------------------------------------------

    def tick(self, by: timedelta) -> None:
        self.now += by
        self._answer_requests()

    def _answer_requests(self) -> None:
        """Approvers answer a request some time after it was made, never within the same instant."""
        if self.approver is None:
            return
        for request in self.requests:
            decided = self.approver(request, self.now)
            if decided is not None:
                self.approve(request.revision, request.step_index, decided)
        self.requests.clear()

    # -- executing the engine's actions -----------------------------------------------------

    def execute(self, action: actions.Action) -> None:
        self.log.append((self.now, action))
        match action:
            case actions.CreateWorkload():
                if action.name not in self.deployments:
                    created = Deployment(action.name, action.revision, action.gpus_per_replica)
                    created.scale(action.replicas, self.now)
                    self.deployments[action.name] = created
                    self.creations.append(action.name)
            case actions.ScaleWorkload():
                if action.name in self.deployments:
                    self.deployments[action.name].scale(action.replicas, self.now)
                else:  # a Deployment the release adopted (workloadRef): only its size is ours to set
                    self.adopted_replicas[action.name] = action.replicas
            case actions.DeleteWorkload():
                self.deployments.pop(action.name, None)
            case actions.SetTrafficWeight():
                self.traffic = obs_.Traffic(
                    stable_revision=action.stable_revision,
                    canary_revision=action.canary_revision,
                    canary_weight=action.canary_weight,
                    mirror_percent=action.mirror_percent,
                    header_route=action.header_route,
                )
            case actions.StartAnalysis():
                self.runs.setdefault(action.run, action)
            case actions.StopAnalysis():
                pass
            case actions.RequestApproval():
                self.requests.append(action)
            case actions.PromoteModel() | actions.TagRolledBack():
                if not self.registry_down:  # like the adapter: idempotent, the alias checked first
                    self.registry_writes.setdefault(action.key, f"{action.type} {action.version}")
            case actions.LogRolloutRun():
                if not self.registry_down:  # like the adapter: the run found again by its key
                    self.registry_writes.setdefault(action.key, f"run of {action.run.record.revision}")
            case actions.ProposeBump():
                if not self.git_down:  # like the adapter: a key already in Git is not committed again
                    self.bumps.setdefault(action.key, f"bump-{len(self.bumps) + 1}")
            case actions.WriteBackToGit():
                if not self.git_down:  # like the adapter: a key already in Git is not committed again
                    self.git_commits.setdefault(action.key, f"commit-{len(self.git_commits) + 1}")
            case _:
                pass
        self.check_invariants()

    def approve(
        self,
        revision: str,
        step: int,
        decision: releasestatus.ApprovalDecision,
        by: str = "ana",
        identity: str | None = None,
    ) -> None:
        self.approvals.append(
            obs_.ObservedApproval(
                name=f"approval-{len(self.approvals)}",
                revision=revision,
                step=step,
                decision=decision,
                by=by,
                identity=identity or f"kubernetes:{by}",
                created_at=self.now,
            )
        )

    def total_gpus(self) -> int:
        return sum(d.replicas * d.gpus_per_replica for d in self.deployments.values())

    def check_invariants(self) -> None:
        gpus = self.total_gpus()
        self.peak_gpus = max(self.peak_gpus, gpus)
        if self.gpu_budget is not None and gpus > self.gpu_budget:
            raise InvariantBrokenError(f"{gpus} GPUs requested, budget {self.gpu_budget}: {self.deployments}")
        t = self.traffic
        if t is not None and t.canary_revision is not None and t.canary_weight > 0:
            canary = self._by_revision(t.canary_revision)
            if canary is None or self.ready_replicas(canary) == 0:
                raise InvariantBrokenError(
                    f"{t.canary_weight}% of traffic sent to {t.canary_revision}, which is not Ready"
                )
        if t is not None and (t.canary_weight < 100 or t.canary_revision is None):
            stable = self._by_revision(t.stable_revision)
            if stable is None or self.ready_replicas(stable) == 0:
                raise InvariantBrokenError(f"traffic sent to stable {t.stable_revision}, which is not Ready")

    def _by_revision(self, revision: str) -> Deployment | None:
        return next((d for d in self.deployments.values() if d.revision == revision), None)

    def ready_pods_since(self, deployment: Deployment) -> tuple[datetime, ...]:
        ready = deployment.ready_at(self.start_delay, deployment.revision in self.never_ready)
        return tuple(sorted(t for t in ready if t <= self.now))

    def ready_replicas(self, deployment: Deployment) -> int:
        return len(self.ready_pods_since(deployment))

    # -- what the shell would observe -------------------------------------------------------

    def observe(self) -> obs_.Observations:
        analysis = {
            name: verdicts.AnalysisSummary(verdict=self.verdict(run, self.now), rule="scripted")
            if self.metrics_down is None
            else verdicts.AnalysisSummary(
                verdict=verdicts.Verdict.RUNNING,
                rule=f"metrics unavailable: {self.metrics_down}",
                unavailable=self.metrics_down,
            )
            for name, run in self.runs.items()
        }
        return obs_.Observations(
            release=obs_.ReleaseIdentity(name=RELEASE, generation=self.generation),
            pod_selector=f"modelrelease.dev/release={RELEASE}",
            model=obs_.RegistryVersion(
                version=self.model_version,
                uri=f"models:/fraud/{self.model_version}",
                tags=self.model_tags,
                status=self.model_status,
            ),
            workloads={
                d.name: obs_.Workload(
                    name=d.name,
                    revision=d.revision,
                    replicas=d.replicas,
                    ready_pods_since=self.ready_pods_since(d),
                )
                for d in self.deployments.values()
            },
            traffic=self.traffic,
            analysis=analysis,
            approvals=tuple(self.approvals),
            commands=self.commands,
            written_back=self._written_back(),
            followed=None
            if self.followed_alias_at is None
            else obs_.RegistryVersion(
                version=self.followed_alias_at,
                uri=f"models:/fraud/{self.followed_alias_at}",
                tags=self.followed_tags,
                status=self.followed_status,
            ),
            proposed=next(
                (obs_.WrittenBack(key=key, commit=commit) for key, commit in reversed(self.bumps.items())),
                None,
            ),
            registry_settled={
                key: obs_.RegistrySettled(
                    message=done,
                    link=f"runs:/{key}" if done.startswith("run of") else None,
                    skipped=self.registry_pinned,
                )
                for key, done in self.registry_writes.items()
            },
        )

    def _written_back(self) -> obs_.WrittenBack | None:
        return next(
            (obs_.WrittenBack(key=key, commit=commit) for key, commit in reversed(self.git_commits.items())),
            None,
        )

    def executed(self, kind: type[actions.Action]) -> list[actions.Action]:  # type: ignore[valid-type]
        return [a for _, a in self.log if isinstance(a, kind)]


@dataclass
class Run:
    """Drives reconcile → execute → wait, like the runtime, until the release settles."""

    spec: modelrelease.ModelReleaseSpec
    world: World
    status: releasestatus.ModelReleaseStatus = field(default_factory=releasestatus.ModelReleaseStatus)
    decisions: list[decisions.Decision] = field(default_factory=list)
    idle_step: timedelta = timedelta(seconds=10)

    def reconcile(self) -> decisions.Decision:
        """As the runtime does: decide, execute, write status, and again at once while the engine says
        more moves are due (requeue zero). Returns the decisions of this instant as one."""
        done: list[actions.Action] = []
        said: list[decisions.Event] = []
        for _ in range(engine.MAX_MOVES):
            self.spec = self.world.read_adopted(self.spec)
            decision = engine.reconcile(self.spec, self.status, self.world.observe(), now=self.world.now)
            for action in decision.actions:
                self.world.execute(action)
            self.status = decision.status
            done.extend(decision.actions)
            said.extend(decision.events)
            if decision.requeue_after != timedelta(0):
                break
        else:
            raise AssertionError(f"still moving after {engine.MAX_MOVES} decisions at one instant")
        whole = decision.model_copy(update={"actions": tuple(done), "events": tuple(said)})
        self.decisions.append(whole)
        return whole

    def until(self, done: Callable[[Run], bool], limit: timedelta = timedelta(hours=6)) -> Run:
        end = self.world.now + limit
        while self.world.now < end:
            decision = self.reconcile()
            if done(self):
                return self
            wait = decision.requeue_after if decision.requeue_after else self.idle_step
            self.world.tick(min(max(wait, timedelta(seconds=1)), self.idle_step))
        raise AssertionError(f"not done within {limit}: {self.status.phase} {self.status.message}")

    def settle(self, limit: timedelta = timedelta(hours=6)) -> Run:
        """Until a terminal phase with nothing left to do (including scale-down delays)."""
        terminal = {
            releasestatus.Phase.SUCCEEDED,
            releasestatus.Phase.ROLLED_BACK,
            releasestatus.Phase.BLOCKED,
            releasestatus.Phase.FAILED,
        }

        def quiet(run: Run) -> bool:
            last = run.decisions[-1]
            return run.status.phase in terminal and not last.actions and last.requeue_after is None

        return self.until(quiet, limit)

    def in_phase(self, *phases: releasestatus.Phase) -> Run:
        return self.until(lambda run: run.status.phase in phases)

    def set_spec(self, spec: modelrelease.ModelReleaseSpec) -> None:
        self.spec = spec
        self.world.generation += 1


def workload(revision: str) -> str:
    return naming.workload_name(RELEASE, revision)
