"""What the engine wants done, as desired state. Executing an action twice changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from analysis import schema, verdicts
from controller.resources import modelrelease, releasestatus


class Track(StrEnum):
    """What a workload is to its release: the label `modelrelease.dev/track` and the PromQL `{{track}}`."""

    STABLE = "stable"
    CANARY = "canary"
    PREVIEW = "preview"  # blue-green: the new version, before and after the switch


class CreateWorkload(schema.Frozen):
    """A Deployment `name` serving `revision` exists (created with `replicas` if absent)."""

    type: Literal["CreateWorkload"] = "CreateWorkload"
    name: str
    revision: str
    track: Track
    replicas: int
    model_name: str
    model_version: str
    model_uri: str
    serving: modelrelease.Serving
    gpus_per_replica: int


class ScaleWorkload(schema.Frozen):
    type: Literal["ScaleWorkload"] = "ScaleWorkload"
    name: str
    replicas: int


class DeleteWorkload(schema.Frozen):
    type: Literal["DeleteWorkload"] = "DeleteWorkload"
    name: str


class SetTrafficWeight(schema.Frozen):
    """All traffic goes to stable except `canary_weight` percent to the canary (if any).

    With no canary, or weight 0, the canary (or blue-green preview) takes no production traffic.
    """

    type: Literal["SetTrafficWeight"] = "SetTrafficWeight"
    stable_revision: str
    canary_revision: str | None
    canary_weight: int = Field(ge=0, le=100)
    mirror_percent: int = Field(
        0, ge=0, le=100, description="Share of the stable's requests copied to the canary (a shadow)."
    )
    header_route: modelrelease.SetHeaderRoute | None = Field(
        None, description="Requests that match go to the canary, whatever the weight."
    )

    @property
    def reaches_canary(self) -> bool:
        """Whether any request — served, mirrored or header-matched — goes to the canary."""
        return self.canary_revision is not None and bool(
            self.canary_weight or self.mirror_percent or self.header_route
        )


class StartAnalysis(schema.Frozen):
    """An analysis run: the canary against the baseline from `start`, for at most `max_duration`.

    Also the descriptor the analysis backend is asked about on every look while the run is running.
    """

    type: Literal["StartAnalysis"] = "StartAnalysis"
    run: str
    template: str
    step_index: int
    canary_revision: str
    canary_track: Track
    canary_model_version: str
    baseline_revision: str
    start: datetime
    max_duration: timedelta
    # Where the evidence starts: the canary's start in this rollout, so an analysis step builds on
    # the traffic of the steps before it (the count-ratio tests do not mind the weight changing).
    evidence_since: datetime | None = None
    # The judge's compact state after the intervals it has folded (from the run's record in status):
    # a look reads and folds only what is new, whether or not the controller restarted.
    evidence: verdicts.EvidenceRecord | None = None


class StopAnalysis(schema.Frozen):
    type: Literal["StopAnalysis"] = "StopAnalysis"
    run: str


class RequestApproval(schema.Frozen):
    """Ask approvers (Slack buttons if `slack`) to approve gate `step_index` of `revision`."""

    type: Literal["RequestApproval"] = "RequestApproval"
    key: str
    step_index: int
    revision: str
    model_version: str
    slack: bool
    channel: str | None


class NotificationEvent(StrEnum):
    STARTED = "Started"
    STEP_COMPLETED = "StepCompleted"
    ANALYSIS = "Analysis"
    PAUSED = "Paused"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"
    APPROVAL = "Approval"


class Notify(schema.Frozen):
    """Tell the release's channel. `key` is unique per message; adapters may use it to deduplicate."""

    type: Literal["Notify"] = "Notify"
    key: str
    channel: str
    event: NotificationEvent
    revision: str
    model_version: str | None
    message: str
    verdict: verdicts.Verdict | None = None
    metrics: tuple[verdicts.MetricResult, ...] = Field((), description="An analysis verdict's evidence.")
    step_index: int | None = Field(None, description="The step it is about (an analysis, an approval).")
    closes_gate: bool = Field(
        False, description="An approval that decided its gate (quorum met, or a rejection)."
    )


class PromoteModel(schema.Frozen):
    """Point the registry alias at the promoted version."""

    type: Literal["PromoteModel"] = "PromoteModel"
    key: str
    model_name: str
    version: str
    alias: str


class TagRolledBack(schema.Frozen):
    """Mark a registry version as rolled back, with the reason."""

    type: Literal["TagRolledBack"] = "TagRolledBack"
    key: str
    model_name: str
    version: str
    reason: str


class LogRolloutRun(schema.Frozen):
    """Log a finished rollout as an MLflow run: its verdicts as metrics, its judgement as JSON."""

    type: Literal["LogRolloutRun"] = "LogRolloutRun"
    key: str
    run: releasestatus.RolloutRun


class WriteBackToGit(schema.Frozen):
    """Make the release manifest in Git say `restore_version` again, so Git matches the cluster."""

    type: Literal["WriteBackToGit"] = "WriteBackToGit"
    key: str
    model_name: str
    restore_version: str
    rolled_back_version: str
    reason: str
    evidence: tuple[str, ...] = ()
    attempt: int = Field(1, ge=1, description="Which try this is: a failure is said once per try.")


class ProposeBump(schema.Frozen):
    """Commit `version` as the release's spec.model.version in Git (on its branch or a bump branch),
    because the followed alias moved there."""

    type: Literal["ProposeBump"] = "ProposeBump"
    key: str
    model_name: str
    alias: str
    from_version: str
    version: str
    target: modelrelease.BumpTarget
    attempt: int = Field(1, ge=1, description="Which try this is: a failure is said once per try.")


Action = Annotated[
    CreateWorkload
    | ScaleWorkload
    | DeleteWorkload
    | SetTrafficWeight
    | StartAnalysis
    | StopAnalysis
    | RequestApproval
    | Notify
    | PromoteModel
    | LogRolloutRun
    | TagRolledBack
    | WriteBackToGit
    | ProposeBump,
    Field(discriminator="type"),
]
