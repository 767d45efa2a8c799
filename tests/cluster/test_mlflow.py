"""The MLflow registry end to end: the controller process resolves, gates, promotes and tags versions
in a real registry (MLflow's SQL store on SQLite) while it rolls releases out on the real
control plane."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from controller.cli import ctl
from controller.tooling import mlflow_process
from tests.cluster import harness

MODEL = "ranker"


@pytest.fixture
def registry(tmp_path: pathlib.Path) -> tuple[str, MlflowClient]:
    uri = f"sqlite:///{tmp_path / 'registry.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(MODEL)
    for number in (1, 2, 3):
        tags = {"validation": "passed"} if number != 2 else {"validation": "running"}
        client.create_model_version(MODEL, source=f"s3://models/{MODEL}/{number}", tags=tags)
    return uri, client


@pytest.fixture
def mlflow_controller(
    world: harness.World, tmp_path: pathlib.Path, registry: tuple[str, MlflowClient]
) -> Iterator[harness.Controller]:
    flags = ("--registry", "mlflow", "--mlflow-tracking-uri", registry[0])
    running = harness.Controller(world, tmp_path / "controller.log", *flags).start()
    yield running
    running.stop()


def release(**model: Any) -> dict[str, Any]:
    body = harness.release_body(MODEL)
    body["spec"]["model"] = {"name": MODEL, "requireTags": {"validation": "passed"}, **model}
    return body


def alias(client: MlflowClient, name: str) -> str | None:
    """Where alias `name` points, None while it points nowhere."""
    try:
        return str(client.get_model_version_by_alias(MODEL, name).version)
    except MlflowException:
        return None


def tags(client: MlflowClient, version: str) -> dict[str, str]:
    return dict(client.get_model_version(MODEL, version).tags)


def test_a_version_waits_for_its_tag_then_promotion_moves_the_alias_and_a_rollback_only_tags(
    world: harness.World, mlflow_controller: harness.Controller, registry: tuple[str, MlflowClient]
) -> None:
    client = registry[1]
    world.script_analysis({"2": "Pass", "3": "Fail"})
    world.create(release(version="1"))
    first = world.wait_for_phase(MODEL, "Succeeded")
    assert first["resolvedModel"]["uri"] == f"s3://models/{MODEL}/1"
    env = world.deployments()[f"{MODEL}-{first['stableRevision']}"]["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert {"name": "MODEL_URI", "value": f"s3://models/{MODEL}/1"} in env["env"]
    world.wait_until(lambda: alias(client, "production") == "1", timeout=30, what="production on 1")

    world.patch_release(MODEL, {"spec": {"model": {"version": "2"}}})
    waiting = world.wait_for_status(
        MODEL, lambda s: s.get("reason") == "RequiredTagsMissing", what="the tag gate"
    )
    assert waiting["phase"] == "Pending"
    assert "version 2 lacks the required tags validation=passed" in waiting["message"]
    assert len(world.deployments()) == 1, "a pod started before the gate held"
    client.set_model_version_tag(MODEL, "2", "validation", "passed")  # the validation pipeline finishes
    world.wait_for_status(MODEL, lambda s: s.get("stableModelVersion") == "2", timeout=90, what="2 promoted")
    world.wait_until(lambda: alias(client, "production") == "2", timeout=30, what="the alias moved")
    # The alias and the outcome tag are two registry writes: the tag may land a moment after the alias.
    world.wait_until(
        lambda: tags(client, "2").get("modelrelease.rollout") == "promoted", timeout=30, what="the tag"
    )

    world.patch_release(MODEL, {"spec": {"model": {"version": "3"}}})
    rolled = world.wait_for_status(
        MODEL,
        lambda s: s.get("phase") == "RolledBack" and not s.get("registryOwed"),
        timeout=90,
        what="rolled back and the registry told",
    )
    assert rolled["lastRollback"]["modelVersion"] == "3"
    assert (tags(client, "3")["modelrelease.rollout"], tags(client, "3")["modelrelease.rollout.reason"]) == (
        "rolled_back",
        "AnalysisFailed",
    )
    assert alias(client, "production") == "2"
    # Each rollout is a run in experiment modelrelease, linked from its history entry.
    experiment = client.get_experiment_by_name("modelrelease")
    assert experiment is not None
    runs = {r.info.run_id: r for r in client.search_runs([experiment.experiment_id])}
    linked = [record["mlflowRun"].removeprefix("runs:/") for record in rolled["history"]]
    assert [runs[run_id].data.tags["modelrelease.outcome"] for run_id in linked] == ["Promoted", "RolledBack"]
    assert [runs[run_id].data.params["model_version"] for run_id in linked] == ["2", "3"]
    assert client.get_metric_history(linked[1], "verdict")[-1].value == -1.0
    history = ctl.render_history(world.release(MODEL), datetime.now(UTC))
    assert all(f"runs:/{run_id}" in history for run_id in linked)


def test_an_alias_that_moves_mid_rollout_does_not_change_the_running_rollout(
    world: harness.World, mlflow_controller: harness.Controller, registry: tuple[str, MlflowClient]
) -> None:
    client = registry[1]
    client.set_registered_model_alias(MODEL, "champion", "1")
    client.set_registered_model_alias(MODEL, "candidate", "3")
    world.script_analysis({"default": "Running"})
    world.create(release(alias="champion"))
    world.wait_for_phase(MODEL, "Succeeded")
    world.patch_release(MODEL, {"spec": {"model": {"alias": "candidate"}}})
    world.wait_for_status(MODEL, lambda s: s.get("canaryModelVersion") == "3", what="the rollout of 3")
    client.set_model_version_tag(MODEL, "2", "validation", "passed")
    client.set_registered_model_alias(MODEL, "candidate", "2")  # moved while 3 rolls out
    world.script_analysis({"3": "Pass"})
    done = world.wait_for_status(MODEL, lambda s: s.get("phase") == "Succeeded", timeout=90, what="promoted")
    assert (done["stableModelVersion"], done["resolvedModel"]["version"]) == ("3", "3")
    world.wait_until(lambda: alias(client, "production") == "3", timeout=30, what="production on 3")


def test_with_the_registry_down_nothing_starts_unresolved_and_a_promotion_owes_its_alias_until_it_is_back(
    world: harness.World, tmp_path: pathlib.Path
) -> None:
    with mlflow_process.MlflowServer(tmp_path / "mlflow") as server:
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        client.create_registered_model(MODEL)
        for number in (1, 2):
            client.create_model_version(
                MODEL, source=f"s3://models/{MODEL}/{number}", tags={"validation": "passed"}
            )
        flags = ("--registry", "mlflow", "--mlflow-tracking-uri", server.url)
        controller = harness.Controller(world, tmp_path / "controller.log", *flags).start()
        try:
            world.script_analysis({"2": "Running"})
            world.create(release(version="1"))
            world.wait_for_status(
                MODEL, lambda s: s.get("phase") == "Succeeded" and not s.get("registryOwed")
            )
            assert client.get_model_version_by_alias(MODEL, "production").version == "1"  # a string over REST

            server.stop()
            world.patch_release(MODEL, {"spec": {"model": {"version": "2"}}})
            failing = world.wait_for_status(
                MODEL,
                lambda s: any(
                    c["type"] == "ReconcileError" and c["status"] == "True" and "MLflow" in c["message"]
                    for c in s.get("conditions", [])
                ),
                what="the registry's outage in status",
            )
            assert failing["phase"] == "Succeeded"
            assert len(world.deployments()) == 1, "a rollout started with its model unresolved"

            server.start()
            world.wait_for_status(
                MODEL, lambda s: s.get("canaryModelVersion") == "2", timeout=90, what="2 started"
            )
            server.stop()
            world.script_analysis({"2": "Pass"})
            owed = world.wait_for_status(
                MODEL,
                lambda s: s.get("stableModelVersion") == "2" and bool(s.get("registryOwed")),
                timeout=90,
                what="promoted while the registry is down, the alias move owed",
            )
            assert owed["registryOwed"][0]["alias"] == "production"
            world.wait_until(
                lambda: any(e["reason"] == "RegistryUpdateFailed" for e in world.events()),
                timeout=30,
                what="a RegistryUpdateFailed Event",
            )

            server.start()
            world.wait_for_status(
                MODEL, lambda s: not s.get("registryOwed"), timeout=90, what="the alias moved"
            )
        finally:
            controller.stop()
        assert client.get_model_version_by_alias(MODEL, "production").version == "2"
        assert client.get_model_version(MODEL, "2").tags["modelrelease.rollout"] == "promoted"
        assert any(e["reason"] == "RegistryUpdated" for e in world.events())
