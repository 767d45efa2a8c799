"""`modelrelease validate --registry URI`: the pre-flight gate at PR time.

Each release's model must exist in the registry, be READY and carry its `requireTags` — what the
controller waits for before any pod starts, said on the PR instead.
"""

from __future__ import annotations

from controller import errors, manifests, ports
from controller.resources import kinds


def check(found: list[manifests.Manifest], registry: ports.ModelRegistry) -> list[manifests.Problem]:
    problems = []
    for manifest in found:
        resource = manifest.resource
        if not isinstance(resource, kinds.ModelRelease):
            continue
        subject = f"ModelRelease {resource.metadata.name}"
        model = resource.spec.model
        try:
            version = registry.fetch_version(model)
        except errors.ModelReleaseError as exc:
            problems.append(
                manifests.Problem(manifest.source, manifest.line, "spec.model", str(exc), subject=subject)
            )
            continue
        unmet = version.unmet(model.require_tags)
        if unmet:
            message = f"{model.name} version {version.version} {unmet}: the rollout would wait"
            problems.append(
                manifests.Problem(manifest.source, manifest.line, "spec.model", message, subject=subject)
            )
    return problems
