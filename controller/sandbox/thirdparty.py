"""CRDs of other projects the sandbox installs: Kopf peering, Gateway API HTTPRoute, Istio VirtualService.

Only names and scope matter to the emulator (it does not validate schemas), so these carry an
open schema; on a real cluster the projects' own CRDs are installed instead.
"""

from __future__ import annotations

from typing import Any


def _crd(group: str, version: str, plural: str, kind: str, *, namespaced: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced" if namespaced else "Cluster",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


KOPF_PEERING = (
    _crd("kopf.dev", "v1", "kopfpeerings", "KopfPeering"),
    _crd("kopf.dev", "v1", "clusterkopfpeerings", "ClusterKopfPeering", namespaced=False),
)
TRAFFIC = (
    _crd("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute"),
    _crd("networking.istio.io", "v1", "virtualservices", "VirtualService"),
)
