"""The controller runs in the cluster suite as the ServiceAccount deploy/ creates, with exactly the
RBAC deploy/ grants it, and the real API server's authorizer enforces it.

Two checks follow from it, against `kubectl kustomize deploy/` rendered once per process:
- **every call allowed**: a call RBAC refused fails the test that made it, naming the call (read
  from the API server's audit log at each test's end: `harness.World.close`);
- **every rule used**: each test writes the calls the controller made to a folder shared by the
  test processes; when the whole suite has run, `unused_rules` over all of them must be empty
  (tests/conftest.py reports it and fails the run).
"""

from __future__ import annotations

import functools
import json
import pathlib
import subprocess
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
KUBECTL = pathlib.Path(sys.executable).parent / "kubectl"
ACCOUNT_NAMESPACE = "modelrelease-system"
ACCOUNT_NAME = "modelrelease-controller"
CONTROLLER_USER = f"system:serviceaccount:{ACCOUNT_NAMESPACE}:{ACCOUNT_NAME}"
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
    objects = list(objects)
    roles = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects}
    rules: list[Mapping[str, Any]] = []
    for binding in objects:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding") or not _binds_controller(binding):
            continue
        if binding["kind"] == "RoleBinding" and binding["metadata"].get("namespace") != namespace:
            continue
        ref = binding["roleRef"]
        where = "" if ref["kind"] == "ClusterRole" else binding["metadata"]["namespace"]
        rules.extend(roles.get((ref["kind"], where, ref["name"]), {}).get("rules") or [])
    return rules


def _binds_controller(binding: Mapping[str, Any]) -> bool:
    return any(
        subject.get("kind") == "ServiceAccount"
        and (subject.get("namespace"), subject.get("name")) == (ACCOUNT_NAMESPACE, ACCOUNT_NAME)
        for subject in binding.get("subjects") or []
    )


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


def _resource(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource
