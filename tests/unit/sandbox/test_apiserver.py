"""The emulated API server's semantics, checked over HTTP with the kubernetes client's transport."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from controller import errors
from controller.adapters import kubeapi
from controller.sandbox import cluster, faults
from tests.integration import harness

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"  # nothing but the test writes these: no simulator races
RELEASES = "/apis/modelrelease.dev/v1alpha1/namespaces/default/modelreleases"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.SandboxCluster]:
    with cluster.SandboxCluster(seed=3) as running:
        running.install_crds(sorted((harness.ROOT / "crds").glob("*.yaml")))
        yield running


@pytest.fixture(scope="module")
def api(sandbox: cluster.SandboxCluster, tmp_path_factory: pytest.TempPathFactory) -> kubeapi.KubeApi:
    path = sandbox.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
    return kubeapi.KubeApi.from_kubeconfig(str(path), timeout=5)


def deployment(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }


def labelled(obj: dict[str, Any], **labels: str) -> dict[str, Any]:
    obj["metadata"]["labels"] = labels
    return obj


def test_create_answers_201_with_server_set_metadata(
    sandbox: cluster.SandboxCluster, api: kubeapi.KubeApi
) -> None:
    created = api.create(DEPLOYMENTS, deployment("meta"))
    meta = created["metadata"]
    assert {"uid", "creationTimestamp", "resourceVersion"} <= meta.keys()
    assert (meta["namespace"], meta["generation"]) == ("default", 1)
    (record,) = [w for w in sandbox.store.writes if w.verb == "create" and w.name == "meta"]
    assert record.code == 201


def test_duplicate_create_is_409_and_changes_nothing(api: kubeapi.KubeApi) -> None:
    first = api.create(CONFIGMAPS, configmap("twice", a="1"))
    with pytest.raises(errors.ConflictError, match="already exists"):
        api.create(CONFIGMAPS, configmap("twice", a="2"))
    assert api.get(f"{CONFIGMAPS}/twice") == first


def test_generation_moves_on_spec_changes_only_and_resource_version_on_every_change(
    api: kubeapi.KubeApi,
) -> None:
    api.create(DEPLOYMENTS, deployment("gen"))
    labelled = api.merge_patch(f"{DEPLOYMENTS}/gen", {"metadata": {"labels": {"x": "y"}}})
    scaled = api.merge_patch(f"{DEPLOYMENTS}/gen", {"spec": {"replicas": 3}})
    assert (labelled["metadata"]["generation"], scaled["metadata"]["generation"]) == (1, 2)
    assert int(scaled["metadata"]["resourceVersion"]) > int(labelled["metadata"]["resourceVersion"])


def test_a_stale_resource_version_is_a_409_conflict(api: kubeapi.KubeApi) -> None:
    old = api.create(DEPLOYMENTS, deployment("stale"))
    api.merge_patch(f"{DEPLOYMENTS}/stale", {"spec": {"replicas": 1}})
    with pytest.raises(errors.ConflictError, match="has been modified"):
        api.merge_patch(
            f"{DEPLOYMENTS}/stale",
            {"metadata": {"resourceVersion": old["metadata"]["resourceVersion"]}, "spec": {"replicas": 2}},
        )
    with pytest.raises(errors.ConflictError):
        api.request("PUT", f"{DEPLOYMENTS}/stale", body=old)


def test_put_replaces_the_object(api: kubeapi.KubeApi) -> None:
    current = api.create(CONFIGMAPS, configmap("put", a="1", b="2"))
    current["data"] = {"c": "3"}
    replaced = api.request("PUT", f"{CONFIGMAPS}/put", body=current)
    assert replaced["data"] == {"c": "3"}
    assert replaced["metadata"]["uid"] == current["metadata"]["uid"]


def test_json_patch_with_a_failing_test_op_is_422(api: kubeapi.KubeApi) -> None:
    api.create(DEPLOYMENTS, deployment("jp"))
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 9},
        {"op": "replace", "path": "/spec/replicas", "value": 1},
    ]
    with pytest.raises(errors.InvalidError, match="422"):
        api.request("PATCH", f"{DEPLOYMENTS}/jp", body=ops, content_type=kubeapi.JSON_PATCH)
    ok = [
        {"op": "test", "path": "/spec/replicas", "value": 0},
        {"op": "replace", "path": "/spec/replicas", "value": 1},
    ]
    assert (
        api.request("PATCH", f"{DEPLOYMENTS}/jp", body=ok, content_type=kubeapi.JSON_PATCH)["spec"][
            "replicas"
        ]
        == 1
    )


def test_merge_patch_null_deletes_and_strategic_merge_merges_containers_by_name(api: kubeapi.KubeApi) -> None:
    api.create(DEPLOYMENTS, deployment("smp", team="a"))
    dropped = api.merge_patch(f"{DEPLOYMENTS}/smp", {"metadata": {"labels": {"team": None}}})
    assert "team" not in dropped["metadata"]["labels"]
    sidecar = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "y"}]}}}}
    merged = api.request(
        "PATCH", f"{DEPLOYMENTS}/smp", body=sidecar, content_type="application/strategic-merge-patch+json"
    )
    assert [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["c", "side"]
    api.create(RELEASES, harness.release_body("smp"))
    for refused in ("application/apply-patch+yaml", "application/strategic-merge-patch+json"):
        with pytest.raises(errors.InvalidError, match="415"):
            api.request("PATCH", f"{RELEASES}/smp", body={}, content_type=refused)


def test_status_subresource_is_isolated_from_the_main_resource(api: kubeapi.KubeApi) -> None:
    api.create(RELEASES, harness.release_body("iso"))
    api.merge_patch(f"{RELEASES}/iso/status", {"status": {"phase": "Progressing"}, "spec": {"serving": None}})
    api.merge_patch(f"{RELEASES}/iso", {"status": {"phase": "Failed"}})
    current = api.get(f"{RELEASES}/iso")
    assert current["status"] == {"phase": "Progressing"}
    assert "serving" in current["spec"]


def test_label_and_field_selectors_filter_lists(api: kubeapi.KubeApi) -> None:
    api.create(DEPLOYMENTS, deployment("sel-a", tier="web", env="prod"))
    api.create(DEPLOYMENTS, deployment("sel-b", tier="db", env="prod"))
    names = lambda q: [d["metadata"]["name"] for d in api.get(DEPLOYMENTS, q)["items"]]  # noqa: E731
    assert names({"labelSelector": "env=prod,tier!=db"}) == ["sel-a"]
    assert names({"labelSelector": "tier in (web,db)"}) == ["sel-a", "sel-b"]
    assert names({"labelSelector": "env,!legacy", "fieldSelector": "metadata.name=sel-b"}) == ["sel-b"]


def test_generate_name_gets_a_unique_suffix(api: kubeapi.KubeApi) -> None:
    body = deployment("")
    body["metadata"] = {"generateName": "gen-"}
    first, second = api.create(DEPLOYMENTS, body), api.create(DEPLOYMENTS, body)
    assert first["metadata"]["name"].startswith("gen-")
    assert first["metadata"]["name"] != second["metadata"]["name"]


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {}}, "data": data}


def _watch(sandbox: cluster.SandboxCluster, query: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{sandbox.url}{CONFIGMAPS}?watch=true&{query}", timeout=10) as response:
        return [json.loads(line) for line in response.read().splitlines() if line.strip()]


def test_a_watch_from_a_resource_version_replays_every_later_event_and_ends_at_its_timeout(
    sandbox: cluster.SandboxCluster, api: kubeapi.KubeApi
) -> None:
    start = api.create(CONFIGMAPS, labelled(configmap("w1"), watch="yes"))["metadata"]["resourceVersion"]
    api.merge_patch(f"{CONFIGMAPS}/w1", {"data": {"a": "1"}})
    api.create(CONFIGMAPS, labelled(configmap("w2"), watch="yes"))
    api.delete(f"{CONFIGMAPS}/w2")
    events = _watch(sandbox, f"resourceVersion={start}&timeoutSeconds=1&labelSelector=watch%3Dyes")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("MODIFIED", "w1"),
        ("ADDED", "w2"),
        ("DELETED", "w2"),
    ]


def test_a_watch_loses_no_event_written_while_it_streams(
    sandbox: cluster.SandboxCluster, api: kubeapi.KubeApi
) -> None:
    start = api.get(CONFIGMAPS)["metadata"]["resourceVersion"]
    seen: list[list[dict[str, Any]]] = []
    reader = threading.Thread(
        target=lambda: seen.append(
            _watch(sandbox, f"resourceVersion={start}&timeoutSeconds=2&labelSelector=burst%3Dyes")
        )
    )
    reader.start()
    for index in range(30):
        api.create(CONFIGMAPS, labelled(configmap(f"burst-{index}"), burst="yes"))
    reader.join(timeout=10)
    assert [e["object"]["metadata"]["name"] for e in seen[0]] == [f"burst-{i}" for i in range(30)]


def test_a_label_change_out_of_a_watched_selector_is_seen_as_deleted(
    sandbox: cluster.SandboxCluster, api: kubeapi.KubeApi
) -> None:
    start = api.create(CONFIGMAPS, labelled(configmap("leaver"), group="in"))["metadata"]["resourceVersion"]
    api.merge_patch(f"{CONFIGMAPS}/leaver", {"metadata": {"labels": {"group": "out"}}})
    events = _watch(sandbox, f"resourceVersion={int(start) - 1}&timeoutSeconds=1&labelSelector=group%3Din")
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


def test_discovery_serves_registered_crds_with_status_subresources(sandbox: cluster.SandboxCluster) -> None:
    with urllib.request.urlopen(f"{sandbox.url}/apis/modelrelease.dev/v1alpha1", timeout=5) as response:
        resources = {r["name"]: r for r in json.load(response)["resources"]}
    assert resources["modelreleases"]["shortNames"] == ["mrel"]
    assert "modelreleases/status" in resources


def test_a_table_is_built_from_the_crd_printer_columns(
    sandbox: cluster.SandboxCluster, api: kubeapi.KubeApi
) -> None:
    api.create(RELEASES, harness.release_body("tabled"))
    api.merge_patch(f"{RELEASES}/tabled/status", {"status": {"phase": "Paused", "canaryWeight": 25}})
    request = urllib.request.Request(
        f"{sandbox.url}{RELEASES}", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        table = json.load(response)
    columns = [c["name"] for c in table["columnDefinitions"]]
    row = dict(
        zip(columns, next(r["cells"] for r in table["rows"] if r["cells"][0] == "tabled"), strict=True)
    )
    assert (row["Phase"], row["Weight"]) == ("Paused", 25)


def test_injected_faults_fail_exactly_the_matching_requests_then_stop(
    sandbox: cluster.SandboxCluster, api: kubeapi.KubeApi
) -> None:
    api.create(DEPLOYMENTS, deployment("faulty"))
    rule = sandbox.faults.add(
        faults.FaultRule(times=2, code=500, verb="get", plural="deployments", name="faulty")
    )
    for _ in range(2):
        with pytest.raises(errors.UnavailableError, match="500"):
            api.get(f"{DEPLOYMENTS}/faulty")
    assert api.get(f"{DEPLOYMENTS}/faulty")["metadata"]["name"] == "faulty"
    assert rule.hits == 2


def test_a_hanging_fault_looks_like_a_timeout_to_the_client(
    sandbox: cluster.SandboxCluster, api: kubeapi.KubeApi
) -> None:
    impatient = kubeapi.KubeApi(api._client, timeout=1.0)
    sandbox.faults.add(faults.FaultRule(times=1, hang=3.0, verb="list", plural="configmaps"))
    # "timed out" is the client's own timeout, not the 504 the server sends after the hang.
    with pytest.raises(errors.UnavailableError, match="timed out"):
        impatient.get("/api/v1/namespaces/default/configmaps")
