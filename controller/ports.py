"""One `typing.Protocol` per external system the shell talks to; adapters implement them.

Every method raises only `controller.errors` types. `fetch_*` reads, `apply_*`/`post_*` write;
each write is idempotent (desired state, or deduplicated by the action's key), because after a
crash the engine may ask for the same action again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from analysis import verdicts
from controller.domain import actions, observations
from controller.domain import decision as decisions
from controller.resources import modelrelease, releasestatus


@dataclasses.dataclass(frozen=True)
class ReleaseRef:
    """The ModelRelease an adapter works for: where it lives, its uid (for ownership) and its spec."""

    namespace: str
    name: str
    uid: str
    spec: modelrelease.ModelReleaseSpec


class Releases(Protocol):
    """The ModelRelease objects themselves, as the API server holds them (raw: the runtime validates)."""

    def fetch_release(self, namespace: str, name: str) -> dict[str, Any]: ...
    def patch_release_status(
        self, namespace: str, name: str, resource_version: str, status_patch: dict[str, Any]
    ) -> None:
        """Merge-patch `.status`, refused (ConflictError) if the object changed since `resource_version`."""
        ...


class Workloads(Protocol):
    def fetch_workloads(self, release: ReleaseRef) -> dict[str, observations.Workload]: ...
    def fetch_referenced(self, namespace: str, name: str) -> tuple[dict[str, Any], int]: ...
    def apply_create(self, release: ReleaseRef, action: actions.CreateWorkload) -> None: ...
    def apply_scale(self, release: ReleaseRef, action: actions.ScaleWorkload) -> None: ...
    def apply_delete(self, release: ReleaseRef, action: actions.DeleteWorkload) -> None: ...
    def apply_cleanup(self, namespace: str, release: str, uid: str) -> None: ...


class TrafficRouter(Protocol):
    def fetch_traffic(self, release: ReleaseRef) -> observations.Traffic | None: ...
    def apply_weight(self, release: ReleaseRef, action: actions.SetTrafficWeight) -> None: ...


class AnalysisBackend(Protocol):
    """Judges analysis runs. `fetch_results` answers for every run of `runs` it knows, `Running` while
    it has no verdict: a run missing from the answer is one the backend lost (e.g. a stateful backend
    restarted), and the engine starts it again with `apply_start`. A stateless backend therefore never
    leaves a run out, or the engine would start it on every look."""

    def fetch_results(
        self, release: ReleaseRef, runs: Sequence[actions.StartAnalysis]
    ) -> dict[str, verdicts.AnalysisSummary]: ...
    def apply_start(self, release: ReleaseRef, action: actions.StartAnalysis) -> None: ...
    def apply_stop(self, release: ReleaseRef, action: actions.StopAnalysis) -> None: ...


class Approvals(Protocol):
    def fetch_approvals(self, release: ReleaseRef) -> tuple[observations.ObservedApproval, ...]:
        """This release's Approval decisions, oldest first; a malformed one approves nothing: left out."""
        ...


class Events(Protocol):
    """Kubernetes Events about a release. Each is named from what it says, so posting it again after a
    crash answers `False` (said before) and nothing is said twice."""

    def post_transition(
        self, release: ReleaseRef, event: decisions.Event, status: releasestatus.ModelReleaseStatus
    ) -> bool: ...
    def post_warning(self, release: ReleaseRef, reason: str, message: str, *identity: str) -> bool: ...
    def post_warning_about(
        self, namespace: str, name: str, uid: str, reason: str, message: str, *identity: str
    ) -> bool:
        """About a release whose spec could not be read (so no ReleaseRef exists)."""
        ...


class Notifier(Protocol):
    """Says what happens. Posting only queues (never waits on a chat service); `fetch_delivery` reads
    back how delivery goes, None for a notifier with nothing to report (Events)."""

    def post_notification(self, release: ReleaseRef, action: actions.Notify) -> None: ...
    def post_approval_request(self, release: ReleaseRef, action: actions.RequestApproval) -> None: ...
    def fetch_delivery(self, release: ReleaseRef) -> observations.NotificationDelivery | None: ...


class ModelRegistry(Protocol):
    def fetch_version(self, model: modelrelease.ModelRef) -> observations.RegistryVersion: ...
    def fetch_settled(self, write: releasestatus.RegistryWrite) -> observations.RegistrySettled | None:
        """Whether the registry holds an owed write (None: not yet)."""
        ...

    def apply_promotion(self, action: actions.PromoteModel) -> None: ...
    def apply_rolled_back_tag(self, action: actions.TagRolledBack) -> None: ...
    def apply_rollout_run(self, action: actions.LogRolloutRun) -> None: ...
    def fetch_alias(self, model_name: str, alias: str) -> str | None:
        """The version `alias` points at now; None when it points nowhere."""
        ...


class ReleaseRepository(Protocol):
    """The Git repository a release comes from, for the commit a rollback owes it."""

    def fetch_written_back(
        self, release: ReleaseRef, owed: releasestatus.GitWriteBack
    ) -> observations.WrittenBack | None: ...
    def apply_write_back(self, release: ReleaseRef, action: actions.WriteBackToGit) -> None: ...
    def fetch_proposed(
        self, release: ReleaseRef, owed: releasestatus.Proposal, target: modelrelease.BumpTarget
    ) -> observations.WrittenBack | None: ...
    def apply_bump(self, release: ReleaseRef, action: actions.ProposeBump) -> None: ...


@dataclasses.dataclass(frozen=True)
class Ports:
    """Every external system the reconciler talks to, one seam each."""

    releases: Releases
    workloads: Workloads
    router: Callable[[ReleaseRef], TrafficRouter]  # the router a release's spec.trafficRouting names
    analysis: AnalysisBackend
    approvals: Approvals
    notifier: Notifier
    registry: ModelRegistry
    repository: ReleaseRepository
    events: Events
