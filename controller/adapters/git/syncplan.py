"""What a GitSource sync does, decided without I/O: the pure half of `gitsync`.

Like the release engine, a sync is read → decide → execute → write status. `gitsync` reads the
branch tip and the live objects, and executes; this module decides, from what was read:

- `wanted`: which manifests to apply, and which files to quarantine (a kind or namespace this
  source may not sync quarantines its file whole, like a file that did not parse);
- `to_apply`: per object, create it, merge-patch it, leave it (unchanged), or refuse it (it exists
  and another hand created it);
- `to_prune`: what this source created and Git no longer holds, and whether deleting it is
  justified (`assess_prune`);
- `concluded` / `failed`: the status to write and the Events to post.

An import contract keeps it pure (no GitPython, no API client, no clock).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller import manifests, releasetree
from controller.adapters import labels
from controller.domain import decision
from controller.resources import gitsource, kinds, meta

SYNCED_KINDS = {"ModelRelease": "modelreleases", "AnalysisTemplate": "analysistemplates"}
NORMAL, WARNING = decision.EventType.NORMAL.value, decision.EventType.WARNING.value

Key = tuple[str, str]  # (kind, name)
Wanted = dict[Key, tuple[manifests.Manifest, dict[str, Any]]]


@dataclass
class SyncOutcome:
    """What one sync found and did: the input of its status and Events."""

    commit: str
    applied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    problems: list[gitsource.SyncProblem] = field(default_factory=list)
    missing_paths: list[str] = field(default_factory=list)  # configured paths not in the repository
    hollow_paths: list[str] = field(default_factory=list)  # configured paths holding no manifest
    prune_refused: str | None = None  # why the prune was refused; `unpruned` then holds its objects
    unpruned: list[str] = field(default_factory=list)  # gone from Git, kept (refused, or prune off)


@dataclass(frozen=True)
class SourceEvent:
    """An Event about the GitSource, keyed by what it says (a restart does not say it twice)."""

    type: str
    reason: str
    message: str
    identity: tuple[str, ...]


def label(key: Key) -> str:
    """How status, messages and Events name an object: `Kind/name`."""
    return f"{key[0]}/{key[1]}"


# ---- reading ---------------------------------------------------------------------------------------


def read(
    spec: gitsource.GitSourceSpec, commit: str, tree: releasetree.Tree, missing: Iterable[str]
) -> SyncOutcome:
    """The outcome as the repository was read: missing paths (nothing is pruned while one is),
    paths that hold no manifest, and every problem the files have."""
    outcome = SyncOutcome(commit=commit, missing_paths=list(missing))
    for relative in outcome.missing_paths:
        outcome.problems.append(
            gitsource.SyncProblem(
                file=relative, message="not in the repository (nothing is pruned while it is missing)"
            )
        )
    holding = tree.files_with_content()
    outcome.hollow_paths = [
        relative
        for relative in spec.paths
        if relative not in outcome.missing_paths and not any(_under(f, relative) for f in holding)
    ]
    outcome.problems += [
        gitsource.SyncProblem(
            file=p.source, line=p.line, message=f"{p.path}: {p.message}" if p.path else p.message
        )
        for p in tree.problems
    ]
    return outcome


def wanted(source: kinds.GitSource, tree: releasetree.Tree, outcome: SyncOutcome) -> Wanted:
    """The objects the good files define, by (kind, name), with the body to apply."""
    namespace = source.metadata.namespace
    bad = tree.bad_files
    found: Wanted = {}
    for manifest in tree.manifests:
        if manifest.source in bad:
            continue
        resource = manifest.resource
        assert isinstance(resource, kinds.RESOURCE_TYPES)
        refusal = None
        if resource.kind not in SYNCED_KINDS:
            refusal = f"a GitSource syncs only {' and '.join(SYNCED_KINDS)}; left out"
        elif resource.metadata.namespace not in (None, namespace):
            refusal = (
                f"is for namespace {resource.metadata.namespace}; this GitSource syncs into {namespace} only"
            )
        if refusal is not None:
            outcome.problems.append(
                gitsource.SyncProblem(
                    file=manifest.source,
                    line=manifest.line,
                    message=f"{resource.kind} {resource.metadata.name}: {refusal}",
                )
            )
            continue
        body = resource.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude={"status"})
        found[(resource.kind, resource.metadata.name)] = (manifest, body)
    # A file with a problem found after reading (another namespace, a kind we do not sync) is
    # quarantined whole, like one that did not parse.
    late_bad = {p.file for p in outcome.problems}
    return {key: value for key, value in found.items() if value[0].source not in late_bad}


# ---- applying --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Create:
    body: dict[str, Any]


@dataclass(frozen=True)
class Patch:
    patch: dict[str, Any]
    spec_changed: bool


@dataclass(frozen=True)
class Leave:
    """Nothing to write: the object is as Git says (`problem` None), or not ours to write."""

    problem: gitsource.SyncProblem | None = None


Apply = Create | Patch | Leave


def to_apply(
    source: kinds.GitSource,
    key: Key,
    manifest: manifests.Manifest,
    body: dict[str, Any],
    commit: str,
    live: Mapping[str, Any] | None,
) -> Apply:
    """How to bring one object to what Git says, given the live object (None: it does not exist)."""
    name = source.metadata.name
    metadata = body.get("metadata") or {}
    wanted_labels = {**(metadata.get("labels") or {}), labels.GIT_SOURCE: name}
    annotations = {
        **(metadata.get("annotations") or {}),
        labels.GIT_SOURCE: name,
        labels.GIT_PATH: manifest.source,
        labels.GIT_COMMIT: commit,
    }
    if live is None:
        owned = {**metadata, "namespace": source.metadata.namespace or "", "labels": wanted_labels}
        return Create({**body, "metadata": {**owned, "annotations": annotations}})
    live_meta = live.get("metadata") or {}
    if (live_meta.get("labels") or {}).get(labels.GIT_SOURCE) != name:
        return Leave(
            gitsource.SyncProblem(
                file=manifest.source,
                line=manifest.line,
                message=f"{label(key)} exists and was not created by GitSource {name}; "
                f"left alone (label it {labels.GIT_SOURCE}={name} to hand it over)",
            )
        )
    spec_patch = merge_patch(live.get("spec") or {}, _sized_live(key, body.get("spec") or {}, live))
    meta_patch = {
        "labels": merge_patch(live_meta.get("labels") or {}, wanted_labels),
        "annotations": merge_patch(live_meta.get("annotations") or {}, annotations, keep_absent=True),
    }
    meta_patch = {k: v for k, v in meta_patch.items() if v}
    if not spec_patch and set(meta_patch) <= {"annotations"} and _only_commit(meta_patch):
        return Leave()
    patch: dict[str, Any] = {"metadata": meta_patch} if meta_patch else {}
    if spec_patch:
        patch["spec"] = spec_patch
    return Patch(patch, spec_changed=bool(spec_patch))


def _sized_live(key: Key, wanted: dict[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """A release whose file leaves out `serving.replicas` is sized by someone else — an HPA or KEDA
    through `/scale`, `kubectl scale` — as a Deployment under an HPA is: its live size stays."""
    serving = wanted.get("serving")
    live_size = ((live.get("spec") or {}).get("serving") or {}).get("replicas")
    if (
        key[0] != "ModelRelease"
        or not isinstance(serving, dict)
        or "replicas" in serving
        or live_size is None
    ):
        return wanted
    return {**wanted, "serving": {**serving, "replicas": live_size}}


# ---- pruning ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prune:
    """What Git no longer holds, by (kind, name); `delete` says whether to delete it now."""

    gone: tuple[Key, ...]
    delete: bool
    refused: str | None = None


def to_prune(
    spec: gitsource.GitSourceSpec,
    wanted_keys: Iterable[Key],
    managed: Mapping[Key, str | None],
    quarantined: set[str],
    outcome: SyncOutcome,
) -> Prune:
    """What this source created (`managed`: by key, the file it came from) and Git no longer holds.
    Deleted only when that is justified: prune is on, every path holds manifests, and the deletion
    is not all (without allowEmpty) nor more than maxPrunePercent of what the source manages. An
    object whose file is quarantined now is never pruned: a bad read is not a deletion."""
    keep = set(wanted_keys)
    gone = tuple(key for key, file in managed.items() if key not in keep and file not in quarantined)
    if not gone or not spec.prune:
        return Prune(gone, delete=False)
    refused = assess_prune(
        spec, len(gone), len(managed), missing_paths=outcome.missing_paths, hollow_paths=outcome.hollow_paths
    )
    return Prune(gone, delete=refused is None, refused=refused)


def assess_prune(
    spec: gitsource.GitSourceSpec,
    deleting: int,
    managed: int,
    *,
    missing_paths: list[str],
    hollow_paths: list[str],
) -> str | None:
    """Why a prune of `deleting` of the `managed` objects may not go ahead, or None when it may."""
    if missing_paths or (hollow_paths and not spec.allow_empty):
        return f"path {', '.join(missing_paths or hollow_paths)} holds no manifest (a typo, or a move?)"
    if deleting >= managed:  # emptied on purpose: allowEmpty is the one switch that says so
        if spec.allow_empty:
            return None
        return f"it would delete all {managed} object(s) this source manages; set allowEmpty to allow it"
    allowed = max(1, managed * spec.max_prune_percent // 100)
    if deleting > allowed:
        return (
            f"it would delete {deleting} of the {managed} object(s) this source manages, more than "
            f"maxPrunePercent {spec.max_prune_percent}% allows ({allowed}); raise it for this change"
        )
    return None


# ---- status and Events -----------------------------------------------------------------------------


def concluded(
    source: kinds.GitSource, outcome: SyncOutcome, now: datetime, request: str | None
) -> tuple[gitsource.GitSourceStatus, list[SourceEvent]]:
    """The status a finished sync writes, and the Events it posts."""
    previous = source.status or gitsource.GitSourceStatus()
    history = previous.prune_history
    if outcome.pruned:
        record = gitsource.PruneRecord(time=now, commit=outcome.commit, objects=tuple(outcome.pruned))
        history = (*history, record)[-gitsource.PRUNE_HISTORY :]
    refusal = None
    if outcome.prune_refused is not None:
        refusal = gitsource.PruneRecord(
            time=now, commit=outcome.commit, objects=tuple(outcome.unpruned), reason=outcome.prune_refused
        )
    message = describe(outcome, prune=source.spec.prune)
    generation = source.metadata.generation
    status = gitsource.GitSourceStatus(
        observed_generation=generation,
        observed_commit=outcome.commit,
        last_sync_time=now,
        last_attempt_time=now,
        handled_sync_request=request,
        applied=tuple(sorted(outcome.applied + outcome.unchanged)),
        pruned=tuple(outcome.pruned),
        prune_history=history,
        prune_refused=refusal,
        orphaned=() if source.spec.prune else tuple(outcome.unpruned),
        errors=tuple(outcome.problems),
        conditions=(build_ready(previous, _ready_reason(outcome), message, generation, now),),
        message=message,
    )
    return status, said(outcome, prune=source.spec.prune)


def failed(
    source: kinds.GitSource, message: str, now: datetime, request: str | None
) -> tuple[gitsource.GitSourceStatus, list[SourceEvent]]:
    """A sync that could not read the repository: what was synced before stays, and says so."""
    previous = source.status or gitsource.GitSourceStatus()
    generation = source.metadata.generation
    status = gitsource.GitSourceStatus.model_validate(
        {
            **previous.model_dump(),
            "observed_generation": generation,
            "last_attempt_time": now,
            "handled_sync_request": request,
            "message": message,
            "conditions": (build_ready(previous, "SyncFailed", message, generation, now),),
        }
    )
    return status, [SourceEvent(WARNING, "SyncFailed", message, (message,))]


def said(outcome: SyncOutcome, *, prune: bool) -> list[SourceEvent]:
    """One Event per problem, per applied change, per prune and per refused prune; each keyed by
    what it says, so a restart does not say it twice and a second change at one commit is said."""
    commit = outcome.commit
    events: list[SourceEvent] = []
    for problem in outcome.problems:
        where = f"{problem.file}:{problem.line}" if problem.line else problem.file
        events.append(
            SourceEvent(
                WARNING, "ManifestInvalid", f"{where}: {problem.message}", (commit, where, problem.message)
            )
        )
    if outcome.applied:
        message = f"synced {commit[:12]}: applied {_listed(outcome.applied)}"
        events.append(SourceEvent(NORMAL, "Synced", message, (commit, *outcome.applied)))
    if outcome.pruned:
        message = f"pruned at {commit[:12]} (gone from Git): {_listed(outcome.pruned)}"
        events.append(SourceEvent(NORMAL, "Pruned", message, (commit, *outcome.pruned)))
    if outcome.prune_refused is not None:
        message = (
            f"prune refused at {commit[:12]}: {outcome.prune_refused}; would have deleted "
            f"{_listed(outcome.unpruned)}"
        )
        events.append(SourceEvent(WARNING, "PruneRefused", message, (commit, *outcome.unpruned)))
    elif outcome.unpruned and not prune:
        message = f"gone from Git at {commit[:12]} but kept (prune is off): {_listed(outcome.unpruned)}"
        events.append(SourceEvent(NORMAL, "Orphaned", message, (commit, *outcome.unpruned)))
    return events


def describe(outcome: SyncOutcome, *, prune: bool) -> str:
    """The status message: what is in sync, and every reason a person should look."""
    message = f"at {outcome.commit[:12]}: {len(outcome.applied) + len(outcome.unchanged)} resource(s) in sync"
    quarantined = sorted({p.file for p in outcome.problems})
    if quarantined:
        message += f"; {len(quarantined)} file(s) quarantined: {', '.join(quarantined)}"
    if outcome.pruned:
        message += f"; pruned {_listed(outcome.pruned)}"
    if outcome.prune_refused is not None:
        message += f"; prune refused ({outcome.prune_refused}): kept {_listed(outcome.unpruned)}"
    elif outcome.unpruned and not prune:
        message += (
            f"; {len(outcome.unpruned)} orphaned (gone from Git, prune off): {_listed(outcome.unpruned)}"
        )
    return message


def build_ready(
    previous: gitsource.GitSourceStatus, reason: str, message: str, generation: int | None, now: datetime
) -> meta.Condition:
    """Ready: the repository is in the cluster as Git says (reason Synced); otherwise False with
    SyncFailed, PruneRefused or ManifestsQuarantined. Its transition time moves only on a flip."""
    status = meta.ConditionStatus.TRUE if reason == "Synced" else meta.ConditionStatus.FALSE
    before = next((c for c in previous.conditions if c.type == "Ready"), None)
    since = before.last_transition_time if before is not None and before.status == status else now
    return meta.Condition(
        type="Ready",
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )


def _ready_reason(outcome: SyncOutcome) -> str:
    if outcome.prune_refused is not None:
        return "PruneRefused"
    return "ManifestsQuarantined" if outcome.problems else "Synced"


def _listed(objects: list[str], most: int = 10) -> str:
    """Names for a message or an Event (a repository may hold hundreds; status keeps them all)."""
    shown = ", ".join(objects[:most])
    return shown + (f" and {len(objects) - most} more" if len(objects) > most else "")


def _under(source: str, path: str) -> bool:
    return source == path or source.startswith(path.rstrip("/") + "/")


def _only_commit(meta_patch: dict[str, Any]) -> bool:
    """The only metadata change is the commit annotation: the object itself is as Git says."""
    annotations = meta_patch.get("annotations") or {}
    return set(annotations) <= {labels.GIT_COMMIT}


def merge_patch(live: Any, wanted: Any, *, keep_absent: bool = False) -> Any:
    """The JSON merge patch (RFC 7386) that turns `live` into `wanted`: changed keys, and null for
    keys Git removed (unless `keep_absent`: other writers' annotations stay). Empty when equal."""
    if not isinstance(live, dict) or not isinstance(wanted, dict):
        return wanted
    patch: dict[str, Any] = {}
    for key, value in wanted.items():
        if key not in live:
            patch[key] = value
        elif isinstance(value, dict) and isinstance(live[key], dict):
            inner = merge_patch(live[key], value, keep_absent=keep_absent)
            if inner:
                patch[key] = inner
        elif live[key] != value:
            patch[key] = value
    if not keep_absent:
        for key in live.keys() - wanted.keys():
            patch[key] = None
    return patch
