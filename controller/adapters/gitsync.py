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
from controller.adapters import events, gitremote, gitwriteback, kubeapi, secrets
from controller.resources import gitsource, kinds, meta

LOGGER = logging.getLogger(__name__)
SOURCE_LABEL = f"{meta.GROUP}/git-source"  # on everything a GitSource created: what it may prune
SYNC_REQUEST = f"{meta.GROUP}/sync-requested"  # set by the webhook receiver: sync now
SYNCED_KINDS = {"ModelRelease": "modelreleases", "AnalysisTemplate": "analysistemplates"}


@dataclass
class SyncOutcome:
    commit: str
    applied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    problems: list[gitsource.SyncProblem] = field(default_factory=list)


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
                }
            )
            self._write_status(namespace, name, status)
            return status
        for problem in outcome.problems:
            where = f"{problem.file}:{problem.line}" if problem.line else problem.file
            self._event(
                source,
                events.WARNING,
                "ManifestInvalid",
                f"{where}: {problem.message}",
                outcome.commit,
                where,
            )
        if outcome.applied or outcome.pruned:
            said = f"synced {outcome.commit[:12]}: applied {', '.join(outcome.applied) or 'nothing'}"
            if outcome.pruned:
                said += f"; pruned {', '.join(outcome.pruned)}"
            self._event(source, events.NORMAL, "Synced", said, outcome.commit)
        quarantined = sorted({p.file for p in outcome.problems})
        message = (
            f"at {outcome.commit[:12]}: {len(outcome.applied) + len(outcome.unchanged)} resource(s) in sync"
        )
        if quarantined:
            message += f"; {len(quarantined)} file(s) quarantined: {', '.join(quarantined)}"
        status = gitsource.GitSourceStatus(
            observed_generation=source.metadata.generation,
            observed_commit=outcome.commit,
            last_sync_time=now,
            last_attempt_time=now,
            handled_sync_request=request,
            applied=tuple(sorted(outcome.applied + outcome.unchanged)),
            pruned=tuple(outcome.pruned),
            errors=tuple(outcome.problems),
            message=message,
        )
        self._write_status(namespace, name, status)
        return status

    def _sync(self, source: kinds.GitSource) -> SyncOutcome:
        spec, namespace = source.spec, source.metadata.namespace or ""
        credentials = secrets.git_credentials(self._api, namespace, spec.credentials, spec.ssh_known_hosts)
        with self._workspaces.using(gitremote.Remote(spec.url, spec.branch, credentials)) as workspace:
            commit = workspace.checkout_tip()
            outcome = SyncOutcome(commit=commit)
            paths = []
            for relative in spec.paths:
                path = workspace.path / relative
                if path.exists():
                    paths.append(path)
                else:
                    problem = gitsource.SyncProblem(file=relative, message="not in the repository")
                    outcome.problems.append(problem)
            tree = releasetree.read_paths(paths, root=workspace.path)  # read while the clone is ours
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
        if spec.prune:
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
            "labels": {SOURCE_LABEL: source.metadata.name},
            "annotations": {
                gitwriteback.SOURCE_ANNOTATION: source.metadata.name,
                gitwriteback.PATH_ANNOTATION: manifest.source,
                gitwriteback.COMMIT_ANNOTATION: commit,
            },
        }
        metadata = body.get("metadata") or {}
        labels = {**(metadata.get("labels") or {}), **ours["labels"]}
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
                    "labels": labels,
                    "annotations": annotations,
                },
            }
            self._api.create(kubeapi.build_path(meta.API_VERSION, SYNCED_KINDS[kind], namespace), created)
            outcome.applied.append(label)
            return
        live_labels = live.get("metadata", {}).get("labels") or {}
        if live_labels.get(SOURCE_LABEL) != source.metadata.name:
            outcome.problems.append(
                gitsource.SyncProblem(
                    file=manifest.source,
                    line=manifest.line,
                    message=f"{label} exists and was not created by GitSource {source.metadata.name}; "
                    f"left alone (label it {SOURCE_LABEL}={source.metadata.name} to hand it over)",
                )
            )
            return
        spec_patch = merge_patch(live.get("spec") or {}, body.get("spec") or {})
        live_meta = live.get("metadata") or {}
        meta_patch = {
            "labels": merge_patch(live_meta.get("labels") or {}, labels),
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
        namespace = source.metadata.namespace or ""
        for kind, plural in SYNCED_KINDS.items():
            listed = self._api.get(
                kubeapi.build_path(meta.API_VERSION, plural, namespace),
                {"labelSelector": f"{SOURCE_LABEL}={source.metadata.name}"},
            )
            for item in listed.get("items") or []:
                item_meta = item.get("metadata") or {}
                name = item_meta.get("name", "")
                file = (item_meta.get("annotations") or {}).get(gitwriteback.PATH_ANNOTATION)
                if (kind, name) in wanted or file in quarantined:
                    continue  # still in Git, or its file is broken now: never prune on a bad read
                try:
                    self._api.delete(kubeapi.build_path(meta.API_VERSION, plural, namespace, name))
                except errors.NotFoundError:
                    pass
                outcome.pruned.append(f"{kind}/{name}")

    def _write_status(self, namespace: str, name: str, status: gitsource.GitSourceStatus) -> None:
        body = {"status": status.model_dump(mode="json", by_alias=True, exclude_none=True)}
        # Lists are replaced whole by a merge patch: an empty one clears the errors of a fixed file.
        body["status"].setdefault("errors", [])
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


def _only_commit(meta_patch: dict[str, Any]) -> bool:
    """The only metadata change is the commit annotation: the object itself is as Git says."""
    annotations = meta_patch.get("annotations") or {}
    return set(annotations) <= {gitwriteback.COMMIT_ANNOTATION}


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
