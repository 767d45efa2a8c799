"""Deployments: one per revision, named by the engine, labelled with release and revision.

Readiness comes from the pods (each Ready pod's transition time), because the engine's warm-up
and resume logic counts pods, not the Deployment's aggregate.
"""

from __future__ import annotations

import contextlib
import copy
from datetime import datetime
from typing import Any

from controller import errors, ports
from controller.adapters import kubeapi, labels
from controller.domain import actions, naming, observations
from controller.resources import meta, modelrelease

FAILING_REASONS = frozenset(
    {"CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError", "InvalidImageName"}
)
CONTAINER = "model"


def owner_reference(release: ports.ReleaseRef) -> dict[str, Any]:
    return {
        "apiVersion": meta.API_VERSION,
        "kind": "ModelRelease",
        "name": release.name,
        "uid": release.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def build_deployment(release: ports.ReleaseRef, action: actions.CreateWorkload) -> dict[str, Any]:
    serving = action.serving
    selector = {labels.RELEASE: naming.release_label(release.name), labels.REVISION: action.revision}
    model_env = [
        {"name": serving.model_uri_env, "value": action.model_uri},
        {"name": "MODEL_NAME", "value": action.model_name},
        {"name": "MODEL_VERSION", "value": action.model_version},
    ]
    adopted = serving.adopted is not None
    template = _adopted_template(serving, model_env) if adopted else _inline_template(serving, model_env)
    template_meta = template.setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), **serving.pod_labels, **selector}
    template_meta["annotations"] = {
        **(template_meta.get("annotations") or {}),
        **serving.pod_annotations,
        labels.RELEASE_NAME: release.name,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": action.name,
            "namespace": release.namespace,
            "labels": {**selector, labels.TRACK: action.track.value, labels.MANAGED_BY: labels.MANAGER},
            "annotations": {labels.MODEL_VERSION: action.model_version, labels.RELEASE_NAME: release.name},
            "ownerReferences": [owner_reference(release)],
        },
        "spec": {
            "replicas": action.replicas,
            "selector": {"matchLabels": selector},
            "template": template,
        },
    }


def _inline_template(serving: modelrelease.Serving, model_env: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": serving.image,
        "env": [*serving.env, *model_env],
        "resources": serving.resources.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    for key, value in (
        ("command", list(serving.command)),
        ("args", list(serving.args)),
        ("ports", list(serving.ports)),
        ("readinessProbe", serving.readiness_probe),
        ("livenessProbe", serving.liveness_probe),
    ):
        if value:
            container[key] = value
    pod_spec: dict[str, Any] = {"containers": [container]}
    if serving.node_selector:
        pod_spec["nodeSelector"] = dict(serving.node_selector)
    if serving.tolerations:
        pod_spec["tolerations"] = list(serving.tolerations)
    if serving.service_account_name:
        pod_spec["serviceAccountName"] = serving.service_account_name
    return {"metadata": {}, "spec": pod_spec}


def _adopted_template(serving: modelrelease.Serving, model_env: list[dict[str, Any]]) -> dict[str, Any]:
    """The referenced Deployment's pod template as it is, the model injected into its container (the
    named one, else the first): a variable the template sets under the same name is replaced."""
    assert serving.adopted is not None
    assert serving.workload_ref is not None
    template = copy.deepcopy(serving.adopted.template)
    containers = (template.get("spec") or {}).get("containers") or []
    wanted = serving.workload_ref.container
    target = next((c for c in containers if wanted is None or c.get("name") == wanted), None)
    if target is None:
        raise errors.InvalidError(
            f"spec.serving.workloadRef.container: Deployment {serving.workload_ref.name} has no container "
            f"{wanted!r} (it has {', '.join(str(c.get('name')) for c in containers) or 'none'})"
        )
    injected = {variable["name"] for variable in model_env}
    target["env"] = [*(v for v in target.get("env") or [] if v.get("name") not in injected), *model_env]
    return template


def _ready_since(pod: dict[str, Any]) -> datetime | None:
    for condition in (pod.get("status") or {}).get("conditions", []) or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            stamp = condition.get("lastTransitionTime")
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None
    return None


def _failing(pod: dict[str, Any]) -> str | None:
    for status in (pod.get("status") or {}).get("containerStatuses", []) or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in FAILING_REASONS:
            return f"pod {pod['metadata']['name']}: {waiting['reason']}"
    for condition in (pod.get("status") or {}).get("conditions", []) or []:
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
            return f"pod {pod['metadata']['name']}: Unschedulable: {condition.get('message', '')}".rstrip(
                ": "
            )
    return None


class KubeWorkloads:
    def __init__(self, api: kubeapi.KubeApi) -> None:
        self._api = api

    def _deployments_path(self, namespace: str, name: str | None = None) -> str:
        return kubeapi.build_path("apps/v1", "deployments", namespace, name)

    def fetch_workloads(self, release: ports.ReleaseRef) -> dict[str, observations.Workload]:
        selector = {"labelSelector": f"{labels.RELEASE}={naming.release_label(release.name)}"}
        deployments = self._api.get(self._deployments_path(release.namespace), selector)["items"]
        pods = self._api.get(kubeapi.build_path("v1", "pods", release.namespace), selector)["items"]
        result: dict[str, observations.Workload] = {}
        for deployment in deployments:
            metadata = deployment["metadata"]
            # Only what this release owns is its workload: a Deployment carrying its labels that a
            # person or another tool made (or one orphaned by `--cascade=orphan`) is not scaled or
            # deleted by it. The engine would retire any workload it does not want.
            if metadata.get("deletionTimestamp") or not is_owned_by(deployment, release.uid):
                continue
            revision = (metadata.get("labels") or {}).get(labels.REVISION, "")
            mine = [
                pod
                for pod in pods
                if (pod["metadata"].get("labels") or {}).get(labels.REVISION) == revision
                and not pod["metadata"].get("deletionTimestamp")
            ]
            ready = sorted(since for pod in mine if (since := _ready_since(pod)) is not None)
            failing = next((reason for pod in mine if (reason := _failing(pod))), None)
            result[metadata["name"]] = observations.Workload(
                name=metadata["name"],
                revision=revision,
                replicas=int(deployment["spec"].get("replicas", 1)),
                ready_pods_since=tuple(ready),
                failing=failing,
            )
        return result

    def fetch_referenced(self, namespace: str, name: str) -> tuple[dict[str, Any], int]:
        """The pod template and replicas of the Deployment a release's `workloadRef` names."""
        try:
            deployment = self._api.get(self._deployments_path(namespace, name))
        except errors.NotFoundError:
            raise errors.NotFoundError(
                f"spec.serving.workloadRef: Deployment {namespace}/{name} does not exist; "
                "the release starts once it does"
            ) from None
        if (deployment["metadata"].get("labels") or {}).get(labels.MANAGED_BY) == labels.MANAGER:
            # Adopting a release's own Deployment would have the engine scale it to zero under itself.
            raise errors.InvalidError(
                f"spec.serving.workloadRef: Deployment {namespace}/{name} is one modelrelease runs for a "
                "release; reference the Deployment your chart or manifests deploy"
            )
        spec = deployment.get("spec") or {}
        return spec.get("template") or {}, int(spec.get("replicas", 1))

    def apply_create(self, release: ports.ReleaseRef, action: actions.CreateWorkload) -> None:
        body = build_deployment(release, action)
        try:
            self._api.create(self._deployments_path(release.namespace), body)
        except errors.ConflictError:
            # It exists: ours, created before a crash or by the previous attempt (the engine scales
            # it), or someone else's under this name, which retrying cannot fix.
            existing = self._api.get(self._deployments_path(release.namespace, action.name))
            if not is_owned_by(existing, release.uid):
                raise errors.NotOwnedError(
                    f"Deployment {release.namespace}/{action.name} exists and is not owned by "
                    f"ModelRelease {release.name}: rename or delete it"
                ) from None

    def apply_scale(self, release: ports.ReleaseRef, action: actions.ScaleWorkload) -> None:
        self._api.merge_patch(
            self._deployments_path(release.namespace, action.name), {"spec": {"replicas": action.replicas}}
        )

    def apply_delete(self, release: ports.ReleaseRef, action: actions.DeleteWorkload) -> None:
        try:
            self._api.delete(self._deployments_path(release.namespace, action.name))
        except errors.NotFoundError:
            pass  # already gone

    def apply_cleanup(self, namespace: str, release: str, uid: str) -> None:
        """Delete every Deployment and Service the release owns: we do not rely on garbage collection.

        Ownership is the ownerReference to this uid, not the label: what was orphaned (its
        ownerReferences removed) or belongs to someone else is left alone.
        """
        label = naming.release_label(release)
        selector = {"labelSelector": f"{labels.RELEASE}={label},{labels.MANAGED_BY}={labels.MANAGER}"}
        for api_version, plural in (("apps/v1", "deployments"), ("v1", "services")):
            for obj in self._api.get(kubeapi.build_path(api_version, plural, namespace), selector)["items"]:
                if not is_owned_by(obj, uid):
                    continue
                with contextlib.suppress(errors.NotFoundError):
                    self._api.delete(
                        kubeapi.build_path(api_version, plural, namespace, obj["metadata"]["name"])
                    )
