"""Drive the real controller process (Kopf over HTTP) against the emulated cluster, and read results."""

from __future__ import annotations

import contextlib
import copy
import os
import pathlib
import signal
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

from controller.sandbox import cluster, kinds
from controller.tooling import processes
from tests.integration import access

ROOT = pathlib.Path(__file__).resolve().parents[2]
NAMESPACE = "default"
CONTROLLER_AGENT = "modelrelease-controller"


def release_body(name: str, version: str = "1", **spec_overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {"name": "ranker", "version": version},
        "serving": {
            "image": "registry.example.com/triton:24.08",
            "replicas": 4,
            "resources": {"limits": {"nvidia.com/gpu": 1}},
            "ports": [{"name": "http", "containerPort": 8000}],
        },
        "strategy": {
            "canary": {
                "steps": [
                    {"setWeight": 25},
                    {"analysis": {"template": "quality", "maxDuration": "10m"}},
                    {"setWeight": 50},
                ],
                "scaleDownDelay": "0s",
            }
        },
        "gpuBudget": {"maxExtraGPUs": 2},
    }
    spec.update(spec_overrides)
    return {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


@contextlib.contextmanager
def prepared_sandbox(seed: int) -> Iterator[cluster.SandboxCluster]:
    """An emulated cluster with our CRDs and deploy/'s RBAC; at its end, every call the controller
    made must have been allowed (tests/integration/access.py)."""
    with cluster.SandboxCluster(seed=seed) as running:
        running.install_crds(sorted((ROOT / "crds").glob("*.yaml")))
        access.install_rbac(running)
        yield running
        access.check_sandbox(running)


class Controller:
    """The `modelrelease run` process: start, SIGKILL, restart. It runs as deploy/'s ServiceAccount,
    with deploy/'s RBAC (the sandbox must have it: `prepared_sandbox`)."""

    def __init__(
        self, kubeconfig: pathlib.Path, log: pathlib.Path, *extra: str, standalone: bool = True
    ) -> None:
        self.kubeconfig = access.controller_kubeconfig(kubeconfig, log.with_suffix(".kubeconfig"))
        self.log = log
        self.extra = extra
        self.standalone = standalone
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Controller:
        self.starts += 1
        args = processes.controller_command(
            self.kubeconfig,
            "--poll-interval",
            "0.5",
            "--request-timeout",
            "2",
            "--analysis",
            "scripted",
            *self.extra,
        )
        if self.standalone:
            args.append("--standalone")
        with self.log.open("ab") as out:
            out.write(f"\n===== start {self.starts} =====\n".encode())
            self.process = subprocess.Popen(
                args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ}
            )
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            processes.stop(self.process)
        self.process = None


class World:
    """What a test sees of the sandbox: objects, the write history, and waiting for a state."""

    def __init__(self, sandbox: cluster.SandboxCluster) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store

    def rtype(self, group: str, version: str, plural: str) -> kinds.ResourceType:
        return self.store.find_type(group, version, plural)

    def release(self, name: str) -> dict[str, Any]:
        return self.store.get(self.rtype("modelrelease.dev", "v1alpha1", "modelreleases"), NAMESPACE, name)

    def status(self, name: str) -> dict[str, Any]:
        return self.release(name).get("status") or {}

    def deployments(self) -> dict[str, dict[str, Any]]:
        return {d["metadata"]["name"]: d for d in self.store.objects("deployments")}

    def service(self, name: str) -> dict[str, Any]:
        return self.store.get(self.rtype("", "v1", "services"), NAMESPACE, name)

    def events(self) -> list[dict[str, Any]]:
        return [
            e
            for e in self.store.objects("events")
            if e.get("source", {}).get("component") == CONTROLLER_AGENT
        ]

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.sandbox.create(copy.deepcopy(body))

    def patch_release(self, name: str, patch: dict[str, Any]) -> None:
        rtype = self.rtype("modelrelease.dev", "v1alpha1", "modelreleases")
        self.store.patch(rtype, NAMESPACE, name, "application/merge-patch+json", patch, client="test")

    def script_analysis(self, verdicts: dict[str, str]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "modelrelease-analysis-script", "namespace": NAMESPACE},
            "data": verdicts,
        }
        rtype = self.rtype("", "v1", "configmaps")
        try:
            self.store.get(rtype, NAMESPACE, body["metadata"]["name"])
        except Exception:
            self.store.create(rtype, NAMESPACE, body, client="test")
        else:
            self.store.patch(
                rtype,
                NAMESPACE,
                body["metadata"]["name"],
                "application/merge-patch+json",
                {"data": verdicts},
                client="test",
            )

    def wait_for_status(
        self, name: str, check: Callable[[dict[str, Any]], bool], *, timeout: float = 60, what: str = ""
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            try:
                status = self.status(name)
            except Exception:
                return None
            return status if check(status) else None

        try:
            return self.sandbox.wait_until(probe, timeout=timeout, what=what)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; last status: {self._safe_status(name)}") from None

    def wait_for_phase(self, name: str, *phases: str, timeout: float = 60) -> dict[str, Any]:
        return self.wait_for_status(
            name, lambda s: s.get("phase") in phases, timeout=timeout, what=f"phase in {phases}"
        )

    def _safe_status(self, name: str) -> dict[str, Any]:
        try:
            return self.status(name)
        except Exception as exc:  # the release may be gone
            return {"error": str(exc)}

    def controller_writes(self) -> list[Any]:
        return [w for w in self.store.writes if w.client.startswith(CONTROLLER_AGENT)]


def gpu_history(world: World, gpus_per_replica: int = 1) -> list[int]:
    """Total GPUs the release's Deployments ask for after each write, replayed from the write log."""
    replicas: dict[str, int] = {}
    totals = []
    for write in world.store.writes:
        if write.plural != "deployments" or write.code >= 300 or write.subresource is not None:
            continue
        if write.verb == "delete":
            replicas.pop(write.name, None)
        elif write.object is not None:
            replicas[write.name] = int(write.object["spec"].get("replicas", 1))
        totals.append(sum(replicas.values()) * gpus_per_replica)
    return totals


def successful(world: World, verb: str, plural: str, name: str | None = None) -> list[Any]:
    return [
        w
        for w in world.store.writes
        if w.verb == verb and w.plural == plural and w.code < 300 and (name is None or w.name == name)
    ]
