"""The MLflow registry adapter against a real registry (MLflow's SQL store on SQLite, in process): what
a release names resolves to the registry's version, source, run, status and tags; promotion moves
the alias once and tags the outcome; a rollback tags the version and leaves the alias alone."""

from __future__ import annotations

import itertools
import json
import pathlib
from datetime import UTC, datetime, timedelta

import pytest
from mlflow import MlflowClient

from analysis import verdicts
from controller import errors
from controller.adapters.mlflow import mlflow_registry, mlflow_runs
from controller.cli import main
from controller.domain import actions
from controller.resources import modelrelease, releasestatus

names = itertools.count()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{folder / 'registry.db'}"


@pytest.fixture
def client(store: str) -> MlflowClient:
    return MlflowClient(tracking_uri=store, registry_uri=store)


@pytest.fixture
def registry(store: str) -> mlflow_registry.MlflowRegistry:
    return mlflow_registry.connect(store)


def model_with_versions(client: MlflowClient, count: int, **tags: str) -> str:
    name = f"fraud-{next(names)}"
    client.create_registered_model(name)
    for number in range(1, count + 1):
        client.create_model_version(name, source=f"s3://models/{name}/{number}", tags=tags or None)
    return name


def ref(name: str, **pinned: str) -> modelrelease.ModelRef:
    return modelrelease.ModelRef.model_validate({"name": name, **pinned})


def test_a_version_resolves_to_its_source_status_and_tags_as_strings(
    client: MlflowClient, registry: mlflow_registry.MlflowRegistry
) -> None:
    name = model_with_versions(client, 2, validation="passed")
    found = registry.fetch_version(ref(name, version="2"))
    assert (found.version, found.uri, found.status) == ("2", f"s3://models/{name}/2", "READY")
    assert found.tags == {"validation": "passed"}


def test_an_alias_resolves_to_the_version_it_points_at_now(
    client: MlflowClient, registry: mlflow_registry.MlflowRegistry
) -> None:
    name = model_with_versions(client, 3)
    client.set_registered_model_alias(name, "champion-candidate", "2")
    assert registry.fetch_version(ref(name, alias="champion-candidate")).version == "2"
    client.set_registered_model_alias(name, "champion-candidate", "3")
    assert registry.fetch_version(ref(name, alias="champion-candidate")).version == "3"


@pytest.mark.parametrize("pinned", [{"version": "9"}, {"alias": "nowhere"}])
def test_what_the_registry_does_not_have_is_a_permanent_error_naming_it(
    client: MlflowClient, registry: mlflow_registry.MlflowRegistry, pinned: dict[str, str]
) -> None:
    name = model_with_versions(client, 1)
    with pytest.raises(errors.PermanentError, match=f"the MLflow registry has no .* of model {name}"):
        registry.fetch_version(ref(name, **pinned))


def test_promotion_moves_the_alias_once_and_tags_the_outcome(
    client: MlflowClient, registry: mlflow_registry.MlflowRegistry
) -> None:
    name = model_with_versions(client, 2)
    client.set_registered_model_alias(name, "production", "1")
    owed = releasestatus.RegistryWrite(
        key="abc.1/registry-promoted", model_name=name, version="2", alias="production"
    )
    assert registry.fetch_settled(owed) is None
    promote = actions.PromoteModel(key=owed.key, model_name=name, version="2", alias="production")
    registry.apply_promotion(promote)
    registry.apply_promotion(promote)  # again, as after a crash: nothing moves twice
    assert str(client.get_model_version_by_alias(name, "production").version) == "2"
    assert client.get_model_version(name, "2").tags[mlflow_registry.OUTCOME_TAG] == "promoted"
    settled = registry.fetch_settled(owed)
    assert settled is not None
    assert settled.message == f"alias 'production' of {name} points at version 2"


def test_a_rollback_tags_the_version_with_its_reason_and_leaves_the_alias_on_stable(
    client: MlflowClient, registry: mlflow_registry.MlflowRegistry
) -> None:
    name = model_with_versions(client, 3)
    client.set_registered_model_alias(name, "production", "2")
    owed = releasestatus.RegistryWrite(key="def.1/registry-rolled-back", model_name=name, version="3")
    assert registry.fetch_settled(owed) is None
    registry.apply_rolled_back_tag(
        actions.TagRolledBack(key=owed.key, model_name=name, version="3", reason="AnalysisFailed")
    )
    assert registry.fetch_settled(owed) is not None
    tags = client.get_model_version(name, "3").tags
    assert (tags[mlflow_registry.OUTCOME_TAG], tags[mlflow_registry.REASON_TAG]) == (
        "rolled_back",
        "AnalysisFailed",
    )
    assert str(client.get_model_version_by_alias(name, "production").version) == "2"


def a_finished_rollout(name: str) -> releasestatus.RolloutRun:
    ended = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    passed = verdicts.MetricResult(
        name="p99 latency", verdict=verdicts.Verdict.PASS, canary=0.21, baseline=0.2, effect=0.05, evidence=40
    )
    failed = passed.model_copy(update={"verdict": verdicts.Verdict.FAIL, "effect": 0.6, "evidence": 250})
    return releasestatus.RolloutRun(
        release="ml/fraud",
        record=releasestatus.RolloutRecord(
            revision="abc123",
            model_version="3",
            from_model_version="2",
            outcome=releasestatus.RolloutOutcome.ROLLED_BACK,
            reason="AnalysisFailed",
            started_at=ended - timedelta(minutes=20),
            ended_at=ended,
        ),
        analysis=tuple(
            releasestatus.StepAnalysis(
                step_index=step,
                run=f"fraud-abc123-{step}",
                template="inference-slo",
                started_at=ended - timedelta(minutes=10 - step),
                finished_at=ended - timedelta(minutes=9 - step),
                verdict=metric.verdict,
                metrics=(metric,),
            )
            for step, metric in ((1, passed), (3, failed))
        ),
    )


def test_a_finished_rollout_is_logged_once_as_a_run_with_its_verdicts_and_judgement(
    client: MlflowClient, registry: mlflow_registry.MlflowRegistry, store: str
) -> None:
    rollout = a_finished_rollout(model_with_versions(client, 3))
    owed = releasestatus.RegistryWrite(key="abc123.1/registry-run", model_name="m", version="3", run=rollout)
    assert registry.fetch_settled(owed) is None
    # A controller killed after starting the run: the next attempt finishes that run, not a second one.
    started = mlflow_runs.start_run(client, store, owed.key, rollout)
    assert registry.fetch_settled(owed) is None, "an unfinished run is not logged yet"
    logged = actions.LogRolloutRun(key=owed.key, run=rollout)
    registry.apply_rollout_run(logged)
    registry.apply_rollout_run(logged)  # and again, as after a crash before status was written
    settled = registry.fetch_settled(owed)
    assert settled is not None
    assert settled.link == f"runs:/{started.info.run_id}"
    experiment = client.get_experiment_by_name(mlflow_runs.EXPERIMENT)
    assert experiment is not None
    [run] = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{mlflow_runs.KEY_TAG}` = '{owed.key}'"
    )
    assert run.info.status == "FINISHED"
    assert run.data.tags["modelrelease.outcome"] == "RolledBack"
    assert run.data.params["from_model_version"] == "2"
    verdict_history = client.get_metric_history(run.info.run_id, "verdict")
    assert [(m.step, m.value) for m in verdict_history] == [(1, 1.0), (3, -1.0)]
    assert [m.value for m in client.get_metric_history(run.info.run_id, "p99 latency/effect")] == [0.05, 0.6]
    folder = pathlib.Path(
        client.download_artifacts(run.info.run_id, mlflow_runs.JUDGEMENT, str(store_dir(store)))
    )
    judgement = json.loads(folder.read_text())
    assert judgement["record"]["reason"] == "AnalysisFailed"
    assert judgement["analysis"][1]["metrics"][0]["evidence"] == 250


def store_dir(store: str) -> pathlib.Path:
    folder = pathlib.Path(store.removeprefix("sqlite:///")).parent / "downloads"
    folder.mkdir(exist_ok=True)
    return folder


def test_an_unreachable_server_is_a_transient_error(tmp_path: pathlib.Path) -> None:
    registry = mlflow_registry.connect("http://127.0.0.1:9", timeout=2)  # nothing listens on port 9
    with pytest.raises(errors.TransientError, match="MLflow registry"):
        registry.fetch_version(ref("fraud", version="1"))


def test_validate_with_a_registry_says_on_the_pr_what_the_rollout_would_wait_for(
    client: MlflowClient, store: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = model_with_versions(client, 2, validation="running")
    release = tmp_path / "release.yaml"
    release.write_text(
        f"""\
apiVersion: modelrelease.dev/v1alpha1
kind: ModelRelease
metadata: {{name: fraud}}
spec:
  model: {{name: {name}, version: "2", requireTags: {{validation: passed}}}}
  serving: {{image: registry.example.com/triton:24.08}}
  strategy: {{canary: {{steps: [{{setWeight: 50}}]}}}}
"""
    )
    assert main.main(["validate", str(release), "--registry", store]) == 1
    said = capsys.readouterr().err
    assert f"release.yaml:1: ModelRelease fraud: spec.model: {name} version 2 lacks the required tags" in said
    assert "validation=passed: the rollout would wait" in said
    client.set_model_version_tag(name, "2", "validation", "passed")
    assert main.main(["validate", str(release), "--registry", store]) == 0
