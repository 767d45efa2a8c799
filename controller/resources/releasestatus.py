"""ModelRelease status: everything the engine needs to resume, and what SREs read with kubectl.

The controller may be killed at any instant; the next reconcile continues from this
object alone, so whatever decides the next step is stored here, not in process memory.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from analysis import schema, verdicts
from controller.resources import commands, meta


class Phase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    AWAITING_APPROVAL = "AwaitingApproval"
    PROMOTING = "Promoting"
    SUCCEEDED = "Succeeded"
    ROLLED_BACK = "RolledBack"
    BLOCKED = "Blocked"  # the new revision cannot start (GPU budget, model, route); stable keeps serving
    FAILED = "Failed"  # nothing serves as the spec asks: a first deploy that failed, an invalid spec


ROLLOUT_PHASES = frozenset({Phase.PROGRESSING, Phase.PAUSED, Phase.AWAITING_APPROVAL, Phase.PROMOTING})


class ApprovalDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


# The step index recorded for the background analysis, which belongs to no step.
BACKGROUND_STEP = -1


class StepAnalysis(schema.Frozen):
    """One analysis run of the current rollout, with the judge's evidence once it has a verdict."""

    step_index: int
    run: str
    template: str
    started_at: datetime
    finished_at: datetime | None = None
    verdict: verdicts.Verdict = verdicts.Verdict.RUNNING
    rule: str | None = None
    metrics: tuple[verdicts.MetricResult, ...] = ()
    # What was compared, so the verdict report can replay it after the rollout has ended.
    canary_revision: str | None = None
    canary_track: str | None = Field(None, description="The canary's pods' track label: canary or preview.")
    canary_model_version: str | None = None
    baseline_revision: str | None = None
    evidence_since: datetime | None = Field(None, description="Where the judged evidence starts.")
    evidence: verdicts.EvidenceRecord | None = Field(
        None,
        description="The judge's compact state while the run is running: each look folds in only "
        "the intervals that are new since it (cleared when the run finishes).",
    )


class ApprovalRecord(schema.Frozen):
    """Who let a gate pass (or stopped it), when and how: the audit trail in status."""

    step_index: int
    revision: str
    decision: ApprovalDecision
    by: str
    identity: str | None = Field(None, description="Who counted toward the quorum (Approval spec.identity).")
    at: datetime
    via: str = Field(
        description="Approval object name, or 'promote' / 'promote-full' for an operator command."
    )
    reason: str = Field("", description="Why, as the approver wrote it (a rejection's reason).")


class ResolvedModel(schema.Frozen):
    """A registry version and its artifact URI, pinned for as long as the model reference is unchanged."""

    reference: str = Field(description="Hash of spec.model this resolution belongs to.")
    version: str
    uri: str


class GitWriteBack(schema.Frozen):
    """The commit that makes Git say the stable version again after a rollback: owed until `commit`
    is set. `key` is its idempotency key, carried in the commit's trailer."""

    key: str
    model_name: str
    restore_version: str
    rolled_back_version: str
    reason: str
    evidence: tuple[str, ...] = Field((), description="The failing metrics, as the commit message says them.")
    commit: str | None = Field(
        None, description="The commit found in Git carrying the key; unset while owed."
    )
    attempted_at: datetime | None = Field(None, description="Last time the commit was asked for.")
    attempts: int = Field(0, ge=0, description="How often the commit was asked for.")
    outcome: str | None = Field(None, description="What was done: committed, or why nothing was needed.")

    @property
    def settled(self) -> bool:
        """Done with: committed, found in Git, or dropped because the release moved on."""
        return self.outcome is not None


class Rollback(schema.Frozen):
    revision: str
    model_version: str | None = None
    reason: str
    message: str
    at: datetime
    evidence: tuple[verdicts.MetricResult, ...] = ()
    git_write_back: GitWriteBack | None = None


class RolloutOutcome(StrEnum):
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"


# Past rollouts kept in status: enough to answer "what happened lately", small enough for etcd.
HISTORY_LIMIT = 10


class RolloutRecord(schema.Frozen):
    """One finished rollout: what it tried, from what, how it ended and why."""

    revision: str
    model_version: str | None = None
    from_model_version: str | None = None
    attempt: int = 1
    outcome: RolloutOutcome
    reason: str
    message: str = ""
    started_at: datetime | None = None
    ended_at: datetime
    waited_for_people_seconds: float = Field(
        0.0, description="Of the rollout's time, how long it waited for people (open pauses, approvals)."
    )
    mlflow_run: str | None = Field(
        None, description="The MLflow run this rollout was logged as (experiment modelrelease), once logged."
    )


class RolloutRun(schema.Frozen):
    """What the MLflow run of a finished rollout records: how it ended and every analysis verdict."""

    release: str = Field(description="namespace/name of the release.")
    record: RolloutRecord
    analysis: tuple[StepAnalysis, ...] = ()


class Retiring(schema.Frozen):
    """A previous stable kept running until `at`, then removed."""

    name: str
    at: datetime


class HandledCommands(schema.Frozen):
    """The last operator command token acted on, per command, so each is acted on once."""

    abort: str | None = None
    promote: str | None = None
    promote_full: str | None = None
    retry: str | None = None

    def token(self, command: commands.Command) -> str | None:
        match command:
            case commands.Command.ABORT:
                return self.abort
            case commands.Command.PROMOTE:
                return self.promote
            case commands.Command.PROMOTE_FULL:
                return self.promote_full
            case commands.Command.RETRY:
                return self.retry

    def with_token(self, command: commands.Command, token: str) -> HandledCommands:
        match command:
            case commands.Command.ABORT:
                return self.model_copy(update={"abort": token})
            case commands.Command.PROMOTE:
                return self.model_copy(update={"promote": token})
            case commands.Command.PROMOTE_FULL:
                return self.model_copy(update={"promote_full": token})
            case commands.Command.RETRY:
                return self.model_copy(update={"retry": token})


class RegistryWrite(schema.Frozen):
    """A registry update a rollout owes — the promotion alias moved, or the rolled-back tag — kept
    until the registry is seen to hold it, so a registry outage never holds a rollout."""

    key: str
    model_name: str
    version: str
    alias: str | None = Field(
        None, description="Move this alias to the version (a promotion); none: a rollback."
    )
    reason: str = Field("", description="A rollback's reason, tagged on the version.")
    run: RolloutRun | None = Field(None, description="Log this finished rollout as an MLflow run.")
    attempted_at: datetime | None = None
    attempts: int = 0


class Proposal(schema.Frozen):
    """The commit proposing the version a followed alias moved to (spec.model.follow): owed until
    `commit` is set; `key` is its idempotency key, carried in the commit's trailer."""

    key: str
    alias: str
    version: str = Field(description="The version the alias moved to, proposed for spec.model.version.")
    from_version: str
    held: str | None = Field(
        None,
        description="Why the pre-flight gate would refuse this version (not READY, required tags "
        "missing): not committed while set.",
    )
    commit: str | None = Field(
        None, description="The commit found in Git carrying the key; unset while owed."
    )
    attempted_at: datetime | None = None
    attempts: int = Field(0, ge=0, description="How often the commit was asked for.")
    outcome: str | None = Field(
        None, description="What was done: committed where, or why nothing was needed."
    )


class SlackThread(schema.Frozen):
    """The Slack message a rollout is followed in: updated in place, its replies threaded under it."""

    channel: str
    rollout: str = Field(description="revision.attempt of the rollout it follows.")
    thread_ts: str = Field(description="The parent message's ts: its id in Slack.")


class ModelReleaseStatus(schema.Frozen):
    phase: Phase = Phase.PENDING
    reason: str | None = None
    message: str = ""
    observed_generation: int | None = None
    revision: str | None = Field(None, description="Revision of the current spec (pod template + model).")
    stable_revision: str | None = None
    stable_model_version: str | None = None
    stable_replicas: int | None = None
    stable_gpus_per_replica: int = 0
    replicas: int | None = Field(
        None, description="Pods the release's Deployments ask for now, all tracks (the /scale status)."
    )
    selector: str | None = Field(
        None, description="Label selector of the release's pods, all tracks (the /scale selector)."
    )
    canary_revision: str | None = None
    canary_model_version: str | None = None
    resolved_model: ResolvedModel | None = None
    attempt: int = Field(
        0, description="Counts rollouts of the current canary revision (retries, step edits)."
    )
    rollout_started_at: datetime | None = None
    current_step_index: int | None = None
    step_started_at: datetime | None = None
    waited_for_people_seconds: float = Field(
        0.0, description="Time this rollout has spent in steps that wait for people (open pauses, approvals)."
    )
    steps_hash: str | None = None
    promote_full: bool = False
    canary_weight: int = 0
    analysis: tuple[StepAnalysis, ...] = ()
    approvals: tuple[ApprovalRecord, ...] = ()
    last_rollback: Rollback | None = None
    history: tuple[RolloutRecord, ...] = Field((), description="Finished rollouts, newest last.")
    retiring: tuple[Retiring, ...] = ()
    handled_commands: HandledCommands = HandledCommands()
    notifications: tuple[str, ...] = Field((), description="Notification keys already sent.")
    slack: SlackThread | None = None
    registry_owed: tuple[RegistryWrite, ...] = Field((), description="Registry updates not yet seen done.")
    proposal: Proposal | None = Field(
        None, description="The last version bump proposed from a followed alias."
    )
    conditions: tuple[meta.Condition, ...] = ()

    @property
    def last_verdict(self) -> verdicts.Verdict | None:
        return self.analysis[-1].verdict if self.analysis else None
