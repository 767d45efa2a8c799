"""The Git side of the controller against real repositories: a bare remote on disk and one served by
`git http-backend` behind Basic authentication."""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Callable, Iterator

import pytest

from controller.adapters.git import gitremote
from tests import gitrepos

RELEASE = """\
# The ranker. Bump the version to release a new model.
apiVersion: modelrelease.dev/v1alpha1
kind: ModelRelease
metadata: {name: ranker, namespace: default}
spec:
  model:
    name: ranker
    version: "2"   # bumped by Ada in PR 41
  serving: {image: triton, replicas: 4}
  strategy: {canary: {steps: [{setWeight: 25}]}}
"""


@pytest.fixture
def workspaces(tmp_path: pathlib.Path) -> Iterator[gitremote.Workspaces]:
    opened = gitremote.Workspaces(tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def remote(tmp_path: pathlib.Path) -> gitrepos.BareRemote:
    bare = gitrepos.BareRemote(tmp_path)
    person = gitrepos.Clone(bare.url, tmp_path / "ada")
    person.write({"releases/ranker/release.yaml": RELEASE, "README.md": "releases\n"})
    person.commit_and_push("Release ranker 2")
    return bare


def _to_version_1(text: str) -> str:
    return text.replace('version: "2"', 'version: "1"')


def _roll_back(
    workspace: gitremote.Workspace,
    key: str,
    edit: Callable[[str], str | None] = _to_version_1,
    target: str = "main",
) -> gitremote.Pushed:
    """The release file back to version 1, as a write-back commits it; the push it made."""
    pushed = workspace.commit_and_push(
        base="main",
        target=target,
        from_base=target != "main",
        relative="releases/ranker/release.yaml",
        edit=edit,
        message="Roll back",
        key=key,
    )
    assert pushed is not None
    return pushed


def test_a_push_that_loses_a_race_is_fetched_and_replayed_on_the_new_tip(
    remote: gitrepos.BareRemote, workspaces: gitremote.Workspaces, tmp_path: pathlib.Path
) -> None:
    other = gitrepos.Clone(remote.url, tmp_path / "bob")
    other.pull()
    raced: list[str] = []

    def edit(text: str) -> str:
        if not raced:  # another commit lands between our fetch and our push
            other.write({"README.md": "releases, edited meanwhile\n"})
            raced.append(other.commit_and_push("Edit the README"))
        return _to_version_1(text)

    workspace = workspaces.get(gitremote.Remote(remote.url, "main"))
    pushed = _roll_back(workspace, "k1", edit)
    assert pushed.attempts == 2
    [ours, theirs, _first] = remote.log()
    assert (str(ours.hexsha), str(theirs.hexsha)) == (pushed.commit, raced[0])
    assert remote.show("README.md") == "releases, edited meanwhile\n"
    assert remote.show("releases/ranker/release.yaml") == _to_version_1(RELEASE)


def test_a_push_the_remote_refuses_is_tried_once_and_said_as_a_refusal_not_retried_as_a_race(
    remote: gitrepos.BareRemote, workspaces: gitremote.Workspaces, tmp_path: pathlib.Path
) -> None:
    tries = tmp_path / "tries"
    remote.add_hook("pre-receive", f"#!/bin/sh\necho try >> {tries}\necho 'main is protected' >&2\nexit 1\n")
    workspace = workspaces.get(gitremote.Remote(remote.url, "main"))
    with pytest.raises(gitremote.GitRemotePermanentError) as refused:
        _roll_back(workspace, "k-refused")
    assert "refused the push to main (a protected branch or a hook)" in str(refused.value)
    assert "main is protected" in str(refused.value)
    assert tries.read_text().splitlines() == ["try"]


def test_a_write_with_a_key_already_in_git_is_found_and_not_made_again(
    remote: gitrepos.BareRemote, workspaces: gitremote.Workspaces, tmp_path: pathlib.Path
) -> None:
    def commit(workspace: gitremote.Workspace) -> gitremote.Pushed:
        return _roll_back(workspace, "abc.1/writeback")

    first = commit(workspaces.get(gitremote.Remote(remote.url, "main")))
    restarted = gitremote.Workspaces(tmp_path)  # a new process: a new clone
    again = commit(restarted.get(gitremote.Remote(remote.url, "main")))
    restarted.close()
    assert (again.commit, again.attempts) == (first.commit, 0)
    assert len(gitrepos.commits_with(remote, "Modelrelease-Action: abc.1/writeback")) == 1


def test_a_token_travels_as_a_header_and_never_appears_in_an_error(
    workspaces: gitremote.Workspaces, tmp_path: pathlib.Path
) -> None:
    bare = gitrepos.BareRemote(tmp_path / "served")
    with gitrepos.HttpGitServer(tmp_path / "served", "ci", "s3cr3t-t0ken") as server:
        person = gitrepos.Clone(server.url("releases.git"), tmp_path / "ada")
        person.repo.git.config("http.extraHeader", f"Authorization: {server.expected}")
        person.write({"releases/ranker/release.yaml": RELEASE})
        person.commit_and_push("Release ranker 2")
        good = gitremote.Credentials(username="ci", password="s3cr3t-t0ken")
        workspace = workspaces.get(gitremote.Remote(server.url("releases.git"), "main", good))
        assert workspace.checkout_tip() == str(bare.log()[0].hexsha)
        _roll_back(workspace, "k2")
        assert bare.show("releases/ranker/release.yaml") == _to_version_1(RELEASE)
        assert set(server.authorizations) == {server.expected}

        wrong = gitremote.Credentials(username="ci", password="wr0ng-t0ken")
        refused = workspaces.get(gitremote.Remote(server.url("releases.git"), "main", wrong))
        with pytest.raises(gitremote.GitRemotePermanentError) as raised:
            refused.checkout_tip()
        assert "wr0ng-t0ken" not in str(raised.value)
        assert wrong.basic_auth() not in str(raised.value)
        assert "refused the credentials" in str(raised.value)


def test_a_rollback_branch_starts_from_the_base_each_time_and_leaves_the_base_alone(
    remote: gitrepos.BareRemote, workspaces: gitremote.Workspaces
) -> None:
    workspace = workspaces.get(gitremote.Remote(remote.url, "main"))
    base_before = remote.log()[0].hexsha
    for key in ("first/writeback", "second/writeback"):  # a second rollback replaces the branch
        pushed = _roll_back(workspace, key, target="rollback/ranker")
        assert pushed.branch == "rollback/ranker"
    assert remote.log()[0].hexsha == base_before
    [ours, base] = remote.log("rollback/ranker")
    assert base.hexsha == base_before
    assert "Modelrelease-Action: second/writeback" in ours.message
    assert remote.show("releases/ranker/release.yaml", "rollback/ranker") == _to_version_1(RELEASE)


def test_a_clone_in_use_by_a_bump_is_not_checked_out_under_it_by_a_sync_in_another_thread(
    remote: gitrepos.BareRemote, workspaces: gitremote.Workspaces
) -> None:
    # A GitSource's sync checked main out between a bump's commit and its push, and the push sent
    # main's tip as the bump branch. Now the sync waits for the clone, and the branch holds the bump.
    origin = gitremote.Remote(remote.url, "main")
    synced: list[str] = []
    sync = threading.Thread(target=lambda: _sync(workspaces, origin, synced))

    def edit(text: str) -> str:
        sync.start()  # the sync starts while the bump holds the clone: it has to wait
        return _to_version_1(text)

    with workspaces.using(origin) as workspace:
        pushed = _roll_back(workspace, "bump/k", edit, target="bump/ranker-1")
        assert not synced, "the sync ran while the bump held the clone"
    sync.join(timeout=60)
    assert synced == [str(remote.log("main")[0].hexsha)]
    assert str(remote.log("bump/ranker-1")[0].hexsha) == pushed.commit != synced[0]


def _sync(workspaces: gitremote.Workspaces, origin: gitremote.Remote, synced: list[str]) -> None:
    with workspaces.using(origin) as workspace:
        synced.append(workspace.checkout_tip())
