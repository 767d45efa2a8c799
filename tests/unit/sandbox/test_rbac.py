"""RBAC in the emulated API server, with Kubernetes' semantics where the suite relies on them."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from controller import errors
from controller.adapters import kubeapi
from controller.sandbox import cluster, rbac

USER = rbac.service_account_user("ops", "bot")
CONFIGMAPS = "/api/v1/namespaces/{ns}/configmaps"


def _role(kind: str, name: str, rules: list[dict[str, Any]], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": rules}


def _binding(kind: str, role_kind: str, role: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"{role}-binding", **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "ops"}],
    }


READ_CONFIGMAPS = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]


def test_a_role_binding_grants_only_in_its_namespace_and_a_cluster_wide_list_needs_a_cluster_binding() -> (
    None
):
    policy = rbac.Policy.from_objects(
        [
            _role("ClusterRole", "reader", READ_CONFIGMAPS),
            _binding("RoleBinding", "ClusterRole", "reader", "ml"),
        ]
    )
    assert policy.allows(USER, rbac.Request("list", "", "configmaps", "ml"))
    assert not policy.allows(USER, rbac.Request("list", "", "configmaps", "other"))
    assert not policy.allows(USER, rbac.Request("list", "", "configmaps", None))
    assert not policy.allows(USER, rbac.Request("create", "", "configmaps", "ml"))
    wide = rbac.Policy.from_objects(
        [
            _role("ClusterRole", "reader", READ_CONFIGMAPS),
            _binding("ClusterRoleBinding", "ClusterRole", "reader"),
        ]
    )
    assert wide.allows(USER, rbac.Request("list", "", "configmaps", None))
    assert not wide.allows(
        "system:serviceaccount:ops:someone-else", rbac.Request("list", "", "configmaps", None)
    )


def test_subresources_and_resource_names_must_be_granted_by_name() -> None:
    rules = [
        {"apiGroups": ["modelrelease.dev"], "resources": ["modelreleases"], "verbs": ["patch"]},
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "verbs": ["get", "list"],
            "resourceNames": ["knobs"],
        },
    ]
    policy = rbac.Policy.from_objects(
        [_role("ClusterRole", "r", rules), _binding("ClusterRoleBinding", "ClusterRole", "r")]
    )
    assert policy.allows(USER, rbac.Request("patch", "modelrelease.dev", "modelreleases", "ml", "a"))
    assert not policy.allows(
        USER, rbac.Request("patch", "modelrelease.dev", "modelreleases/status", "ml", "a")
    )
    assert policy.allows(USER, rbac.Request("get", "", "configmaps", "ml", "knobs"))
    assert not policy.allows(USER, rbac.Request("get", "", "configmaps", "ml", "other"))
    assert not policy.allows(USER, rbac.Request("list", "", "configmaps", "ml"))


def test_wildcard_resources_match_as_kubernetes_matches_them() -> None:
    rules = [
        {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["*"], "verbs": ["get"]},
    ]
    policy = rbac.Policy.from_objects(
        [_role("ClusterRole", "r", rules), _binding("ClusterRoleBinding", "ClusterRole", "r")]
    )
    assert policy.allows(USER, rbac.Request("patch", "apps", "deployments/scale", "ml", "a"))
    assert not policy.allows(USER, rbac.Request("patch", "apps", "deployments", "ml", "a"))
    assert policy.allows(USER, rbac.Request("get", "", "pods/log", "ml", "a"))
    assert policy.allows(USER, rbac.Request("get", "", "secrets", "ml", "a"))


@pytest.fixture
def sandbox() -> Iterator[cluster.SandboxCluster]:
    with cluster.SandboxCluster(seed=5) as running:
        running.create(_role("Role", "reader", READ_CONFIGMAPS, "ml"))
        running.create(_binding("RoleBinding", "Role", "reader", "ml"))
        yield running


def _as(sandbox: cluster.SandboxCluster, tmp_path: pathlib.Path, token: str) -> kubeapi.KubeApi:
    path = sandbox.write_kubeconfig(tmp_path / "admin")
    config = yaml.safe_load(path.read_text())
    config["users"][0]["user"] = {"token": token}
    (tmp_path / "user").write_text(yaml.safe_dump(config))
    return kubeapi.KubeApi.from_kubeconfig(str(tmp_path / "user"), timeout=5)


def test_over_http_a_service_account_token_gets_its_roles_and_a_refusal_says_what_and_where(
    sandbox: cluster.SandboxCluster, tmp_path: pathlib.Path
) -> None:
    api = _as(sandbox, tmp_path, rbac.service_account_token("ops", "bot"))
    assert api.get(CONFIGMAPS.format(ns="ml"))["items"] == []
    with pytest.raises(errors.ForbiddenError) as refused:
        api.create(
            CONFIGMAPS.format(ns="ml"), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
        )
    assert ": 403 " in str(refused.value)
    assert f'User "{USER}" cannot create resource "configmaps" in API group "" in the namespace "ml"' in str(
        refused.value
    )
    assert [(a.verb, a.resource) for a in sandbox.server.denied.snapshot(USER)] == [("create", "configmaps")]


def test_a_token_the_cluster_did_not_issue_is_unauthorized(
    sandbox: cluster.SandboxCluster, tmp_path: pathlib.Path
) -> None:
    api = _as(sandbox, tmp_path, "stolen-or-made-up")
    with pytest.raises(errors.ForbiddenError) as refused:
        api.get(CONFIGMAPS.format(ns="ml"))
    assert ": 401 " in str(refused.value)
