"""The workload simulator: the Deployment controller and kubelet the emulated cluster lacks.

For every Deployment it keeps `spec.replicas` pods, makes each Ready after its start delay (model
load time), or keeps it crash-looping or never Ready, and writes the Deployment's status the way
the Deployment controller does. Pods of a deleted Deployment are deleted (the garbage collector's
job on a real cluster). Behaviour is chosen per model version (the container's MODEL_VERSION env).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import random
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.sandbox import errors, store

CLIENT = "sandbox-simulator"
OWNER_LABEL = "sandbox.modelrelease.dev/deployment"


@dataclasses.dataclass(frozen=True)
class PodBehaviour:
    start_delay: timedelta = timedelta(milliseconds=300)
    crash_loop: bool = False
    never_ready: bool = False


DEFAULT_BEHAVIOUR = PodBehaviour()


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _model_version(deployment: dict[str, Any]) -> str | None:
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    for container in containers:
        for env in container.get("env", []) or []:
            if env.get("name") == "MODEL_VERSION":
                return str(env.get("value"))
    return None


class WorkloadSimulator:
    def __init__(
        self,
        cluster_store: store.Store,
        *,
        default: PodBehaviour = DEFAULT_BEHAVIOUR,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = cluster_store
        self._default = default
        self._random = random.Random(seed)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._by_version: dict[str, PodBehaviour] = {}
        self._ready_at: dict[str, datetime] = {}  # pod name → when it becomes Ready
        self.wakeup = asyncio.Event()

    def set_behaviour(self, model_version: str, behaviour: PodBehaviour) -> None:
        self._by_version[model_version] = behaviour

    def behaviour_of(self, deployment: dict[str, Any]) -> PodBehaviour:
        version = _model_version(deployment)
        return self._by_version.get(version or "", self._default)

    async def run(self) -> None:
        while True:
            self.wakeup.clear()
            due = self.step()
            timeout = None if due is None else max(due.total_seconds(), 0.01)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=timeout)

    def step(self) -> timedelta | None:
        """Bring pods and Deployment status in line with now; how long until the next pod is due."""
        now = self._clock()
        store.collect_garbage(self._store)
        deployments_type = self._store.find_type("apps", "v1", "deployments")
        pods_type = self._store.find_type("", "v1", "pods")
        deployments = self._store.objects("deployments")
        pods = self._store.objects("pods")
        live = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in deployments}
        for pod in pods:  # garbage-collect pods whose Deployment is gone
            owner = (pod["metadata"].get("labels") or {}).get(OWNER_LABEL)
            if owner and (pod["metadata"]["namespace"], owner) not in live:
                self._delete_pod(pods_type, pod)
        next_due: timedelta | None = None
        for deployment in deployments:
            due = self._step_deployment(deployments_type, pods_type, deployment, pods, now)
            if due is not None and (next_due is None or due < next_due):
                next_due = due
        return next_due

    def _step_deployment(
        self,
        deployments_type: Any,
        pods_type: Any,
        deployment: dict[str, Any],
        pods: list[dict[str, Any]],
        now: datetime,
    ) -> timedelta | None:
        meta = deployment["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        template = deployment["spec"].get("template", {})
        template_hash = hashlib.sha256(repr(sorted(str(template).encode())).encode()).hexdigest()[:10]
        mine = [
            pod
            for pod in pods
            if pod["metadata"]["namespace"] == namespace
            and (pod["metadata"].get("labels") or {}).get(OWNER_LABEL) == name
        ]
        # A changed pod template replaces every pod (no surge): the controller never does this.
        for pod in [p for p in mine if p["metadata"]["labels"].get("pod-template-hash") != template_hash]:
            self._delete_pod(pods_type, pod)
            mine.remove(pod)
        desired = int(deployment["spec"].get("replicas", 1))
        behaviour = self.behaviour_of(deployment)
        while len(mine) < desired:
            mine.append(self._create_pod(pods_type, deployment, template_hash, behaviour, now))
        if len(mine) > desired:
            # Like a ReplicaSet: not-Ready pods go first, then the newest.
            ordered = sorted(mine, key=lambda p: p["metadata"]["creationTimestamp"], reverse=True)
            ordered.sort(key=_is_ready)  # stable: newest first within each group
            for pod in ordered[: len(mine) - desired]:
                self._delete_pod(pods_type, pod)
                mine.remove(pod)
        next_due: timedelta | None = None
        for pod in mine:
            due = self._step_pod(pods_type, pod, behaviour, now)
            if due is not None and (next_due is None or due < next_due):
                next_due = due
        self._write_status(deployments_type, deployment, mine, now)
        return next_due

    def _create_pod(
        self,
        pods_type: Any,
        deployment: dict[str, Any],
        template_hash: str,
        behaviour: PodBehaviour,
        now: datetime,
    ) -> dict[str, Any]:
        meta = deployment["metadata"]
        template = deployment["spec"].get("template", {})
        labels = dict(template.get("metadata", {}).get("labels") or {})
        labels.update({OWNER_LABEL: meta["name"], "pod-template-hash": template_hash})
        suffix = "".join(self._random.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        body = {
            "metadata": {
                "name": f"{meta['name']}-{template_hash}-{suffix}",
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": dict(template.get("metadata", {}).get("annotations") or {}),
                "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"], "uid": meta["uid"]}
                ],
            },
            "spec": template.get("spec", {}),
        }
        pod = self._store.create(pods_type, meta["namespace"], body, client=CLIENT)
        self._ready_at[pod["metadata"]["name"]] = now + behaviour.start_delay
        status = {
            "phase": "Running",
            "startTime": _timestamp(now),
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": _timestamp(now)}],
        }
        return self._store.replace(
            pods_type,
            meta["namespace"],
            pod["metadata"]["name"],
            {**pod, "status": status},
            subresource="status",
            client=CLIENT,
        )

    def _step_pod(
        self, pods_type: Any, pod: dict[str, Any], behaviour: PodBehaviour, now: datetime
    ) -> timedelta | None:
        name = pod["metadata"]["name"]
        ready_at = self._ready_at.setdefault(name, now)
        if _is_ready(pod) or behaviour.never_ready:
            return None
        if now < ready_at:
            return ready_at - now
        status = dict(pod.get("status") or {})
        if behaviour.crash_loop:
            restarts = 1 + max(
                (c.get("restartCount", 0) for c in status.get("containerStatuses", [])), default=0
            )
            status["containerStatuses"] = [
                {
                    "name": "model",
                    "ready": False,
                    "restartCount": restarts,
                    "state": {
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": "back-off restarting failed container",
                        }
                    },
                }
            ]
            self._ready_at[name] = now + behaviour.start_delay * 4
            self._replace_status(pods_type, pod, status)
            return behaviour.start_delay * 4
        status["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": _timestamp(now)}]
        status["containerStatuses"] = [
            {"name": "model", "ready": True, "restartCount": 0, "state": {"running": {}}}
        ]
        self._replace_status(pods_type, pod, status)
        return None

    def _replace_status(self, pods_type: Any, pod: dict[str, Any], status: dict[str, Any]) -> None:
        try:
            self._store.replace(
                pods_type,
                pod["metadata"]["namespace"],
                pod["metadata"]["name"],
                {**pod, "status": status},
                subresource="status",
                client=CLIENT,
            )
        except errors.ApiError:
            pass  # deleted or changed meanwhile: the next step sees the new state

    def _delete_pod(self, pods_type: Any, pod: dict[str, Any]) -> None:
        self._ready_at.pop(pod["metadata"]["name"], None)
        try:
            self._store.delete(
                pods_type, pod["metadata"]["namespace"], pod["metadata"]["name"], client=CLIENT
            )
        except errors.ApiError:
            pass  # already gone

    def _write_status(
        self, deployments_type: Any, deployment: dict[str, Any], pods: list[dict[str, Any]], now: datetime
    ) -> None:
        ready = sum(1 for pod in pods if _is_ready(pod))
        desired = int(deployment["spec"].get("replicas", 1))
        old = deployment.get("status") or {}
        available = "True" if ready >= desired else "False"
        status = {
            "observedGeneration": deployment["metadata"].get("generation", 1),
            "replicas": len(pods),
            "updatedReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(len(pods) - ready, 0),
            "conditions": [
                _condition(old, "Available", available, "MinimumReplicasAvailable", now),
                _condition(old, "Progressing", "True", "NewReplicaSetAvailable", now),
            ],
        }
        if status != old:
            try:
                self._store.replace(
                    deployments_type,
                    deployment["metadata"]["namespace"],
                    deployment["metadata"]["name"],
                    {**deployment, "status": status},
                    subresource="status",
                    client=CLIENT,
                )
            except errors.ApiError:
                pass  # changed meanwhile; the next step writes again


def _condition(old: dict[str, Any], kind: str, value: str, reason: str, now: datetime) -> dict[str, Any]:
    previous = next((c for c in old.get("conditions", []) if c.get("type") == kind), None)
    since = (
        previous["lastTransitionTime"] if previous and previous.get("status") == value else _timestamp(now)
    )
    return {"type": kind, "status": value, "reason": reason, "lastTransitionTime": since}


def _is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
