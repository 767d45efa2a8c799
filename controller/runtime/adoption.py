"""A release that adopts a Deployment (`spec.serving.workloadRef`): its pod template read in, and
the Deployment handed back when the release is deleted.

The template is read on every reconcile, so an edit to the Deployment's template changes the
release's revision (and starts a rollout) exactly as an edit to an inline template does. Scaling the
adopted Deployment to zero once the release serves is the engine's decision (`situations`).
"""

from __future__ import annotations

import logging

from controller import errors, ports
from controller.domain import actions
from controller.resources import modelrelease


def adopt(
    io: ports.Ports, namespace: str, spec: modelrelease.ModelReleaseSpec
) -> modelrelease.ModelReleaseSpec:
    """The spec with the referenced Deployment's pod template read in (unchanged without workloadRef).

    Raises NotFoundError (the release is Blocked, and tried again) while the Deployment is missing,
    InvalidError when it has no container to inject the model into or its template asks for none of
    the GPUs the release's budget counts."""
    ref = spec.serving.workload_ref
    if ref is None:
        return spec
    template, replicas = io.workloads.fetch_referenced(namespace, ref.name)
    names = [str(c.get("name")) for c in (template.get("spec") or {}).get("containers") or []]
    if not names or (ref.container is not None and ref.container not in names):
        raise errors.InvalidError(
            f"spec.serving.workloadRef.container: Deployment {namespace}/{ref.name} has no container "
            f"{ref.container or '(none at all)'!r}; it has {', '.join(names) or 'none'}"
        )
    serving = spec.serving.adopting(template, replicas)
    budget = spec.gpu_budget
    if budget is not None and serving.gpus_per_replica(budget.resource_name) == 0:
        raise errors.InvalidError(
            f"spec.gpuBudget counts {budget.resource_name!r} but the pod template of Deployment "
            f"{namespace}/{ref.name} (spec.serving.workloadRef) asks for none of it"
        )
    return spec.model_copy(update={"serving": serving})


def hand_back(io: ports.Ports, release: ports.ReleaseRef, logger: logging.Logger) -> None:
    """A deleted release gives serving back to the Deployment it adopted: scaled to the release's
    size before the release's own Deployments go (its pods start while ours stop)."""
    ref = release.spec.serving.workload_ref
    if ref is None:
        return
    size = release.spec.serving.replicas
    try:
        io.workloads.apply_scale(release, actions.ScaleWorkload(name=ref.name, replicas=size))
    except errors.NotFoundError:
        logger.warning("Deployment %s (workloadRef) is gone: nothing to hand serving back to", ref.name)
        return
    logger.info("Deployment %s (workloadRef) scaled back to %d replicas: release deleted", ref.name, size)
