"""Alias-driven releases end to end: a followed alias moves in a real registry, and the controller
process commits exactly one version bump per move to a real Git repository — woken by a signed
webhook from a real `mlflow server`, or, with no webhook, by polling the alias."""

from __future__ import annotations

import pathlib
from datetime import UTC, datetime
from typing import Any

import yaml
from mlflow import MlflowClient

from controller.adapters.mlflow import mlflowwebhook
from controller.cli import ctl
from controller.tooling import mlflow_process
from controller.tooling.prometheus_process import free_port
from tests import gitrepos
from tests.cluster import harness

MODEL = "ranker"
FILE = "releases/ranker/release.yaml"
ALIAS = "champion-candidate"


def registered(client: MlflowClient) -> None:
    client.create_registered_model(MODEL)
    for number in (1, 2, 3):
        client.create_model_version(MODEL, source=f"s3://models/{MODEL}/{number}")
    client.set_registered_model_alias(MODEL, ALIAS, "1")


def following(remote: gitrepos.BareRemote, person: gitrepos.Clone, **follow: str) -> dict[str, Any]:
    """The release as it is in Git (pinned to 1), and as Argo CD would apply it."""
    body = harness.release_body(MODEL, "1", gitWriteBack={"repoURL": remote.url, "path": FILE})
    body["spec"]["model"]["follow"] = {"alias": ALIAS, **follow}
    person.write({FILE: yaml.safe_dump(body, sort_keys=False)})
    person.commit_and_push("Release ranker 1, following champion-candidate")
    return body


def proposed(world: harness.World, version: str, timeout: float = 30) -> dict[str, Any]:
    return world.wait_for_status(
        MODEL,
        lambda s: (s.get("proposal") or {}).get("version") == version and bool(s["proposal"].get("commit")),
        timeout=timeout,
        what=f"version {version} proposed and committed",
    )


def test_a_webhook_from_mlflow_server_has_each_alias_move_proposed_as_one_commit_on_a_bump_branch(
    world: harness.World, tmp_path: pathlib.Path
) -> None:
    remote = gitrepos.BareRemote(tmp_path)
    person = gitrepos.Clone(remote.url, tmp_path / "ada")
    secret = "mlflow-webhook-secret-9f1c"
    (tmp_path / "hook-secret").write_text(secret)
    port = free_port()
    with mlflow_process.MlflowServer(tmp_path / "mlflow") as server:
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        registered(client)
        client.create_webhook(
            "modelrelease",
            f"http://127.0.0.1:{port}{mlflowwebhook.PATH}",
            events=["model_version_alias.created"],
            secret=secret,
        )
        flags = (
            *("--registry", "mlflow", "--mlflow-tracking-uri", server.url),
            *("--webhook-port", str(port), "--mlflow-webhook-secret-file", str(tmp_path / "hook-secret")),
        )
        controller = harness.Controller(world, tmp_path / "controller.log", *flags).start()
        try:
            world.script_analysis({"default": "Pass"})
            # An hour between two looks at the alias: only the webhook can make this quick.
            world.create(following(remote, person, target="bumpBranch", pollInterval="1h"))
            world.wait_for_phase(MODEL, "Succeeded")

            client.set_registered_model_alias(MODEL, ALIAS, "2")  # the training pipeline's candidate
            status = proposed(world, "2")
            [bump] = gitrepos.commits_with(remote, "Modelrelease-Action: bump/", branch="bump/ranker-2")
            assert status["proposal"]["commit"] == bump.hexsha
            assert bump.message.startswith("Bump ranker to model version 2")
            assert (
                yaml.safe_load(remote.show(FILE, branch="bump/ranker-2"))["spec"]["model"]["version"] == "2"
            )
            assert yaml.safe_load(remote.show(FILE))["spec"]["model"]["version"] == "1", (
                "main waits for the PR"
            )
            delivery = world.release(MODEL)["metadata"]["annotations"][mlflowwebhook.REGISTRY_EVENT]
            assert delivery, "the webhook's delivery id asked the release to look"

            client.set_registered_model_alias(MODEL, ALIAS, "3")  # the alias moves again
            proposed(world, "3")  # by then the release had looked at the alias again and again
        finally:
            controller.stop()
    for branch in ("bump/ranker-2", "bump/ranker-3"):
        assert len(gitrepos.commits_with(remote, "Modelrelease-Action: bump/", branch=branch)) == 1
    assert secret not in (tmp_path / "controller.log").read_text()


def test_without_a_webhook_the_poll_finds_the_move_and_commits_it_to_the_branch_once(
    world: harness.World, tmp_path: pathlib.Path
) -> None:
    remote = gitrepos.BareRemote(tmp_path)
    person = gitrepos.Clone(remote.url, tmp_path / "ada")
    store = f"sqlite:///{tmp_path / 'registry.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    registered(client)
    flags = ("--registry", "mlflow", "--mlflow-tracking-uri", store)
    controller = harness.Controller(world, tmp_path / "controller.log", *flags).start()
    try:
        world.script_analysis({"default": "Pass"})
        world.create(following(remote, person, target="branch", pollInterval="2s"))
        world.wait_for_phase(MODEL, "Succeeded")
        client.set_registered_model_alias(MODEL, ALIAS, "2")
        first = proposed(world, "2")["proposal"]["commit"]
        client.set_registered_model_alias(MODEL, ALIAS, "3")  # found by later polls, after many looks
        second = proposed(world, "3")["proposal"]["commit"]
        view = ctl.render_status(world.release(MODEL), world.events(), datetime.now(UTC))
        assert f"alias {ALIAS} moved to version 3, proposed in Git: committed {second[:12]}" in view
    finally:
        controller.stop()
    bumps = gitrepos.commits_with(remote, "Modelrelease-Action: bump/")
    assert [b.hexsha for b in bumps] == [second, first], "one commit per alias move, newest first"
    assert yaml.safe_load(remote.show(FILE))["spec"]["model"]["version"] == "3"
    reasons = [e["reason"] for e in world.events()]
    assert (reasons.count("ModelVersionProposed"), reasons.count("ModelVersionBumped")) == (2, 2)
