"""The four resource kinds: their envelopes, names, and how kubectl shows them.

CRD generation and manifest loading both read this table, so a kind is declared once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from analysis import schema, specs
from controller.resources import approval, gitsource, meta, modelrelease, releasestatus

R = TypeVar("R", bound=BaseModel)


class ModelRelease(schema.Frozen):
    api_version: Literal["modelrelease.dev/v1alpha1"] = "modelrelease.dev/v1alpha1"
    kind: Literal["ModelRelease"] = "ModelRelease"
    metadata: meta.ObjectMeta
    spec: modelrelease.ModelReleaseSpec
    status: releasestatus.ModelReleaseStatus | None = None


class AnalysisTemplate(schema.Frozen):
    api_version: Literal["modelrelease.dev/v1alpha1"] = "modelrelease.dev/v1alpha1"
    kind: Literal["AnalysisTemplate"] = "AnalysisTemplate"
    metadata: meta.ObjectMeta
    spec: specs.AnalysisTemplateSpec


class GitSource(schema.Frozen):
    api_version: Literal["modelrelease.dev/v1alpha1"] = "modelrelease.dev/v1alpha1"
    kind: Literal["GitSource"] = "GitSource"
    metadata: meta.ObjectMeta
    spec: gitsource.GitSourceSpec
    status: gitsource.GitSourceStatus | None = None


class Approval(schema.Frozen):
    api_version: Literal["modelrelease.dev/v1alpha1"] = "modelrelease.dev/v1alpha1"
    kind: Literal["Approval"] = "Approval"
    metadata: meta.ObjectMeta
    spec: approval.ApprovalSpec


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    singular: str
    envelope: type[BaseModel]
    spec: type[BaseModel]
    status: type[BaseModel] | None
    short_names: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = field(default=())
    scale: ScaleSubresource | None = None


@dataclass(frozen=True)
class ScaleSubresource:
    """Where `/scale` reads and writes: what `kubectl scale`, an HPA or a KEDA ScaledObject size."""

    spec_replicas: str
    status_replicas: str
    label_selector: str


AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")

KINDS: tuple[Kind, ...] = (
    Kind(
        kind="ModelRelease",
        plural="modelreleases",
        singular="modelrelease",
        envelope=ModelRelease,
        spec=modelrelease.ModelReleaseSpec,
        status=releasestatus.ModelReleaseStatus,
        short_names=("mrel",),
        scale=ScaleSubresource(".spec.serving.replicas", ".status.replicas", ".status.selector"),
        printer_columns=(
            PrinterColumn("Phase", ".status.phase", description="Where the rollout is."),
            PrinterColumn("Step", ".status.currentStepIndex", "integer", "Index of the current step."),
            PrinterColumn("Weight", ".status.canaryWeight", "integer", "Canary traffic share, percent."),
            PrinterColumn("Stable", ".status.stableModelVersion", description="Model version of stable."),
            PrinterColumn("Canary", ".status.canaryModelVersion", description="Model version of canary."),
            PrinterColumn("Replicas", ".spec.serving.replicas", "integer", "Desired size (/scale)."),
            PrinterColumn("Verdict", ".status.analysis[-1:].verdict", description="Last analysis verdict."),
            AGE,
        ),
    ),
    Kind(
        kind="AnalysisTemplate",
        plural="analysistemplates",
        singular="analysistemplate",
        envelope=AnalysisTemplate,
        spec=specs.AnalysisTemplateSpec,
        status=None,
        short_names=("mat",),
        printer_columns=(AGE,),
    ),
    Kind(
        kind="GitSource",
        plural="gitsources",
        singular="gitsource",
        envelope=GitSource,
        spec=gitsource.GitSourceSpec,
        status=gitsource.GitSourceStatus,
        printer_columns=(
            PrinterColumn("URL", ".spec.url"),
            PrinterColumn("Commit", ".status.observedCommit"),
            PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status'),
            PrinterColumn(
                "Reason",
                '.status.conditions[?(@.type=="Ready")].reason',
                description="Synced, ManifestsQuarantined, PruneRefused or SyncFailed.",
            ),
            PrinterColumn("Orphaned", ".status.orphaned", description="Gone from Git, kept: prune is off."),
            AGE,
        ),
    ),
    Kind(
        kind="Approval",
        plural="approvals",
        singular="approval",
        envelope=Approval,
        spec=approval.ApprovalSpec,
        status=None,
        printer_columns=(
            PrinterColumn("Release", ".spec.release"),
            PrinterColumn("Step", ".spec.step", "integer"),
            PrinterColumn("Decision", ".spec.decision"),
            PrinterColumn("By", ".spec.by"),
            AGE,
        ),
    ),
)

BY_KIND: dict[str, Kind] = {k.kind: k for k in KINDS}

RESOURCE_TYPES = (ModelRelease, AnalysisTemplate, GitSource, Approval)


def from_cluster(envelope: type[R], body: dict[str, Any]) -> R:
    """An object as the API server returns it, read into its model: the metadata we do not model
    (finalizers, managedFields, ownerReferences) is left out rather than refused."""
    known = meta.ObjectMeta.model_fields.keys() | {
        f.alias for f in meta.ObjectMeta.model_fields.values() if f.alias
    }
    trimmed = {**body, "metadata": {k: v for k, v in (body.get("metadata") or {}).items() if k in known}}
    return envelope.model_validate(trimmed)
