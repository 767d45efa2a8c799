"""Authentication and RBAC in the emulated cluster, as a real API server decides them.

A request with no credentials is the administrator (the tests, kubectl in the sandbox). A bearer
token `sandbox-sa:<namespace>:<name>` authenticates as that ServiceAccount — the sandbox's stand-in
for a projected token, so a process can run with exactly the permissions deploy/ grants it. Any
other token is refused (401). An authenticated user may do what the cluster's Roles, ClusterRoles
and their bindings allow, with Kubernetes' semantics: a ClusterRoleBinding grants everywhere, a
RoleBinding only in its namespace, a cluster-wide list or watch needs a ClusterRoleBinding, a rule
with resourceNames allows only requests that name one of them (so never a create or a list).
Aggregated ClusterRoles and non-resource URLs are not emulated (docs/testing.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

GROUP = "rbac.authorization.k8s.io"
TOKEN_PREFIX = "sandbox-sa:"
Obj = Mapping[str, Any]


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def service_account_token(namespace: str, name: str) -> str:
    return f"{TOKEN_PREFIX}{namespace}:{name}"


class UnauthenticatedError(Exception):
    """A token the cluster did not issue."""


def authenticate(authorization: str | None) -> str | None:
    """The user a request's Authorization header names; None for the administrator (no credentials)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX):
        raise UnauthenticatedError("invalid bearer token")
    namespace, sep, name = token.removeprefix(TOKEN_PREFIX).partition(":")
    if not sep or not namespace or not name:
        raise UnauthenticatedError("invalid bearer token")
    return service_account_user(namespace, name)


@attrs.frozen
class Request:
    """One call as RBAC sees it."""

    verb: str
    group: str
    resource: str  # plural, with "/<subresource>"
    namespace: str | None  # None: cluster-wide (a cluster-scoped kind, or across namespaces)
    name: str | None = None


def rule_allows(rule: Obj, request: Request) -> bool:
    def matches(values: Iterable[str], wanted: str) -> bool:
        values = list(values)
        return "*" in values or wanted in values

    if not matches(rule.get("verbs") or [], request.verb):
        return False
    if not matches(rule.get("apiGroups") or [], request.group):
        return False
    # As Kubernetes' ResourceMatches: "*" matches every resource and subresource, "*/scale" the
    # scale subresource of any resource; a rule with resourceNames matches only requests by name.
    resources = list(rule.get("resources") or [])
    _, _, sub = request.resource.partition("/")
    if not ("*" in resources or request.resource in resources or (sub and f"*/{sub}" in resources)):
        return False
    names = rule.get("resourceNames") or []
    return not names or (request.name is not None and request.name in names)


def _binds(binding: Obj, user: str) -> bool:
    for subject in binding.get("subjects") or []:
        kind = subject.get("kind")
        if kind == "User" and subject.get("name") == user:
            return True
        account = service_account_user(str(subject.get("namespace", "")), str(subject.get("name")))
        if kind == "ServiceAccount" and account == user:
            return True
    return False


@attrs.frozen
class Policy:
    """The RBAC objects of a cluster at one moment."""

    roles: Mapping[tuple[str, str], Obj]  # (namespace, name)
    cluster_roles: Mapping[str, Obj]
    role_bindings: tuple[Obj, ...]
    cluster_role_bindings: tuple[Obj, ...]

    @classmethod
    def from_objects(cls, objects: Iterable[Obj]) -> Policy:
        roles: dict[tuple[str, str], Obj] = {}
        cluster_roles: dict[str, Obj] = {}
        role_bindings: list[Obj] = []
        cluster_role_bindings: list[Obj] = []
        for obj in objects:
            kind, meta = obj.get("kind"), obj.get("metadata") or {}
            if kind == "Role":
                roles[(meta.get("namespace", ""), meta["name"])] = obj
            elif kind == "ClusterRole":
                cluster_roles[meta["name"]] = obj
            elif kind == "RoleBinding":
                role_bindings.append(obj)
            elif kind == "ClusterRoleBinding":
                cluster_role_bindings.append(obj)
        return cls(roles, cluster_roles, tuple(role_bindings), tuple(cluster_role_bindings))

    def rules_for(self, user: str, namespace: str | None) -> list[Obj]:
        """The rules that apply to `user` for a request in `namespace` (None: cluster-wide)."""
        rules: list[Obj] = []
        for binding in self.cluster_role_bindings:
            if _binds(binding, user):
                role = self.cluster_roles.get((binding.get("roleRef") or {}).get("name", ""))
                rules.extend((role or {}).get("rules") or [])
        if namespace is None:
            return rules
        for binding in self.role_bindings:
            if binding["metadata"].get("namespace") != namespace or not _binds(binding, user):
                continue
            ref = binding.get("roleRef") or {}
            role = (
                self.cluster_roles.get(ref.get("name", ""))
                if ref.get("kind") == "ClusterRole"
                else self.roles.get((namespace, ref.get("name", "")))
            )
            rules.extend((role or {}).get("rules") or [])
        return rules

    def allows(self, user: str, request: Request) -> bool:
        return any(rule_allows(rule, request) for rule in self.rules_for(user, request.namespace))


def describe_denial(user: str, request: Request) -> str:
    """Kubernetes' wording: `pods is forbidden: User "…" cannot list resource "pods" in API group "" …`."""
    base, _, sub = request.resource.partition("/")
    what = f'resource "{base}"' + (f' subresource "{sub}"' if sub else "")
    where = f'in the namespace "{request.namespace}"' if request.namespace else "at the cluster scope"
    return (
        f'{request.resource} is forbidden: User "{user}" cannot {request.verb} {what} '
        f'in API group "{request.group}" {where}'
    )
