"""`modelrelease validate --format json`: the result for a machine (a PR bot, an editor)."""

from __future__ import annotations

from typing import Any

from controller import releasetree
from controller.resources import kinds


def report(tree: releasetree.Tree) -> dict[str, Any]:
    bad = tree.bad_files
    resources = []
    for manifest in tree.manifests:
        resource = manifest.resource
        assert isinstance(resource, kinds.RESOURCE_TYPES)
        resources.append(
            {
                "file": manifest.source,
                "line": manifest.line,
                "kind": resource.kind,
                "name": resource.metadata.name,
                "namespace": resource.metadata.namespace,
                "valid": manifest.source not in bad,
            }
        )
    return {
        "valid": not tree.problems,
        "files": tree.files,
        "resources": resources,
        "problems": [
            {
                "file": p.source,
                "line": p.line,
                "column": p.column,
                "object": p.subject or None,
                "path": p.path or None,
                "message": p.message,
            }
            for p in tree.problems
        ],
    }
