"""Which resources the emulated cluster serves: built-in kinds, and kinds learned from POSTed CRDs."""

from __future__ import annotations

import dataclasses
from typing import Any

from controller.sandbox import errors

TypeKey = tuple[str, str, str]  # group, version, plural

_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclasses.dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    singular: str
    namespaced: bool = True
    status_subresource: bool = False
    built_in: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    printer_columns: tuple[dict[str, Any], ...] = ()
    # The CRD version's openAPIV3Schema, which every write of a custom resource must satisfy.
    schema: dict[str, Any] | None = dataclasses.field(default=None, compare=False, hash=False)

    @property
    def key(self) -> TypeKey:
        return (self.group, self.version, self.plural)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def verbs(self) -> tuple[str, ...]:
        return _VERBS

    def spec_of(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The part whose change bumps metadata.generation: all but metadata (and status, if separate)."""
        skipped = {"metadata", "status"} if self.status_subresource else {"metadata"}
        return {key: value for key, value in obj.items() if key not in skipped}


def _core(plural: str, kind: str, *short: str, namespaced: bool = True, status: bool = False) -> ResourceType:
    return ResourceType("", "v1", plural, kind, kind.lower(), namespaced, status, short_names=short)


BUILT_IN: tuple[ResourceType, ...] = (
    _core("namespaces", "Namespace", "ns", namespaced=False, status=True),
    _core("pods", "Pod", "po", status=True),
    _core("services", "Service", "svc", status=True),
    _core("configmaps", "ConfigMap", "cm"),
    _core("secrets", "Secret"),
    _core("events", "Event", "ev"),
    _core("serviceaccounts", "ServiceAccount", "sa"),
    ResourceType(
        "apps", "v1", "deployments", "Deployment", "deployment", True, True, short_names=("deploy",)
    ),
    ResourceType("events.k8s.io", "v1", "events", "Event", "event"),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", "lease"),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", "role"),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", "rolebinding"),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", "clusterrole", namespaced=False
    ),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        "clusterrolebinding",
        namespaced=False,
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        "customresourcedefinition",
        namespaced=False,
        status_subresource=True,
        short_names=("crd", "crds"),
    ),
)


def types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of a CustomResourceDefinition body."""
    try:
        spec = crd["spec"]
        names = spec["names"]
        group = spec["group"]
        namespaced = spec.get("scope", "Namespaced") == "Namespaced"
        result = []
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            result.append(
                ResourceType(
                    group=group,
                    version=version["name"],
                    plural=names["plural"],
                    kind=names["kind"],
                    singular=names.get("singular", names["kind"].lower()),
                    namespaced=namespaced,
                    status_subresource="status" in (version.get("subresources") or {}),
                    built_in=False,
                    short_names=tuple(names.get("shortNames", ())),
                    categories=tuple(names.get("categories", ())),
                    printer_columns=tuple(version.get("additionalPrinterColumns", ())),
                    schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                )
            )
        return result
    except (KeyError, TypeError) as exc:
        raise errors.ApiError(422, "Invalid", f"CustomResourceDefinition is missing {exc}") from exc
