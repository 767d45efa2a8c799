"""What the shell saw of the world, handed to the engine as one frozen snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import Field

from analysis import schema, verdicts
from controller.domain import actions
from controller.resources import commands, modelrelease, releasestatus


class ReleaseIdentity(schema.Frozen):
    name: str
    namespace: str = "default"
    generation: int = 1


class RegistryVersion(schema.Frozen):
    """The registry's answer for spec.model: the version, its artifact URI, run, status and tags."""

    version: str
    uri: str
    tags: dict[str, str] = Field(default_factory=dict)
    run_id: str | None = None
    status: str = Field(
        "READY", description="MLflow's: READY, or PENDING_REGISTRATION / FAILED_REGISTRATION."
    )

    @property
    def ready(self) -> bool:
        return self.status == READY

    def unmet(self, required: dict[str, str]) -> str:
        """What the pre-flight gate (READY, and the required tags) lacks, in words; empty if it holds."""
        if not self.ready:
            return f"is {self.status} in the registry, not READY"
        lacking = {k: v for k, v in required.items() if self.tags.get(k) != v}
        if lacking:
            return "lacks the required tags " + ", ".join(f"{k}={v}" for k, v in sorted(lacking.items()))
        return ""


READY = "READY"


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
    mirror_percent: int = 0
    header_route: modelrelease.SetHeaderRoute | None = None

    @property
    def reaches_canary(self) -> bool:
        """Whether any request — served, mirrored or header-matched — goes to the canary now."""
        return self.canary_revision is not None and bool(
            self.canary_weight or self.mirror_percent or self.header_route
        )

    def matches(self, action: actions.SetTrafficWeight) -> bool:
        return (
            self.stable_revision,
            self.canary_revision,
            self.canary_weight,
            self.mirror_percent,
            self.header_route,
        ) == (
            action.stable_revision,
            action.canary_revision,
            action.canary_weight,
            action.mirror_percent,
            action.header_route,
        )


class ObservedApproval(schema.Frozen):
    name: str
    revision: str
    step: int
    decision: releasestatus.ApprovalDecision
    by: str
    identity: str = Field(description="Who counts toward a quorum: slack:<user ID> or kubernetes:<user>.")
    created_at: datetime
    reason: str = ""


class Commands(schema.Frozen):
    """Operator commands (annotations set by `kubectl annotate`): a fresh token is a new command."""

    tokens: dict[commands.Command, str] = Field(default_factory=dict)
    unknown: tuple[str, ...] = Field(
        (), description="Command annotations that name no command, as `annotation=token` (misspelt)."
    )

    def with_token(self, command: commands.Command, token: str) -> Commands:
        return self.model_copy(update={"tokens": {**self.tokens, command: token}})


class WrittenBack(schema.Frozen):
    """What the release repository holds for a commit status owes (a rollback's write-back, a bump
    proposal): the commit carrying its key, or the commit at which the file already says what the
    commit would have made it say, or no longer what it would have changed (someone moved on)."""

    key: str
    commit: str
    superseded: bool = False


class NotificationDelivery(schema.Frozen):
    """How the release's Slack messages are getting through, as the Slack adapter recorded it."""

    channel: str
    rollout: str | None = Field(None, description="The rollout (revision.attempt) thread_ts belongs to.")
    thread_ts: str | None = Field(None, description="That rollout's parent message, once posted.")
    undelivered: int = Field(0, description="Messages that failed at least once and are not yet posted.")
    failing_since: datetime | None = None
    last_error: str | None = None


class RegistrySettled(schema.Frozen):
    """The registry holds an owed write (or there is no registry to write to: `skipped`)."""

    message: str
    skipped: bool = False
    link: str | None = Field(None, description="Where to see it: the MLflow run of a logged rollout.")


class Observations(schema.Frozen):
    release: ReleaseIdentity
    model: RegistryVersion | None = None
    model_error: str | None = Field(None, description="Why the registry could not resolve spec.model.")
    workloads: dict[str, Workload] = Field(default_factory=dict)
    pod_selector: str | None = Field(
        None, description="The label selector of every pod of the release, all tracks (for /scale)."
    )
    traffic: Traffic | None = None
    analysis: dict[str, verdicts.AnalysisSummary] = Field(default_factory=dict)
    approvals: tuple[ObservedApproval, ...] = ()
    commands: Commands = Commands()
    written_back: WrittenBack | None = Field(
        None, description="Read only while status owes a Git write-back: what Git holds for its key."
    )
    followed: RegistryVersion | None = Field(
        None,
        description="The version spec.model.follow's alias points at, with its status and tags (what the "
        "gate checks); None: not followed, unknown, or nowhere.",
    )
    proposed: WrittenBack | None = Field(
        None, description="Read only while status owes a bump proposal: what Git holds for its key."
    )
    registry_settled: dict[str, RegistrySettled] = Field(
        default_factory=dict, description="Read only while status owes registry writes: those done, by key."
    )
    notifications: NotificationDelivery | None = Field(
        None, description="The Slack adapter's delivery record; None without Slack."
    )
