"""The controller runs in the integration suite as the ServiceAccount deploy/ creates, with exactly
the RBAC deploy/ grants it, and the emulated API server enforces that RBAC as a real one would.

Two checks follow from it, against `kubectl kustomize deploy/` rendered once per process:
- **every call allowed**: a call the Role does not allow is refused (403) and fails the test that
  made it, naming the call (`check_sandbox`, at each sandbox's end);
- **every rule used**: each sandbox writes the calls the controller made to a folder shared by the
  test processes; when the whole integration suite has run, `unused_rules` over all of them must be
  empty (tests/conftest.py reports it and fails the run).
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import subprocess
import sys
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from controller.sandbox import apiserver, cluster, rbac

ROOT = pathlib.Path(__file__).resolve().parents[2]
KUBECTL = pathlib.Path(sys.executable).parent / "kubectl"
ACCOUNT_NAMESPACE = "modelrelease-system"
ACCOUNT_NAME = "modelrelease-controller"
CONTROLLER_USER = rbac.service_account_user(ACCOUNT_NAMESPACE, ACCOUNT_NAME)
CONTROLLER_TOKEN = rbac.service_account_token(ACCOUNT_NAMESPACE, ACCOUNT_NAME)
ACCESS_DIR_VARIABLE = "MODELRELEASE_ACCESS_DIR"  # set by tests/conftest.py for every test process
RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")

Triple = tuple[str, str, str]  # (API group, resource[/subresource], verb)


@functools.cache
def rendered_deploy() -> tuple[dict[str, Any], ...]:
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(ROOT / "deploy")], capture_output=True, text=True, check=True
    )
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def rbac_objects() -> list[dict[str, Any]]:
    return [doc for doc in rendered_deploy() if doc["kind"] in RBAC_KINDS]


TEST_NAMESPACE = "default"


def secret_binding(namespace: str = TEST_NAMESPACE) -> dict[str, Any]:
    """What an administrator adds for a namespace whose GitSources name credentials: deploy/'s
    secret reader bound to the controller there, and nowhere else."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "modelrelease-secrets", "namespace": namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "modelrelease-secret-reader",
        },
        "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT_NAME, "namespace": ACCOUNT_NAMESPACE}],
    }


def install_rbac(sandbox: cluster.SandboxCluster) -> None:
    for obj in [*rbac_objects(), secret_binding()]:
        sandbox.create(obj)


def controller_kubeconfig(admin_kubeconfig: pathlib.Path, path: pathlib.Path) -> pathlib.Path:
    """The same cluster as `admin_kubeconfig`, authenticated as the controller's ServiceAccount."""
    config = yaml.safe_load(admin_kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": CONTROLLER_TOKEN}
    path.write_text(yaml.safe_dump(config))
    return path


def check_sandbox(sandbox: cluster.SandboxCluster) -> None:
    """At a sandbox's end: record the controller's calls; fail if RBAC refused any of them."""
    calls = sandbox.server.access.snapshot(CONTROLLER_USER)
    folder = os.environ.get(ACCESS_DIR_VARIABLE)
    if folder and calls:
        rows = sorted(_triple(call) for call in calls)
        (pathlib.Path(folder) / f"{uuid.uuid4().hex}.json").write_text(json.dumps(rows))
    denied = sorted(_describe(call) for call in sandbox.server.denied.snapshot(CONTROLLER_USER))
    if denied:
        raise AssertionError(
            "the controller made calls deploy/base/rbac.yaml does not allow (refused by the API server):\n  "
            + "\n  ".join(denied)
        )


def recorded_calls(folder: pathlib.Path) -> set[Triple]:
    calls: set[Triple] = set()
    for path in folder.glob("*.json"):
        calls.update((group, resource, verb) for group, resource, verb in json.loads(path.read_text()))
    return calls


def controller_rules(
    objects: Iterable[Mapping[str, Any]], namespace: str = ACCOUNT_NAMESPACE
) -> list[Mapping[str, Any]]:
    """The rules bound to the controller's ServiceAccount for a request in `namespace` (the approver
    role is for people)."""
    policy = rbac.Policy.from_objects(objects)
    return policy.rules_for(CONTROLLER_USER, namespace)


def granted(rules: Iterable[Mapping[str, Any]]) -> set[Triple]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups") or []
        for resource in rule.get("resources") or []
        for verb in rule.get("verbs") or []
    }


def unused_rules(rules: Iterable[Mapping[str, Any]], calls: set[Triple]) -> list[str]:
    return [
        f"{verb} {_resource(group, resource)}" for group, resource, verb in sorted(granted(rules) - calls)
    ]


def wildcards(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    found = []
    for obj in objects:
        for index, rule in enumerate(obj.get("rules") or []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                if "*" in (rule.get(field) or []):
                    found.append(f"{obj['kind']} {obj['metadata']['name']} rules[{index}].{field}")
    return found


def _triple(call: apiserver.Access) -> Triple:
    return (call.group, call.resource, call.verb)


def _resource(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


def _describe(call: apiserver.Access) -> str:
    where = "in a namespace" if call.namespaced else "cluster-wide"
    return f"{call.verb} {_resource(call.group, call.resource)} ({where})"
