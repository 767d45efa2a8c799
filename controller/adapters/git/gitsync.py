"""GitSource: bring a repository's ModelReleases and AnalysisTemplates into the cluster.

The I/O half of a sync (the decisions are `syncplan`'s, pure): read the branch tip and the live
objects, execute what syncplan decided, write the status and post the Events it built.

One sync fetches the branch tip (shallow), reads the source's paths the way `modelrelease
validate` does, and then, file by file: a file with any problem is quarantined (reported in
status and as an Event; what it defined before stays as it was, running rollouts included),
the resources of good files are created or merge-patched, and — with `prune: true` only — what
this source created and Git no longer holds is deleted. Objects this source did not create are
never touched. Credentials come from a Secret and never appear in status, Events or logs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from controller import errors, releasetree
from controller.adapters import events, kubeapi, labels
from controller.adapters.git import gitcredentials, gitremote, syncplan
from controller.resources import gitsource, kinds, meta

SYNC_REQUEST = f"{meta.GROUP}/sync-requested"  # set by the webhook receiver: sync now


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
        now = self._clock()
        try:
            outcome = self._sync(source)
        except errors.ModelReleaseError as error:
            status, said = syncplan.failed(source, f"sync failed: {error}", now, request)
        else:
            status, said = syncplan.concluded(source, outcome, now, request)
        for event in said:
            self._event(source, event)
        self._write_status(source.metadata.namespace or "", source.metadata.name, status)
        return status

    def _sync(self, source: kinds.GitSource) -> syncplan.SyncOutcome:
        spec, namespace = source.spec, source.metadata.namespace or ""
        credentials = gitcredentials.git_credentials(
            self._api, namespace, spec.credentials, spec.ssh_known_hosts
        )
        with self._workspaces.using(gitremote.Remote(spec.url, spec.branch, credentials)) as workspace:
            commit = workspace.checkout_tip()
            missing = [relative for relative in spec.paths if not (workspace.path / relative).exists()]
            paths = [workspace.path / relative for relative in spec.paths if relative not in missing]
            tree = releasetree.read_paths(paths, root=workspace.path)  # read while the clone is ours
        outcome = syncplan.read(spec, commit, tree, missing)
        wanted = syncplan.wanted(source, tree, outcome)
        for key, (manifest, body) in wanted.items():
            try:
                action = syncplan.to_apply(source, key, manifest, body, commit, self._live(namespace, key))
                self._apply(namespace, key, action, outcome)
            except (errors.InvalidError, errors.ForbiddenError) as error:
                # The API server refused this one object (its schema, admission, RBAC): the others
                # still sync, and the refusal is reported against its file.
                outcome.problems.append(
                    gitsource.SyncProblem(
                        file=manifest.source, line=manifest.line, message=f"{key[0]} {key[1]}: {error}"
                    )
                )
        quarantined = tree.bad_files | {p.file for p in outcome.problems}
        prune = syncplan.to_prune(spec, wanted.keys(), self._managed(source), quarantined, outcome)
        self._prune(namespace, prune, outcome)
        return outcome

    def _live(self, namespace: str, key: syncplan.Key) -> dict[str, Any] | None:
        try:
            return self._api.get(_path(namespace, key))
        except errors.NotFoundError:
            return None

    def _apply(
        self, namespace: str, key: syncplan.Key, action: syncplan.Apply, outcome: syncplan.SyncOutcome
    ) -> None:
        label = syncplan.label(key)
        match action:
            case syncplan.Create(body=body):
                collection = kubeapi.build_path(meta.API_VERSION, syncplan.SYNCED_KINDS[key[0]], namespace)
                self._api.create(collection, body)
                outcome.applied.append(label)
            case syncplan.Patch(patch=patch, spec_changed=spec_changed):
                self._api.merge_patch(_path(namespace, key), patch)
                (outcome.applied if spec_changed else outcome.unchanged).append(label)
            case syncplan.Leave(problem=None):
                outcome.unchanged.append(label)
            case syncplan.Leave(problem=problem) if problem is not None:
                outcome.problems.append(problem)

    def _managed(self, source: kinds.GitSource) -> dict[syncplan.Key, str | None]:
        """What this source created, by (kind, name), with the file each came from."""
        namespace = source.metadata.namespace or ""
        managed: dict[syncplan.Key, str | None] = {}
        for kind, plural in syncplan.SYNCED_KINDS.items():
            listed = self._api.get(
                kubeapi.build_path(meta.API_VERSION, plural, namespace),
                {"labelSelector": f"{labels.GIT_SOURCE}={source.metadata.name}"},
            )
            for item in listed.get("items") or []:
                item_meta = item.get("metadata") or {}
                file = (item_meta.get("annotations") or {}).get(labels.GIT_PATH)
                managed[(kind, str(item_meta.get("name", "")))] = file
        return managed

    def _prune(self, namespace: str, prune: syncplan.Prune, outcome: syncplan.SyncOutcome) -> None:
        outcome.unpruned = [syncplan.label(key) for key in prune.gone]
        outcome.prune_refused = prune.refused
        if not prune.delete:
            return
        for key in prune.gone:
            try:
                self._api.delete(_path(namespace, key))
            except errors.NotFoundError:
                pass
            outcome.pruned.append(syncplan.label(key))
        outcome.unpruned = []

    def _write_status(self, namespace: str, name: str, status: gitsource.GitSourceStatus) -> None:
        body = {"status": status.model_dump(mode="json", by_alias=True, exclude_none=True)}
        # Lists are replaced whole by a merge patch: an empty one clears the errors of a fixed file.
        body["status"].setdefault("errors", [])
        body["status"].setdefault("pruneRefused", None)  # null removes a refusal that no longer holds
        self._api.merge_patch(
            kubeapi.build_path(meta.API_VERSION, "gitsources", namespace, name, "status"), body
        )

    def _event(self, source: kinds.GitSource, event: syncplan.SourceEvent) -> None:
        involved = {
            "apiVersion": meta.API_VERSION,
            "kind": "GitSource",
            "name": source.metadata.name,
            "namespace": source.metadata.namespace or "",
            "uid": source.metadata.uid or "",
        }
        self._events.post_regarding(
            involved, event.type, event.reason, event.message, event.reason, *event.identity
        )


def _path(namespace: str, key: syncplan.Key) -> str:
    return kubeapi.build_path(meta.API_VERSION, syncplan.SYNCED_KINDS[key[0]], namespace, key[1])
