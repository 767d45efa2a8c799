"""A GitSource sync's decisions, without a repository or an API server (`syncplan`, the pure half)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controller import manifests
from controller.adapters import labels
from controller.adapters.git import syncplan
from controller.resources import gitsource, kinds, meta

COMMIT = "c0ffee" * 7
NOW = datetime(2026, 12, 3, tzinfo=UTC)
KEY = ("ModelRelease", "ranker")


def _source(**spec: Any) -> kinds.GitSource:
    return kinds.GitSource.model_validate(
        {
            "metadata": {"name": "releases", "namespace": "ml", "generation": 3},
            "spec": {
                "url": "https://git.example.com/ml/releases.git",
                "paths": ["models"],
                "prune": True,
                **spec,
            },
        }
    )


def _manifest(file: str = "models/ranker.yaml") -> manifests.Manifest:
    return manifests.Manifest(source=file, line=1, resource=_source())  # the resource is not read here


BODY = {
    "apiVersion": meta.API_VERSION,
    "kind": "ModelRelease",
    "metadata": {"name": "ranker"},
    "spec": {"x": 1},
}


def _live(
    source: str | None = "releases", spec: dict[str, Any] | None = None, commit: str = COMMIT
) -> dict[str, Any]:
    owned = {labels.GIT_SOURCE: source} if source else {}
    annotations = {
        labels.GIT_SOURCE: "releases",
        labels.GIT_PATH: "models/ranker.yaml",
        labels.GIT_COMMIT: commit,
    }
    return {"metadata": {"labels": owned, "annotations": annotations}, "spec": spec or {"x": 1}}


def test_an_object_git_defines_and_the_cluster_lacks_is_created_labelled_as_this_sources() -> None:
    action = syncplan.to_apply(_source(), KEY, _manifest(), BODY, COMMIT, None)
    assert isinstance(action, syncplan.Create)
    metadata = action.body["metadata"]
    assert metadata["namespace"] == "ml"
    assert metadata["labels"] == {labels.GIT_SOURCE: "releases"}
    assert metadata["annotations"][labels.GIT_COMMIT] == COMMIT


def test_an_object_another_hand_created_is_left_alone_and_the_problem_says_how_to_hand_it_over() -> None:
    action = syncplan.to_apply(_source(), KEY, _manifest(), BODY, COMMIT, _live(source=None))
    assert isinstance(action, syncplan.Leave)
    assert action.problem is not None
    assert "ModelRelease/ranker exists and was not created by GitSource releases" in action.problem.message
    assert f"{labels.GIT_SOURCE}=releases" in action.problem.message


def test_an_object_as_git_says_but_for_the_commit_it_came_from_is_not_written() -> None:
    action = syncplan.to_apply(_source(), KEY, _manifest(), BODY, COMMIT, _live(commit="0" * 40))
    assert action == syncplan.Leave()


def test_a_changed_spec_is_a_merge_patch_of_what_changed_and_nulls_what_git_removed() -> None:
    live = _live(spec={"x": 2, "gone": True})
    action = syncplan.to_apply(_source(), KEY, _manifest(), BODY, COMMIT, live)
    assert action == syncplan.Patch({"spec": {"x": 1, "gone": None}}, spec_changed=True)


def test_a_release_whose_file_leaves_out_its_replicas_keeps_the_size_an_autoscaler_gave_it() -> None:
    autoscaled = {**BODY, "spec": {"serving": {"image": "vllm:0.6"}}}
    live = _live(spec={"serving": {"image": "vllm:0.5", "replicas": 7}})
    action = syncplan.to_apply(_source(), KEY, _manifest(), autoscaled, COMMIT, live)
    assert action == syncplan.Patch({"spec": {"serving": {"image": "vllm:0.6"}}}, spec_changed=True)
    pinned = {**BODY, "spec": {"serving": {"image": "vllm:0.6", "replicas": 4}}}
    action = syncplan.to_apply(_source(), KEY, _manifest(), pinned, COMMIT, live)
    assert action == syncplan.Patch(
        {"spec": {"serving": {"image": "vllm:0.6", "replicas": 4}}}, spec_changed=True
    )


def test_an_object_whose_file_is_quarantined_now_is_never_pruned() -> None:
    outcome = syncplan.SyncOutcome(commit=COMMIT)
    managed: dict[syncplan.Key, str | None] = {
        KEY: "models/ranker.yaml",
        ("ModelRelease", "fraud"): "models/f.yaml",
    }
    plan = syncplan.to_prune(_source().spec, [], managed, {"models/ranker.yaml"}, outcome)
    assert plan.gone == (("ModelRelease", "fraud"),)


def test_a_prune_is_refused_while_a_configured_path_is_missing_and_never_done_with_prune_off() -> None:
    managed: dict[syncplan.Key, str | None] = {
        (("ModelRelease", f"m{n}")): f"models/{n}.yaml" for n in range(4)
    }
    missing = syncplan.SyncOutcome(commit=COMMIT, missing_paths=["modles"])
    refused = syncplan.to_prune(_source().spec, [("ModelRelease", "m0")], managed, set(), missing)
    assert not refused.delete
    assert refused.refused is not None
    assert "modles" in refused.refused
    fine = syncplan.SyncOutcome(commit=COMMIT)
    off = syncplan.to_prune(_source(prune=False).spec, [("ModelRelease", "m0")], managed, set(), fine)
    assert not off.delete
    assert off.refused is None
    assert len(off.gone) == 3
    on = syncplan.to_prune(_source(maxPrunePercent=100).spec, [("ModelRelease", "m0")], managed, set(), fine)
    assert on.delete
    assert len(on.gone) == 3


def test_a_failed_sync_keeps_what_was_synced_turns_ready_false_and_says_why_once() -> None:
    synced, _ = syncplan.concluded(
        _source(), syncplan.SyncOutcome(commit=COMMIT, applied=["ModelRelease/ranker"]), NOW, None
    )
    source = _source().model_copy(update={"status": synced})
    status, said = syncplan.failed(source, "sync failed: the remote did not answer", NOW, "delivery-1")
    assert status.applied == ("ModelRelease/ranker",)
    assert status.observed_commit == COMMIT
    (ready,) = status.conditions
    assert (ready.status, ready.reason) == (meta.ConditionStatus.FALSE, "SyncFailed")
    assert status.handled_sync_request == "delivery-1"
    assert [(e.type, e.reason) for e in said] == [("Warning", "SyncFailed")]


def test_a_sync_with_a_quarantined_file_says_each_problem_keyed_by_commit_and_place() -> None:
    problem = gitsource.SyncProblem(file="models/bad.yaml", line=4, message="spec.model: required")
    outcome = syncplan.SyncOutcome(commit=COMMIT, applied=["ModelRelease/ranker"], problems=[problem])
    status, said = syncplan.concluded(_source(), outcome, NOW, None)
    assert status.conditions[0].reason == "ManifestsQuarantined"
    assert said[0] == syncplan.SourceEvent(
        "Warning",
        "ManifestInvalid",
        "models/bad.yaml:4: spec.model: required",
        (COMMIT, "models/bad.yaml:4", "spec.model: required"),
    )
    assert said[1].reason == "Synced"
