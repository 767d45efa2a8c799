"""Emulator semantics added for what a real API server refuses, collects and forgets."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from controller import errors
from controller.adapters import kubeapi
from controller.sandbox import apiserver, cluster
from tests.integration import harness

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
SERVICES = "/api/v1/namespaces/default/services"


@pytest.fixture
def sandbox() -> Iterator[cluster.SandboxCluster]:
    with cluster.SandboxCluster(seed=5) as running:
        running.install_crds(sorted((harness.ROOT / "crds").glob("*.yaml")))
        yield running


@pytest.fixture
def api(sandbox: cluster.SandboxCluster, tmp_path: Any) -> kubeapi.KubeApi:
    return kubeapi.KubeApi.from_kubeconfig(str(sandbox.write_kubeconfig(tmp_path / "config")), timeout=5)


def _service(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]},
    }


def test_names_and_label_values_the_api_server_refuses_are_refused_with_422(api: kubeapi.KubeApi) -> None:
    with pytest.raises(errors.InvalidError, match="must be no more than 63 characters"):
        api.create(SERVICES, _service("s" * 64))
    with pytest.raises(errors.InvalidError, match="DNS-1035"):
        api.create(SERVICES, _service("1starts-with-a-digit"))
    with pytest.raises(errors.InvalidError, match="must be no more than 63 characters"):
        api.create(CONFIGMAPS, {"metadata": {"name": "c", "labels": {"release": "r" * 64}}})
    api.create(CONFIGMAPS, {"metadata": {"name": "a.dotted.name-is-a-subdomain"}})


def test_a_custom_resource_outside_its_crd_schema_is_refused_naming_the_field(api: kubeapi.KubeApi) -> None:
    body = {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "Approval",
        "metadata": {"name": "maybe"},
        "spec": {"release": "r", "revision": "abc", "step": 1, "decision": "maybe", "by": "me"},
    }
    with pytest.raises(errors.InvalidError, match=r'spec\.decision: Unsupported value: "maybe"'):
        api.create("/apis/modelrelease.dev/v1alpha1/namespaces/default/approvals", body)


def test_orphan_propagation_removes_owner_references_then_the_owner(
    sandbox: cluster.SandboxCluster, api: kubeapi.KubeApi
) -> None:
    owner = api.create(CONFIGMAPS, {"metadata": {"name": "owner"}})
    reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    api.create(CONFIGMAPS, {"metadata": {"name": "dependent", "ownerReferences": [reference]}})
    api.delete(f"{CONFIGMAPS}/owner", {"propagationPolicy": "Orphan"})
    sandbox.wait_until(
        lambda: "owner" not in {c["metadata"]["name"] for c in sandbox.store.objects("configmaps")},
        timeout=10,
        what="owner deleted once its dependents are orphaned",
    )
    assert api.get(f"{CONFIGMAPS}/dependent")["metadata"].get("ownerReferences") is None


def test_a_watch_from_compacted_history_gets_410_expired(tmp_path: Any) -> None:
    with cluster.SandboxCluster(seed=5, max_watch_events=10, max_write_records=10) as small:
        api = kubeapi.KubeApi.from_kubeconfig(str(small.write_kubeconfig(tmp_path / "config")), timeout=5)
        start = api.create(CONFIGMAPS, {"metadata": {"name": "c0"}})["metadata"]["resourceVersion"]
        for index in range(1, 30):
            api.create(CONFIGMAPS, {"metadata": {"name": f"c{index}"}})
        url = f"{small.url}{CONFIGMAPS}?watch=true&resourceVersion={start}&timeoutSeconds=1"
        with urllib.request.urlopen(url, timeout=10) as response:
            events = [json.loads(line) for line in response.read().splitlines() if line.strip()]
        sizes = small.store.history_sizes()
    assert (sizes["watch_events"], sizes["writes"]) == (10, 10)  # 30 writes, the last 10 kept
    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in events] == [
        ("ERROR", 410, "Expired")
    ]


def test_the_sandbox_keeps_bounded_history_however_many_requests_it_serves(
    sandbox: cluster.SandboxCluster, api: kubeapi.KubeApi
) -> None:
    """kmock's own request log stays at ≤ KEPT_REQUESTS + 1 entries while the requests served grow
    (it kept every request: 2.4 GB after 15 minutes); store history is capped (test above)."""
    api.create(CONFIGMAPS, {"metadata": {"name": "busy"}})
    for index in range(1500):
        api.merge_patch(f"{CONFIGMAPS}/busy", {"data": {"n": str(index)}})
        api.get(f"{CONFIGMAPS}/busy")
    assert sandbox.server.requests.total() >= 3000
    assert len(sandbox.server._requests) <= apiserver.KEPT_REQUESTS + 1


def test_the_server_records_each_kind_of_call_as_rbac_sees_it_once_however_often_it_is_made(
    sandbox: cluster.SandboxCluster, api: kubeapi.KubeApi
) -> None:
    releases = "/apis/modelrelease.dev/v1alpha1/namespaces/default/modelreleases"
    api.create(CONFIGMAPS, {"metadata": {"name": "seen"}})
    for index in range(20):
        api.merge_patch(f"{CONFIGMAPS}/seen", {"data": {"n": str(index)}})
    api.get("/apis/modelrelease.dev/v1alpha1/modelreleases")  # across namespaces
    with pytest.raises(errors.NotFoundError):
        api.merge_patch(f"{releases}/ghost/status", {"status": {}})
    calls = {(a.verb, a.group, a.resource, a.namespaced) for a in sandbox.server.access.snapshot()}
    assert {
        ("create", "", "configmaps", True),
        ("patch", "", "configmaps", True),
        ("list", "modelrelease.dev", "modelreleases", False),
        ("patch", "modelrelease.dev", "modelreleases/status", True),
    } <= calls
    assert len([c for c in calls if c[2] == "configmaps"]) == 2, "twenty patches are one kind of call"
