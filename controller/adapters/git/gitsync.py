"""GitSource: bring a repository's ModelReleases and AnalysisTemplates into the cluster.

One sync fetches the branch tip (shallow), reads the source's paths the way `modelrelease
validate` does, and then, file by file: a file with any problem is quarantined (reported in
status and as an Event; what it defined before stays as it was, running rollouts included),
the resources of good files are created or merge-patched, and — with `prune: true` only — what
this source created and Git no longer holds is deleted. Objects this source did not create are
never touched. Credentials come from a Secret and never appear in status, Events or logs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller import errors, manifests, releasetree
from controller.adapters import events, kubeapi, labels
from controller.adapters.git import gitcredentials, gitremote
from controller.resources import gitsource, kinds, meta

LOGGER = logging.getLogger(__name__)
SYNC_REQUEST = f"{meta.GROUP}/sync-requested"  # set by the webhook receiver: sync now
SYNCED_KINDS = {"ModelRelease": "modelreleases", "AnalysisTemplate": "analysistemplates"}


@dataclass
class SyncOutcome:
    commit: str
    applied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    problems: list[gitsource.SyncProblem] = field(default_factory=list)
    missing_paths: list[str] = field(default_factory=list)  # configured paths not in the repository
    hollow_paths: list[str] = field(default_factory=list)  # configured paths holding no manifest
    prune_refused: str | None = None  # why the prune was refused; `unpruned` then holds its objects
    unpruned: list[str] = field(default_factory=list)  # gone from Git, kept (refused, or prune off)


class GitSourceSync:
    def __init__(
        self,
        api: kubeapi.KubeApi,
        workspaces: gitremote.Workspaces,
        kube_events: events.KubeEvents,
        clock: Callable[[], datetime],
    ) -> None:
        self._api = api
        self._workspaces = workspaces
        self._events = kube_events
        self._clock = clock

    def sync(self, source: kinds.GitSource, *, request: str | None = None) -> gitsource.GitSourceStatus:
        """Sync once and write the GitSource's status; the status written."""
        namespace, name = source.metadata.namespace or "", source.metadata.name
        previous = source.status or gitsource.GitSourceStatus()
        now = self._clock()
        try:
            outcome = self._sync(source)
        except errors.ModelReleaseError as error:
            message = f"sync failed: {error}"
            self._event(source, events.WARNING, "SyncFailed", message, message)
            status = previous.model_copy(
                update={
                    "observed_generation": source.metadata.generation,
                    "last_attempt_time": now,
                    "handled_sync_request": request,
                    "message": message,
                    "conditions": (
                        build_ready(previous, "SyncFailed", message, source.metadata.generation, now),
                    ),
                }
            )
            self._write_status(namespace, name, status)
            return status
        self._say_problems(source, outcome)
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
        status = gitsource.GitSourceStatus(
            observed_generation=source.metadata.generation,
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
            conditions=(
                build_ready(previous, _ready_reason(outcome), message, source.metadata.generation, now),
            ),
            message=message,
        )
        self._write_status(namespace, name, status)
        return status

    def _say_problems(self, source: kinds.GitSource, outcome: SyncOutcome) -> None:
        """One Event per problem, per applied change, per prune and per refused prune; each keyed by
        what it says, so a restart does not say it twice and a second change at one commit is said."""
        for problem in outcome.problems:
            where = f"{problem.file}:{problem.line}" if problem.line else problem.file
            self._event(
                source,
                events.WARNING,
                "ManifestInvalid",
                f"{where}: {problem.message}",
                outcome.commit,
                where,
                problem.message,
            )
        if outcome.applied:
            said = f"synced {outcome.commit[:12]}: applied {_listed(outcome.applied)}"
            self._event(source, events.NORMAL, "Synced", said, outcome.commit, *outcome.applied)
        if outcome.pruned:
            said = f"pruned at {outcome.commit[:12]} (gone from Git): {_listed(outcome.pruned)}"
            self._event(source, events.NORMAL, "Pruned", said, outcome.commit, *outcome.pruned)
        if outcome.prune_refused is not None:
            said = (
                f"prune refused at {outcome.commit[:12]}: {outcome.prune_refused}; would have deleted "
                f"{_listed(outcome.unpruned)}"
            )
            self._event(source, events.WARNING, "PruneRefused", said, outcome.commit, *outcome.unpruned)
        elif outcome.unpruned and not source.spec.prune:
            kept = _listed(outcome.unpruned)
            said = f"gone from Git at {outcome.commit[:12]} but kept (prune is off): {kept}"
            self._event(source, events.NORMAL, "Orphaned", said, outcome.commit, *outcome.unpruned)

    def _sync(self, source: kinds.GitSource) -> SyncOutcome:
        spec, namespace = source.spec, source.metadata.namespace or ""
        credentials = gitcredentials.git_credentials(
            self._api, namespace, spec.credentials, spec.ssh_known_hosts
        )
        with self._workspaces.using(gitremote.Remote(spec.url, spec.branch, credentials)) as workspace:
            commit = workspace.checkout_tip()
            outcome = SyncOutcome(commit=commit)
            paths = []
            for relative in spec.paths:
                path = workspace.path / relative
                if path.exists():
                    paths.append(path)
                else:
                    outcome.missing_paths.append(relative)
                    problem = gitsource.SyncProblem(
                        file=relative, message="not in the repository (nothing is pruned while it is missing)"
                    )
                    outcome.problems.append(problem)
            tree = releasetree.read_paths(paths, root=workspace.path)  # read while the clone is ours
        holding = tree.files_with_content()
        for relative in spec.paths:
            if relative not in outcome.missing_paths and not any(_under(f, relative) for f in holding):
                outcome.hollow_paths.append(relative)
        outcome.problems += [
            gitsource.SyncProblem(
                file=p.source, line=p.line, message=f"{p.path}: {p.message}" if p.path else p.message
            )
            for p in tree.problems
        ]
        wanted = self._wanted(source, tree, outcome)
        for (kind, object_name), (manifest, body) in wanted.items():
            try:
                self._apply(source, kind, object_name, manifest, body, commit, outcome)
            except (errors.InvalidError, errors.ForbiddenError) as error:
                # The API server refused this one object (its schema, admission, RBAC): the others
                # still sync, and the refusal is reported against its file.
                outcome.problems.append(
                    gitsource.SyncProblem(
                        file=manifest.source, line=manifest.line, message=f"{kind} {object_name}: {error}"
                    )
                )
        self._prune(source, wanted, tree.bad_files | {p.file for p in outcome.problems}, outcome)
        return outcome

    def _wanted(
        self, source: kinds.GitSource, tree: releasetree.Tree, outcome: SyncOutcome
    ) -> dict[tuple[str, str], tuple[manifests.Manifest, dict[str, Any]]]:
        namespace = source.metadata.namespace
        bad = tree.bad_files
        wanted: dict[tuple[str, str], tuple[manifests.Manifest, dict[str, Any]]] = {}
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
                    f"is for namespace {resource.metadata.namespace}; "
                    f"this GitSource syncs into {namespace} only"
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
            wanted[(resource.kind, resource.metadata.name)] = (manifest, body)
        # A file with a problem found after reading (another namespace, a kind we do not sync)
        # is quarantined whole, like one that did not parse.
        late_bad = {p.file for p in outcome.problems}
        return {key: value for key, value in wanted.items() if value[0].source not in late_bad}

    def _apply(
        self,
        source: kinds.GitSource,
        kind: str,
        name: str,
        manifest: manifests.Manifest,
        body: dict[str, Any],
        commit: str,
        outcome: SyncOutcome,
    ) -> None:
        namespace = source.metadata.namespace or ""
        path = kubeapi.build_path(meta.API_VERSION, SYNCED_KINDS[kind], namespace, name)
        ours = {
            "labels": {labels.GIT_SOURCE: source.metadata.name},
            "annotations": {
                labels.GIT_SOURCE: source.metadata.name,
                labels.GIT_PATH: manifest.source,
                labels.GIT_COMMIT: commit,
            },
        }
        metadata = body.get("metadata") or {}
        wanted_labels = {**(metadata.get("labels") or {}), **ours["labels"]}
        annotations = {**(metadata.get("annotations") or {}), **ours["annotations"]}
        label = f"{kind}/{name}"
        try:
            live = self._api.get(path)
        except errors.NotFoundError:
            created = {
                **body,
                "metadata": {
                    **metadata,
                    "namespace": namespace,
                    "labels": wanted_labels,
                    "annotations": annotations,
                },
            }
            self._api.create(kubeapi.build_path(meta.API_VERSION, SYNCED_KINDS[kind], namespace), created)
            outcome.applied.append(label)
            return
        live_labels = live.get("metadata", {}).get("labels") or {}
        if live_labels.get(labels.GIT_SOURCE) != source.metadata.name:
            outcome.problems.append(
                gitsource.SyncProblem(
                    file=manifest.source,
                    line=manifest.line,
                    message=f"{label} exists and was not created by GitSource {source.metadata.name}; "
                    f"left alone (label it {labels.GIT_SOURCE}={source.metadata.name} to hand it over)",
                )
            )
            return
        spec_patch = merge_patch(live.get("spec") or {}, body.get("spec") or {})
        live_meta = live.get("metadata") or {}
        meta_patch = {
            "labels": merge_patch(live_meta.get("labels") or {}, wanted_labels),
            "annotations": merge_patch(live_meta.get("annotations") or {}, annotations, keep_absent=True),
        }
        meta_patch = {k: v for k, v in meta_patch.items() if v}
        spec_changed = bool(spec_patch)
        if not spec_changed and set(meta_patch) <= {"annotations"} and _only_commit(meta_patch):
            outcome.unchanged.append(label)
            return
        patch: dict[str, Any] = {"metadata": meta_patch} if meta_patch else {}
        if spec_changed:
            patch["spec"] = spec_patch
        self._api.merge_patch(path, patch)
        (outcome.applied if spec_changed else outcome.unchanged).append(label)

    def _prune(
        self,
        source: kinds.GitSource,
        wanted: dict[tuple[str, str], tuple[manifests.Manifest, dict[str, Any]]],
        quarantined: set[str],
        outcome: SyncOutcome,
    ) -> None:
        """Delete what this source created and Git no longer holds — only when that is justified:
        prune is on, every path holds manifests, and the deletion is not all (without allowEmpty)
        nor more than maxPrunePercent of what the source manages. Otherwise nothing is deleted and
        `outcome` says what would have been, and why not."""
        namespace, spec = source.metadata.namespace or "", source.spec
        managed: list[str] = []
        gone: list[tuple[str, str]] = []  # (label, path)
        for kind, plural in SYNCED_KINDS.items():
            listed = self._api.get(
                kubeapi.build_path(meta.API_VERSION, plural, namespace),
                {"labelSelector": f"{labels.GIT_SOURCE}={source.metadata.name}"},
            )
            for item in listed.get("items") or []:
                item_meta = item.get("metadata") or {}
                name = item_meta.get("name", "")
                managed.append(f"{kind}/{name}")
                file = (item_meta.get("annotations") or {}).get(labels.GIT_PATH)
                if (kind, name) in wanted or file in quarantined:
                    continue  # still in Git, or its file is broken now: never prune on a bad read
                gone.append((f"{kind}/{name}", kubeapi.build_path(meta.API_VERSION, plural, namespace, name)))
        outcome.unpruned = [label for label, _ in gone]
        if not gone or not spec.prune:
            return
        outcome.prune_refused = assess_prune(
            spec,
            len(gone),
            len(managed),
            missing_paths=outcome.missing_paths,
            hollow_paths=outcome.hollow_paths,
        )
        if outcome.prune_refused is not None:
            return
        for label, path in gone:
            try:
                self._api.delete(path)
            except errors.NotFoundError:
                pass
            outcome.pruned.append(label)
        outcome.unpruned = []

    def _write_status(self, namespace: str, name: str, status: gitsource.GitSourceStatus) -> None:
        body = {"status": status.model_dump(mode="json", by_alias=True, exclude_none=True)}
        # Lists are replaced whole by a merge patch: an empty one clears the errors of a fixed file.
        body["status"].setdefault("errors", [])
        body["status"].setdefault("pruneRefused", None)  # null removes a refusal that no longer holds
        self._api.merge_patch(
            kubeapi.build_path(meta.API_VERSION, "gitsources", namespace, name, "status"), body
        )

    def _event(
        self, source: kinds.GitSource, event_type: str, reason: str, message: str, *identity: str
    ) -> None:
        involved = {
            "apiVersion": meta.API_VERSION,
            "kind": "GitSource",
            "name": source.metadata.name,
            "namespace": source.metadata.namespace or "",
            "uid": source.metadata.uid or "",
        }
        self._events.post_regarding(involved, event_type, reason, message, reason, *identity)


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
