"""The release repository side of a rollback and of a followed alias: commit a model version to Git.

A rollback commits the stable version back; an alias the release follows that moves commits the
new version (on the release's branch, or a `bump/<release>-<version>` branch for a PR).

Where the release came from decides where it is written: a release a GitSource synced carries
the source and the file in its annotations; one Argo CD applied names the repository and the file
in `spec.gitWriteBack`. Only `spec.model.version` of that release changes in that file; comments
and layout stay. The commit carries the action's idempotency key as a trailer, and the domain
asks Git for it before asking for a commit, so a controller killed right after pushing finds its
commit instead of making another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pydantic

from controller import errors, ports, yamledit
from controller.adapters import kubeapi, labels
from controller.adapters.git import gitcredentials, gitremote
from controller.domain import actions, observations
from controller.resources import gitsource, kinds, meta, modelrelease, releasestatus

VERSION_PATH = ("spec", "model", "version")


@dataclass(frozen=True)
class Location:
    remote: gitremote.Remote
    file: str
    target: str  # the branch the commit is pushed to
    fresh_branch: bool  # a rollback/<release> branch: started from the base branch's tip each time


class GitWriteBack:
    """ports.ReleaseRepository on Git remotes."""

    def __init__(self, api: kubeapi.KubeApi, workspaces: gitremote.Workspaces) -> None:
        self._api = api
        self._workspaces = workspaces

    def fetch_written_back(
        self, release: ports.ReleaseRef, owed: releasestatus.GitWriteBack
    ) -> observations.WrittenBack | None:
        where = self.locate(release)
        with self._workspaces.using(where.remote) as workspace:
            found = _find_keyed(workspace, where, owed.key)
            if found is not None:
                return found
            if where.fresh_branch:
                return None
            tip = workspace.checkout_tip()
            if _version_in(workspace.read(where.file), release.name) != owed.rolled_back_version:
                return observations.WrittenBack(key=owed.key, commit=tip, superseded=True)
            return None

    def apply_write_back(self, release: ports.ReleaseRef, action: actions.WriteBackToGit) -> None:
        where = self.locate(release)

        def restore(text: str) -> str | None:
            if _version_in(text, release.name) != action.rolled_back_version:
                return None  # Git has moved on since the rollout began: nothing of ours to undo
            return yamledit.set_scalar(
                text, kind="ModelRelease", name=release.name, path=VERSION_PATH, value=action.restore_version
            )

        self._commit(where, restore, commit_message(release, action), action.key)

    def fetch_proposed(
        self, release: ports.ReleaseRef, owed: releasestatus.Proposal, target: modelrelease.BumpTarget
    ) -> observations.WrittenBack | None:
        where = _bump_location(self.locate(release), release, owed.version, target)
        with self._workspaces.using(where.remote) as workspace:
            found = _find_keyed(workspace, where, owed.key)
            if found is not None:
                return found
            tip = workspace.checkout_tip()
            if _version_in(workspace.read(where.file), release.name) == owed.version:
                return observations.WrittenBack(key=owed.key, commit=tip, superseded=True)
            return None

    def apply_bump(self, release: ports.ReleaseRef, action: actions.ProposeBump) -> None:
        where = _bump_location(self.locate(release), release, action.version, action.target)

        def bump(text: str) -> str | None:
            if _version_in(text, release.name) == action.version:
                return None  # Git says it already: a person bumped it, or the branch was merged
            return yamledit.set_scalar(
                text, kind="ModelRelease", name=release.name, path=VERSION_PATH, value=action.version
            )

        self._commit(where, bump, bump_message(release, action), action.key)

    def _commit(self, where: Location, edit: Callable[[str], str | None], message: str, key: str) -> None:
        """Commit `edit` of the release's file where it goes, carrying `key` (found again, not redone)."""
        try:
            with self._workspaces.using(where.remote) as workspace:
                workspace.commit_and_push(
                    base=where.remote.branch,
                    target=where.target,
                    from_base=where.fresh_branch,
                    relative=where.file,
                    edit=edit,
                    message=message,
                    key=key,
                )
        except (yamledit.EditError, FileNotFoundError) as error:
            raise errors.PermanentError(f"{where.file} in {where.remote}: {error}") from error

    def locate(self, release: ports.ReleaseRef) -> Location:
        settings = release.spec.git_write_back
        body = self._api.get(
            kubeapi.build_path(meta.API_VERSION, "modelreleases", release.namespace, release.name)
        )
        annotations = body.get("metadata", {}).get("annotations") or {}
        source_name, file = annotations.get(labels.GIT_SOURCE), annotations.get(labels.GIT_PATH)
        if settings.repo_url is not None and settings.path is not None:
            credentials = gitcredentials.git_credentials(self._api, release.namespace, settings.credentials)
            remote = gitremote.Remote(settings.repo_url, settings.branch, credentials)
            return _location(
                remote, settings.path, settings.target or gitsource.WriteBackTarget.BRANCH, release
            )
        if source_name and file:
            path = kubeapi.build_path(meta.API_VERSION, "gitsources", release.namespace, source_name)
            try:
                source = kinds.from_cluster(kinds.GitSource, self._api.get(path))
            except pydantic.ValidationError as error:
                raise errors.PermanentError(f"GitSource {source_name} is invalid: {error}") from None
            spec = source.spec
            credentials = gitcredentials.git_credentials(
                self._api, release.namespace, spec.credentials, spec.ssh_known_hosts
            )
            remote = gitremote.Remote(spec.url, spec.branch, credentials)
            return _location(remote, file, settings.target or spec.write_back_target, release)
        raise errors.PermanentError(
            "nowhere in Git to commit to: no GitSource synced this release and "
            "spec.gitWriteBack names no repoURL and path"
        )


def _location(
    remote: gitremote.Remote, file: str, target: gitsource.WriteBackTarget, release: ports.ReleaseRef
) -> Location:
    if target == gitsource.WriteBackTarget.ROLLBACK_BRANCH:
        return Location(remote, file, f"rollback/{release.name}", fresh_branch=True)
    return Location(remote, file, remote.branch, fresh_branch=False)


def _find_keyed(workspace: gitremote.Workspace, where: Location, key: str) -> observations.WrittenBack | None:
    """The commit carrying `key` on the target branch or the base branch, if either has it."""
    for branch in dict.fromkeys((where.target, where.remote.branch)):
        if workspace.fetch(branch, depth=gitremote.HISTORY_DEPTH) is not None:
            found = workspace.find_trailer(branch, key)
            if found is not None:
                return observations.WrittenBack(key=key, commit=found)
    return None


def _bump_location(
    where: Location, release: ports.ReleaseRef, version: str, target: modelrelease.BumpTarget
) -> Location:
    if target == modelrelease.BumpTarget.BUMP_BRANCH:
        return Location(where.remote, where.file, f"bump/{release.name}-{version}", fresh_branch=True)
    return Location(where.remote, where.file, where.remote.branch, fresh_branch=False)


def _version_in(text: str, name: str) -> str | None:
    return yamledit.read_scalar(text, kind="ModelRelease", name=name, path=VERSION_PATH)


def commit_message(release: ports.ReleaseRef, action: actions.WriteBackToGit) -> str:
    lines = [
        f"Roll back {release.name} to model version {action.restore_version}",
        "",
        f"modelrelease rolled back version {action.rolled_back_version} of {action.model_name} "
        f"(ModelRelease {release.namespace}/{release.name}); this makes Git say what the cluster runs.",
        "",
        f"Why: {action.reason}",
    ]
    if action.evidence:
        lines += ["", "Failing metrics:"] + [f"- {line}" for line in action.evidence]
    return "\n".join(lines)


def bump_message(release: ports.ReleaseRef, action: actions.ProposeBump) -> str:
    return "\n".join(
        [
            f"Bump {release.name} to model version {action.version}",
            "",
            f"The MLflow alias {action.alias} of {action.model_name} moved to version {action.version} "
            f"(ModelRelease {release.namespace}/{release.name} pins {action.from_version}); modelrelease "
            "proposes it here so the release goes through Git, its review and its checks.",
        ]
    )
