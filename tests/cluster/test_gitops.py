"""GitOps end to end: the real controller syncs a GitSource from a real repository into the real
control plane, and writes a rollback back to it — once, even when killed right after pushing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import pathlib
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests import gitrepos
from tests.cluster import harness


def release_file(name: str, version: str, *, set_weight: int = 25) -> str:
    return f"""\
# {name}: owned by the ranking team. Bump the version in a PR to release a model.
apiVersion: modelrelease.dev/v1alpha1
kind: ModelRelease
metadata:
  name: {name}
spec:
  model:
    name: {name}
    version: "{version}"   # the model in the registry
  serving:
    image: registry.example.com/triton:24.08
    replicas: 4
    resources: {{limits: {{nvidia.com/gpu: 1}}}}
  strategy:
    canary:
      scaleDownDelay: 0s
      steps:
        - setWeight: {set_weight}
        - analysis: {{template: quality, maxDuration: 10m}}
        - setWeight: 50
  gpuBudget: {{maxExtraGPUs: 2}}
  gitWriteBack: {{enabled: true}}
"""


TEMPLATE = """\
apiVersion: modelrelease.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: quality}
spec:
  metrics:
    - name: errors
      kind: errorRate
      errorRate:
        requests: 'requests_total{revision="{{revision}}"}'
        errors: 'errors_total{revision="{{revision}}"}'
      margin: {relative: 0.2}
"""


def git_source(url: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "GitSource",
        "metadata": {"name": "releases"},
        "spec": {"url": url, "branch": "main", "pollInterval": "1s", "prune": True, **spec},
    }


def source_status(world: harness.World) -> dict[str, Any]:
    return world.get("gitsources", "releases").get("status") or {}


def wait_for_commit(world: harness.World, commit: str) -> dict[str, Any]:
    def synced() -> dict[str, Any] | None:
        status = source_status(world)
        return status if status.get("observedCommit") == commit else None

    return world.wait_until(synced, timeout=30, what=f"GitSource synced {commit[:12]}")


def wait_for_write_back(world: harness.World) -> dict[str, Any]:
    """The release's status once it records the commit its rollback owed Git."""
    return world.wait_for_status(
        "ranker",
        lambda s: bool((s.get("lastRollback") or {}).get("gitWriteBack", {}).get("commit")),
        what="write-back recorded",
    )


def releases(world: harness.World) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in world.objects("modelreleases")}


@pytest.fixture
def remote(tmp_path: pathlib.Path) -> gitrepos.BareRemote:
    return gitrepos.BareRemote(tmp_path)


@pytest.fixture
def person(remote: gitrepos.BareRemote, tmp_path: pathlib.Path) -> gitrepos.Clone:
    return gitrepos.Clone(remote.url, tmp_path / "ada")


def test_a_bad_manifest_is_quarantined_while_the_good_ones_sync_and_a_merge_updates_the_release(
    world: harness.World, controller: harness.Controller, remote: gitrepos.BareRemote, person: gitrepos.Clone
) -> None:
    world.script_analysis({"default": "Pass"})
    person.write(
        {
            "analysis-templates/quality.yaml": TEMPLATE,
            "analysis-templates/legacy.yaml": TEMPLATE.replace("name: quality", "name: legacy-quality"),
            "releases/ranker/release.yaml": release_file("ranker", "1"),
            "releases/scorer/release.yaml": release_file("scorer", "1"),
            "releases/legacy/release.yaml": release_file("legacy", "1"),
            "releases/broken/release.yaml": release_file("broken", "1", set_weight=250),
        }
    )
    first = person.commit_and_push("Add the releases")
    world.create(git_source(remote.url))
    status = wait_for_commit(world, first)
    assert status["errors"] == [
        {
            "file": "releases/broken/release.yaml",
            "line": 18,
            "message": "spec.strategy.canary.steps[0].setWeight: 250 is above 100",
        }
    ]
    synced = releases(world)
    assert set(synced) == {"ranker", "scorer", "legacy"}
    ranker = synced["ranker"]["metadata"]
    assert ranker["labels"]["modelrelease.dev/git-source"] == "releases"
    assert ranker["annotations"]["modelrelease.dev/git-path"] == "releases/ranker/release.yaml"
    assert ranker["annotations"]["modelrelease.dev/git-commit"] == first
    assert any(
        e["reason"] == "ManifestInvalid" and "releases/broken/release.yaml:18" in e["message"]
        for e in world.events()
    )
    assert "AnalysisTemplate/quality" in status["applied"]

    scorer_spec = synced["scorer"]["spec"]
    person.write(
        {
            "releases/ranker/release.yaml": release_file("ranker", "2"),
            "releases/scorer/release.yaml": release_file("scorer", "2").replace(
                "replicas: 4", "replicas: 4\n    replica: 5"
            ),
        }
    )
    person.write({"analysis-templates/quality.yaml": TEMPLATE.replace("relative: 0.2", "relative: 0.1")})
    person.remove("releases/legacy/release.yaml")
    person.remove("analysis-templates/legacy.yaml")
    merged = person.commit_and_push("Release ranker 2; a typo in scorer; retire legacy; a tighter margin")
    status = wait_for_commit(world, merged)
    now = releases(world)
    assert now["ranker"]["spec"]["model"]["version"] == "2"
    assert now["scorer"]["spec"] == scorer_spec  # its file is bad: left as it was
    # Removed from Git, and created by this source:
    assert sorted(status["pruned"]) == ["AnalysisTemplate/legacy-quality", "ModelRelease/legacy"]
    assert "AnalysisTemplate/quality" in status["applied"]
    template = world.get("analysistemplates", "quality")
    assert template["spec"]["metrics"][0]["margin"] == {"relative": 0.1}
    world.wait_until(lambda: "legacy" not in releases(world), timeout=30, what="legacy deleted")
    assert {e["file"] for e in status["errors"]} == {
        "releases/scorer/release.yaml",
        "releases/broken/release.yaml",
    }
    world.wait_for_status(
        "ranker", lambda s: s.get("canaryModelVersion") == "2" or s.get("stableModelVersion") == "2"
    )


def test_a_rollback_is_written_back_to_git_exactly_once_even_when_the_controller_dies_right_after_pushing(
    world: harness.World,
    controller: harness.Controller,
    remote: gitrepos.BareRemote,
    person: gitrepos.Clone,
    tmp_path: pathlib.Path,
) -> None:
    world.script_analysis({"1": "Pass", "2": "Fail"})
    person.write(
        {
            "analysis-templates/quality.yaml": TEMPLATE,
            "releases/ranker/release.yaml": release_file("ranker", "1"),
        }
    )
    person.commit_and_push("Release ranker 1")
    world.create(git_source(remote.url))
    world.wait_for_status(
        "ranker", lambda s: s.get("phase") == "Succeeded" and s.get("stableModelVersion") == "1"
    )

    # The remote kills the controller as soon as it has accepted the write-back: pushed, status unwritten.
    pid_file, killed = tmp_path / "controller.pid", tmp_path / "killed"
    assert controller.process is not None
    pid_file.write_text(str(controller.process.pid))
    remote.add_hook(
        "post-receive",
        f"""#!/bin/sh
while read old new ref; do
  if git log -1 --format=%B "$new" | grep -q '^Modelrelease-Action:' && [ ! -e {killed} ]; then
    touch {killed}; kill -9 "$(cat {pid_file})"
  fi
done
""",
    )
    person.pull()
    person.write({"releases/ranker/release.yaml": release_file("ranker", "2")})
    person.commit_and_push("Release ranker 2")
    controller.process.wait(timeout=60)
    assert killed.exists()
    assert world.status("ranker")["lastRollback"]["gitWriteBack"].get("commit") is None  # died before status

    controller.start()
    status = wait_for_write_back(world)
    [revert] = gitrepos.commits_with(remote, "Modelrelease-Action:")
    assert status["lastRollback"]["gitWriteBack"]["commit"] == revert.hexsha
    assert remote.show("releases/ranker/release.yaml") == release_file(
        "ranker", "1"
    )  # one field, comments kept
    assert revert.message.startswith("Roll back ranker to model version 1")
    assert f"rolled back version 2 of ranker (ModelRelease {world.namespace}/ranker)" in revert.message
    assert "AnalysisFailed: step 1 (analysis quality): Fail" in revert.message
    # The GitSource brings the revert back: Git, cluster and what runs agree on version 1.
    wait_for_commit(world, revert.hexsha)
    assert world.release("ranker")["spec"]["model"]["version"] == "1"
    settled = world.wait_for_phase("ranker", "Succeeded")
    assert settled["stableModelVersion"] == "1"
    assert len(gitrepos.commits_with(remote, "Modelrelease-Action:")) == 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _post(port: int, body: bytes, signature: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/hooks/git",
        data=body,
        headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": signature},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_a_signed_push_webhook_syncs_at_once_over_https_credentials_that_never_show(
    world: harness.World, tmp_path: pathlib.Path
) -> None:
    token, hook_secret = "ghp_s3cr3tT0ken", "hook-s3cr3t"
    served = tmp_path / "served"
    served.mkdir()
    bare = gitrepos.BareRemote(served)
    with gitrepos.HttpGitServer(served, "ci", token) as server:
        url = server.url("releases.git")
        person = gitrepos.Clone(url, tmp_path / "ada")
        person.repo.git.config("http.extraHeader", f"Authorization: {server.expected}")
        person.write(
            {
                "analysis-templates/quality.yaml": TEMPLATE,
                "releases/ranker/release.yaml": release_file("ranker", "1"),
            }
        )
        person.commit_and_push("Release ranker 1")
        encoded = {
            k: base64.b64encode(v.encode()).decode()
            for k, v in {"username": "ci", "token": token, "webhook": hook_secret}.items()
        }
        world.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "release-repo"},
                "data": encoded,
            }
        )
        credentials = {
            "username": {"name": "release-repo", "key": "username"},
            "password": {"name": "release-repo", "key": "token"},
        }
        world.create(
            git_source(
                url,
                pollInterval="1h",
                credentials=credentials,
                webhookSecret={"name": "release-repo", "key": "webhook"},
            )
        )
        port = _free_port()
        running = harness.Controller(
            world, tmp_path / "controller.log", "--git-webhook-port", str(port)
        ).start()
        try:
            world.wait_until(lambda: "ranker" in releases(world), timeout=30, what="first sync")
            person.write({"releases/ranker/release.yaml": release_file("ranker", "2")})
            pushed = person.commit_and_push("Release ranker 2")
            payload = json.dumps(
                {"ref": "refs/heads/main", "after": pushed, "repository": {"clone_url": url}}
            ).encode()
            signed = "sha256=" + hmac.new(hook_secret.encode(), payload, hashlib.sha256).hexdigest()
            assert _post(port, payload, "sha256=" + "0" * 64)[0] == 401  # forged: nothing requested
            assert "modelrelease.dev/sync-requested" not in (
                world.get("gitsources", "releases")["metadata"].get("annotations") or {}
            )
            code, answer = _post(port, payload, signed)
            assert (code, answer) == (202, {"syncing": [f"{world.namespace}/releases"]})
            wait_for_commit(world, pushed)  # an hour before the next poll: only the webhook did this
            assert world.release("ranker")["spec"]["model"]["version"] == "2"
            assert set(server.authorizations) == {server.expected}
        finally:
            running.stop()
    basic = base64.b64encode(f"ci:{token}".encode()).decode()
    seen = (
        (tmp_path / "controller.log").read_text()
        + json.dumps(source_status(world))
        + json.dumps(world.events())
    )
    for secret in (token, basic, hook_secret):
        assert secret not in seen
    assert bare.log()[0].hexsha == pushed


def test_with_argo_cd_as_the_source_the_release_names_its_repository_and_the_rollback_is_written_there(
    world: harness.World, controller: harness.Controller, remote: gitrepos.BareRemote, person: gitrepos.Clone
) -> None:
    world.script_analysis({"1": "Pass", "2": "Fail"})
    person.write({"releases/ranker/release.yaml": release_file("ranker", "2")})
    person.commit_and_push("Release ranker 2")
    write_back = {"enabled": True, "repoURL": remote.url, "path": "releases/ranker/release.yaml"}
    # What Argo CD would apply: the same manifest, with no GitSource involved.
    world.create(harness.release_body("ranker", "1", gitWriteBack=write_back))
    world.wait_for_status(
        "ranker", lambda s: s.get("phase") == "Succeeded" and s.get("stableModelVersion") == "1"
    )
    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
    status = wait_for_write_back(world)
    [revert] = gitrepos.commits_with(remote, "Modelrelease-Action:")
    assert status["lastRollback"]["gitWriteBack"]["commit"] == revert.hexsha
    assert remote.show("releases/ranker/release.yaml") == release_file("ranker", "1")
