"""What the shell saw of the world, handed to the engine as one frozen snapshot.

`project` applies the engine's own actions to a snapshot, as the world will look right after
they run (a scaled-up workload is not yet Ready, a traffic change is in force). The engine
uses it to keep deciding within one call until nothing more can happen without the world
moving, so replaying a decision on its own output yields nothing new.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import Field

from analysis import schema, verdicts
from controller.domain import actions
from controller.resources import releasestatus


class ReleaseIdentity(schema.Frozen):
    name: str
    namespace: str = "default"
    generation: int = 1


class RegistryVersion(schema.Frozen):
    """The registry's answer for spec.model: the version, its artifact URI and its tags."""

    version: str
    uri: str
    tags: dict[str, str] = Field(default_factory=dict)


class Workload(schema.Frozen):
    """A Deployment of this release, as the shell read it."""

    name: str
    revision: str
    replicas: int = Field(description="Desired replicas (spec.replicas).")
    ready_pods_since: tuple[datetime, ...] = Field(
        (), description="When each Ready pod became Ready, oldest first: one entry per Ready pod."
    )
    failing: str | None = Field(None, description="Why pods cannot start (crash loop, unschedulable).")

    @property
    def ready_replicas(self) -> int:
        return len(self.ready_pods_since)

    def warm_at(self, replicas: int, warmup: timedelta) -> datetime | None:
        """When `replicas` pods will have been Ready for `warmup`; None while fewer are Ready."""
        if replicas <= 0:
            return datetime.min.replace(tzinfo=UTC)
        if len(self.ready_pods_since) < replicas:
            return None
        return sorted(self.ready_pods_since)[replicas - 1] + warmup


class Traffic(schema.Frozen):
    stable_revision: str
    canary_revision: str | None
    canary_weight: int

    def matches(self, action: actions.SetTrafficWeight) -> bool:
        return (self.stable_revision, self.canary_revision, self.canary_weight) == (
            action.stable_revision,
            action.canary_revision,
            action.canary_weight,
        )


class ObservedApproval(schema.Frozen):
    name: str
    revision: str
    step: int
    decision: releasestatus.ApprovalDecision
    by: str
    created_at: datetime
    reason: str = ""


class Commands(schema.Frozen):
    """Operator commands (annotations set by `kubectl modelrelease …`): a fresh token is a new command."""

    abort: str | None = None
    promote: str | None = None
    promote_full: str | None = None
    retry: str | None = None
    unknown: tuple[str, ...] = Field(
        (), description="Command annotations that name no command, as `annotation=token` (misspelt)."
    )


class Observations(schema.Frozen):
    release: ReleaseIdentity
    model: RegistryVersion | None = None
    model_error: str | None = Field(None, description="Why the registry could not resolve spec.model.")
    workloads: dict[str, Workload] = Field(default_factory=dict)
    traffic: Traffic | None = None
    analysis: dict[str, verdicts.AnalysisSummary] = Field(default_factory=dict)
    approvals: tuple[ObservedApproval, ...] = ()
    commands: Commands = Commands()


def project(observations: Observations, done: tuple[actions.Action, ...]) -> Observations:
    """The snapshot as it will be right after `done` ran, before anything else moves."""
    workloads = dict(observations.workloads)
    traffic = observations.traffic
    analysis = dict(observations.analysis)
    for action in done:
        match action:
            case actions.CreateWorkload() if action.name not in workloads:
                workloads[action.name] = Workload(
                    name=action.name, revision=action.revision, replicas=action.replicas
                )
            case actions.ScaleWorkload() if action.name in workloads:
                # Scaling down removes the newest pods first; scaling up adds pods not yet Ready.
                current = workloads[action.name]
                kept = tuple(sorted(current.ready_pods_since)[: action.replicas])
                workloads[action.name] = current.model_copy(
                    update={"replicas": action.replicas, "ready_pods_since": kept}
                )
            case actions.DeleteWorkload():
                workloads.pop(action.name, None)
            case actions.SetTrafficWeight():
                traffic = Traffic(
                    stable_revision=action.stable_revision,
                    canary_revision=action.canary_revision,
                    canary_weight=action.canary_weight,
                )
            case actions.StartAnalysis() if action.run not in analysis:
                analysis[action.run] = verdicts.AnalysisSummary(verdict=verdicts.Verdict.RUNNING)
            case _:
                pass
    return observations.model_copy(update={"workloads": workloads, "traffic": traffic, "analysis": analysis})
