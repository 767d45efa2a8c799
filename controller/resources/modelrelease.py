"""ModelRelease spec: which model version to serve, how to serve it, and how to roll it out."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import Field, PrivateAttr, StringConstraints, field_validator, model_validator

from analysis import schema
from controller.resources import gitsource, meta


class BumpTarget(StrEnum):
    """Where the commit proposing a followed alias's new version goes."""

    BRANCH = "branch"  # straight onto the release's branch: the rollout starts once synced
    BUMP_BRANCH = "bumpBranch"  # onto bump/<release>-<version>, for a pull request and its checks


class FollowAlias(schema.Frozen):
    """Propose, through Git, the version a registry alias moves to: the release still pins a version,
    and a commit (or a bump branch for a PR) changes it when the alias moves."""

    alias: str = Field(min_length=1, description="The alias followed, e.g. 'champion-candidate'.")
    target: BumpTarget = Field(BumpTarget.BUMP_BRANCH, description="branch or bumpBranch.")
    poll_interval: Annotated[schema.Duration, schema.within(timedelta(seconds=1), timedelta(days=1))] = Field(
        timedelta(minutes=1),
        description="How often the alias is looked at without a webhook (MLflow keeps no delivery log).",
    )


class ModelRef(schema.Frozen):
    """An MLflow registered model, pinned by version or by alias (resolved and pinned in status)."""

    name: str = Field(min_length=1, description="MLflow registered model name.")
    version: str | None = Field(None, pattern=r"^[0-9]+$", description="Registry version, e.g. '7'.")
    alias: str | None = Field(None, min_length=1, description="Registry alias, e.g. 'champion-candidate'.")
    require_tags: dict[str, str] = Field(
        default_factory=dict, description="Tags the version must carry before rollout starts."
    )
    promote_alias: str = Field("production", min_length=1, description="Alias moved on promotion.")
    follow: FollowAlias | None = Field(
        None, description="Commit a version bump to Git when this alias moves (needs version, not alias)."
    )

    @model_validator(mode="after")
    def _exactly_one_of_version_or_alias(self) -> Self:
        if (self.version is None) == (self.alias is None):
            raise ValueError("give exactly one of 'version' or 'alias'")
        if self.follow is not None and self.version is None:
            raise ValueError("follow needs a pinned version: the bump it commits edits spec.model.version")
        return self


class Resources(schema.Frozen):
    limits: dict[str, schema.Quantity] = Field(default_factory=dict)
    requests: dict[str, schema.Quantity] = Field(default_factory=dict)


class WorkloadRef(schema.Frozen):
    """An existing Deployment (a Helm chart's, say) whose pod template the release serves.

    The release runs that template in Deployments of its own (the model injected as for an inline
    template), scales the referenced Deployment to zero once it serves, and otherwise leaves it as it
    is; an edit to its template starts a rollout as a spec edit does."""

    kind: str = Field("Deployment", description="Only Deployment can be referenced.")
    name: str = Field(pattern=meta.DNS_SUBDOMAIN, description="The Deployment, in the release's namespace.")
    container: str | None = Field(
        None, min_length=1, description="The container the model is injected into; default: the first."
    )

    @field_validator("kind")
    @classmethod
    def _only_deployments(cls, value: str) -> str:
        if value != "Deployment":
            raise ValueError(f"only a Deployment can be referenced (got kind {value!r})")
        return value


@dataclasses.dataclass(frozen=True)
class Adopted:
    """What the controller read from the Deployment `workloadRef` names: its pod template and size."""

    template: dict[str, Any]
    replicas: int


# What a referenced Deployment's template says instead; an inline value beside workloadRef is refused.
TEMPLATE_FIELDS = (
    "image",
    "resources",
    "command",
    "args",
    "env",
    "ports",
    "node_selector",
    "tolerations",
    "readiness_probe",
    "liveness_probe",
    "service_account_name",
)


class Serving(schema.Frozen):
    """The pod template of the model server — inline, or a Deployment's (`workloadRef`). Replicas are
    not part of the revision: they are the release's size, which `/scale` (an HPA, `kubectl scale`) sets."""

    image: str | None = Field(None, min_length=1)
    workload_ref: WorkloadRef | None = Field(
        None, description="Serve an existing Deployment's pod template instead of an inline one."
    )
    replicas: int = Field(1, ge=1, le=1000)
    resources: Resources = Resources()
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: schema.KubeList = Field(default_factory=list)
    ports: schema.KubeList = Field(default_factory=list)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: schema.KubeList = Field(default_factory=list)
    readiness_probe: schema.KubeObject | None = None
    liveness_probe: schema.KubeObject | None = None
    service_account_name: str | None = None
    pod_labels: dict[str, str] = Field(default_factory=dict)
    pod_annotations: dict[str, str] = Field(default_factory=dict)
    model_uri_env: str = Field("MODEL_URI", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    warmup: Annotated[schema.Duration, schema.within(timedelta(0), timedelta(hours=2))] = Field(
        timedelta(0), description="Time after a pod is Ready before it takes traffic or counts in analysis."
    )
    _adopted: Adopted | None = PrivateAttr(None)

    @property
    def adopted(self) -> Adopted | None:
        """The referenced Deployment as read this reconcile (None: inline template, or not read)."""
        return self._adopted

    def adopting(self, template: dict[str, Any], replicas: int) -> Serving:
        """This serving with the referenced Deployment's pod template read in (the shell reads it)."""
        copy = self.model_copy()
        copy._adopted = Adopted(template=template, replicas=replicas)
        return copy

    def gpus_per_replica(self, resource_name: str) -> int:
        """Whole accelerators one replica asks for (each container's limit, else its request)."""
        if self._adopted is not None:
            containers = (self._adopted.template.get("spec") or {}).get("containers") or []
            return sum(_accelerators(c.get("resources") or {}, resource_name) for c in containers)
        value = self.resources.limits.get(resource_name, self.resources.requests.get(resource_name, 0))
        return int(value)

    @field_validator("resources")
    @classmethod
    def _accelerators_are_whole(cls, value: Resources) -> Resources:
        for section in (value.limits, value.requests):
            for name, quantity in section.items():
                if name.endswith("/gpu") and not str(quantity).isdigit():
                    raise ValueError(f"{name}: {quantity!r} is not a whole number of accelerators")
        return value

    @model_validator(mode="after")
    def _one_template(self) -> Self:
        if self.workload_ref is None:
            if self.image is None:
                raise ValueError("give 'image' (an inline pod template) or 'workloadRef' (a Deployment's)")
            return self
        inline = [
            type(self).model_fields[name].alias or name
            for name in TEMPLATE_FIELDS
            if name in self.model_fields_set and getattr(self, name)
        ]
        if inline:
            raise ValueError(
                f"workloadRef takes the pod template from Deployment {self.workload_ref.name}; "
                f"remove {', '.join(inline)} (or drop workloadRef)"
            )
        return self


def _accelerators(resources: dict[str, Any], resource_name: str) -> int:
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    value = limits.get(resource_name, requests.get(resource_name, 0))
    return int(str(value)) if str(value).isdigit() else 0


class AnalysisStep(schema.Frozen):
    template: str = Field(pattern=meta.DNS_SUBDOMAIN, description="AnalysisTemplate name in this namespace.")
    max_duration: Annotated[
        schema.Duration, schema.within(timedelta(0), timedelta(days=7), above_low=True)
    ] = Field(
        timedelta(minutes=15), description="Longest the step may run; then INCONCLUSIVE, never a silent pass."
    )


class PauseStep(schema.Frozen):
    duration: Annotated[schema.Duration, schema.within(timedelta(0), timedelta(days=30))] | None = Field(
        None, description="Pause length; omitted = until promoted."
    )


class ApprovalTimeoutAction(StrEnum):
    ROLLBACK = "rollback"
    PAUSE = "pause"


class ApprovalStep(schema.Frozen):
    slack: bool = Field(True, description="Post Approve / Roll back buttons to the release's Slack channel.")
    approvals: int = Field(
        1,
        ge=1,
        le=10,
        description="How many different approvers must approve (a quorum); one rejection rolls back.",
    )
    timeout: (
        Annotated[schema.Duration, schema.within(timedelta(0), timedelta(days=30), above_low=True)] | None
    ) = Field(
        None, description="How long the gate waits from when it opened; then onTimeout. Omitted: for ever."
    )
    on_timeout: ApprovalTimeoutAction = Field(
        ApprovalTimeoutAction.PAUSE,
        description="rollback: roll back; pause: stay paused (no more approvals) until promote or abort.",
    )


class ShadowStep(schema.Frozen):
    """Mirror `percent` of the stable's requests to the canary, which serves no user (its answers are
    thrown away), and judge it on that traffic; the step completes when the analysis passes."""

    percent: int = Field(100, ge=1, le=100, description="Share of the stable's requests mirrored, percent.")
    analysis: AnalysisStep


class HeaderMatch(schema.Frozen):
    """One request attribute to match: a header or a cookie, by exact value, prefix or regex."""

    header: str | None = Field(None, min_length=1, pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    cookie: str | None = Field(None, min_length=1, pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    exact: str | None = None
    prefix: str | None = Field(None, min_length=1)
    regex: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_name_one_value(self) -> Self:
        if (self.header is None) == (self.cookie is None):
            raise ValueError("give exactly one of 'header' or 'cookie'")
        values = [k for k in ("exact", "prefix", "regex") if getattr(self, k) is not None]
        if len(values) != 1:
            raise ValueError(
                f"give exactly one of 'exact', 'prefix' or 'regex' (got {', '.join(values) or 'none'})"
            )
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as error:
                raise ValueError(f"regex {self.regex!r} does not compile: {error}") from None
        return self

    def describe(self) -> str:
        name = f"header {self.header}" if self.header is not None else f"cookie {self.cookie}"
        if self.exact is not None:
            return f"{name} = {self.exact!r}"
        if self.prefix is not None:
            return f"{name} starts with {self.prefix!r}"
        return f"{name} ~ /{self.regex}/"


class SetHeaderRoute(schema.Frozen):
    """Send requests that match every entry of `match` to the canary (Argo Rollouts' setHeaderRoute):
    in force until a later setWeight step or the end of the rollout."""

    match: tuple[HeaderMatch, ...] = Field(min_length=1, max_length=8)
    weight: int = Field(100, ge=1, le=100, description="Share of the matching requests sent to the canary.")

    def describe(self) -> str:
        cohort = " and ".join(m.describe() for m in self.match)
        return cohort if self.weight == 100 else f"{self.weight}% of {cohort}"


STEP_KINDS = ("setWeight", "pause", "analysis", "approval", "shadow", "setHeaderRoute")


class CanaryStep(schema.Frozen):
    """Exactly one of setWeight, pause, analysis, approval, shadow, setHeaderRoute."""

    set_weight: int | None = Field(None, ge=0, le=100, description="Canary traffic share, percent.")
    pause: PauseStep | None = None
    analysis: AnalysisStep | None = None
    approval: ApprovalStep | None = None
    shadow: ShadowStep | None = None
    set_header_route: SetHeaderRoute | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Self:
        given = [name for name in STEP_KINDS if self._has(name)]
        if len(given) != 1:
            shown = ", ".join(given) if given else "none"
            raise ValueError(f"a step has exactly one of {', '.join(STEP_KINDS)} (got {shown})")
        return self

    def _has(self, key: str) -> bool:
        return {
            "setWeight": self.set_weight is not None,
            "pause": self.pause is not None,
            "analysis": self.analysis is not None,
            "approval": self.approval is not None,
            "shadow": self.shadow is not None,
            "setHeaderRoute": self.set_header_route is not None,
        }[key]

    @property
    def needs_router(self) -> bool:
        """Mirroring and header matches need a route object: the replica router can do neither."""
        return self.shadow is not None or self.set_header_route is not None

    def describe(self) -> str:
        if self.set_weight is not None:
            return f"setWeight {self.set_weight}"
        if self.pause is not None:
            return f"pause {schema.format_duration(self.pause.duration)}" if self.pause.duration else "pause"
        if self.analysis is not None:
            return f"analysis {self.analysis.template}"
        if self.shadow is not None:
            return f"shadow {self.shadow.percent}%, analysis {self.shadow.analysis.template}"
        if self.set_header_route is not None:
            return f"setHeaderRoute {self.set_header_route.describe()}"
        return "approval"


class BackgroundAnalysis(schema.Frozen):
    """An analysis beside the steps (Argo Rollouts' background analysis): it judges the canary from
    the step `startingStep` until promotion, over all the canary's traffic so far, and a Fail at any
    step rolls back. It never completes a step; analysis steps do."""

    template: str = Field(pattern=meta.DNS_SUBDOMAIN, description="AnalysisTemplate name in this namespace.")
    starting_step: int = Field(0, ge=0, description="Index of the step from which it runs.")


class CanaryStrategy(schema.Frozen):
    steps: tuple[CanaryStep, ...] = Field(min_length=1, max_length=100)
    scale_down_delay: Annotated[schema.Duration, schema.within(timedelta(0), timedelta(days=1))] = Field(
        timedelta(seconds=30), description="How long the old stable keeps running after promotion."
    )
    analysis: BackgroundAnalysis | None = None

    @model_validator(mode="after")
    def _background_starts_at_a_step(self) -> Self:
        if self.analysis is not None and self.analysis.starting_step >= len(self.steps):
            raise ValueError(
                f"analysis.startingStep: {self.analysis.starting_step} is beyond the last step "
                f"({len(self.steps) - 1})"
            )
        return self


class BlueGreenStrategy(schema.Frozen):
    preview_replicas: int | None = Field(None, ge=1, description="Preview size; default: serving.replicas.")
    pre_promotion_analysis: AnalysisStep | None = None
    post_promotion_analysis: AnalysisStep | None = None
    auto_promote: bool = Field(True, description="False: wait for an approval (or promote) before switching.")
    scale_down_delay: Annotated[schema.Duration, schema.within(timedelta(0), timedelta(days=1))] = Field(
        timedelta(seconds=30), description="How long the old active keeps running after promotion."
    )


class Strategy(schema.Frozen):
    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None

    @model_validator(mode="after")
    def _exactly_one_strategy(self) -> Self:
        if (self.canary is None) == (self.blue_green is None):
            raise ValueError("give exactly one of 'canary' or 'blueGreen'")
        return self


class ReplicasRouting(schema.Frozen):
    """One Service over both tracks; the canary's share ≈ its share of ready replicas."""


class GatewayAPIRouting(schema.Frozen):
    http_route: str = Field(
        pattern=meta.DNS_SUBDOMAIN, description="HTTPRoute whose backendRef weights move."
    )


class IstioRouting(schema.Frozen):
    virtual_service: str = Field(pattern=meta.DNS_SUBDOMAIN)
    route: str | None = Field(None, description="Named HTTP route in the VirtualService; default: the first.")


class TrafficRouting(schema.Frozen):
    replicas: ReplicasRouting | None = None
    gateway_api: GatewayAPIRouting | None = Field(None, alias="gatewayAPI")
    istio: IstioRouting | None = None

    @model_validator(mode="after")
    def _at_most_one_router(self) -> Self:
        given = [r for r in (self.replicas, self.gateway_api, self.istio) if r is not None]
        if len(given) > 1:
            raise ValueError("give one of 'replicas', 'gatewayAPI' or 'istio'")
        return self

    @property
    def by_replicas(self) -> bool:
        """True for the default router: one Service, the share follows the replica ratio."""
        return self.gateway_api is None and self.istio is None


DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"


class GPUBudget(schema.Frozen):
    max_extra_gpus: int = Field(ge=0, alias="maxExtraGPUs", description="GPUs beyond the stable's.")
    resource_name: str = Field(DEFAULT_GPU_RESOURCE, min_length=1)


SLACK_APPROVER = r"^[UWS][A-Z0-9]{2,}$"


class SlackNotifications(schema.Frozen):
    channel: str = Field(min_length=1, description="Channel name or ID, e.g. '#ml-releases'.")
    approvers: tuple[Annotated[str, StringConstraints(pattern=SLACK_APPROVER)], ...] = Field(
        (),
        description="Slack user IDs (U…, W…) and user-group IDs (S…) who may press Approve / Roll back. "
        "Empty: those in the namespace's ConfigMap modelrelease-slack-approvers (key approvers); "
        "nobody if it does not exist.",
    )


class Notifications(schema.Frozen):
    slack: SlackNotifications | None = None


class GitWriteBack(schema.Frozen):
    """On rollback, commit the stable model version back to the release's file in Git.

    Releases synced by a GitSource know their repository and file; with Argo CD, name them here.
    """

    enabled: bool = False
    repo_url: str | None = Field(None, alias="repoURL", pattern=gitsource.REPOSITORY_URL)
    branch: str = Field("main", min_length=1)
    path: str | None = Field(None, min_length=1, description="The file holding this release, from the root.")
    credentials: gitsource.GitCredentials | None = None
    target: gitsource.WriteBackTarget | None = Field(
        None, description="branch or rollbackBranch; default: the GitSource's, else branch."
    )

    @model_validator(mode="after")
    def _repository_names_its_file(self) -> Self:
        if self.repo_url is not None and self.path is None:
            raise ValueError("repoURL needs path: the file in that repository that holds this release")
        return self


class ModelReleaseSpec(schema.Frozen):
    model: ModelRef
    serving: Serving
    strategy: Strategy
    traffic_routing: TrafficRouting = Field(
        default_factory=lambda: TrafficRouting(replicas=ReplicasRouting())
    )
    gpu_budget: GPUBudget | None = Field(None, alias="gpuBudget")
    notifications: Notifications = Notifications()
    git_write_back: GitWriteBack = GitWriteBack()
    progress_deadline: Annotated[
        schema.Duration, schema.within(timedelta(0), timedelta(days=1), above_low=True)
    ] = Field(timedelta(minutes=10), description="Longest a step may wait for its workloads (plus warm-up).")

    @property
    def gpu_resource(self) -> str:
        """The extended resource counted as GPUs: the budget's, else the common default."""
        return self.gpu_budget.resource_name if self.gpu_budget else DEFAULT_GPU_RESOURCE

    @property
    def gpus_per_replica(self) -> int:
        return self.serving.gpus_per_replica(self.gpu_resource)

    @model_validator(mode="after")
    def _steps_fit_the_router(self) -> Self:
        canary = self.strategy.canary
        if canary is None:
            return self
        weight = 0
        for index, step in enumerate(canary.steps):
            where = f"strategy.canary.steps[{index}] ({step.describe()})"
            if step.needs_router and self.traffic_routing.by_replicas:
                what = "mirror traffic" if step.shadow is not None else "route by header or cookie"
                raise ValueError(
                    f"{where}: the replicas router cannot {what}; use trafficRouting.gatewayAPI or istio"
                )
            if step.shadow is not None and weight > 0:
                raise ValueError(
                    f"{where}: a shadow judges a canary that serves no user; put it before the first "
                    f"setWeight above 0 (here the canary already has {weight}%)"
                )
            weight = step.set_weight if step.set_weight is not None else weight
        return self

    @model_validator(mode="after")
    def _budget_resource_is_requested(self) -> Self:
        budget = self.gpu_budget
        if budget is not None and self.serving.workload_ref is None:  # a Deployment's: checked once read
            limits = self.serving.resources.limits
            requests = self.serving.resources.requests
            if budget.resource_name not in limits and budget.resource_name not in requests:
                raise ValueError(
                    f"gpuBudget counts {budget.resource_name!r} but serving.resources asks for none of it"
                )
        return self
