"""Drive the real controller process (Kopf, the `kubernetes` client) against the real control plane.

One control plane per test process (`Cluster`, started once, tests/controlplane) carries our CRDs,
Gateway API's and Istio's, and deploy/'s ServiceAccount, RBAC and admission policy. Each test gets a
namespace of its own (`World`), a controller that watches only that namespace and runs as deploy/'s
ServiceAccount with a token the API server issued, and an administrator's kubeconfig whose context is
that namespace (for kubectl and the plugin). At a test's end the controller stops, the calls it made
are read from the audit log (every one RBAC refused fails the test; every one allowed is recorded
for the every-rule-used check), and the namespace is deleted.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import os
import pathlib
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from controller.tooling import processes
from tests.cluster import access
from tests.controlplane import audit, cluster, faultproxy, thirdparty
from tests.controlplane.kube import Kube, KubeError, Obj, wait_until

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONTROLLER_AGENT = "modelrelease-controller"
CONTROLLER_USER = f"system:serviceaccount:{access.ACCOUNT_NAMESPACE}:{access.ACCOUNT_NAME}"
GROUP = "modelrelease.dev"
DEPLOY_KINDS = (  # what deploy/ installs besides the controller's own Deployment, Services and policies
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
)
_namespaces = itertools.count(1)


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
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": name},
        "spec": spec,
    }


class Cluster:
    """The control plane of one test process, with everything the product needs installed."""

    def __init__(self, folder: pathlib.Path, *, nodes: int = 4, gpus_per_node: int = 8) -> None:
        self.plane = cluster.ControlPlane(folder, nodes=nodes, gpus_per_node=gpus_per_node)
        self.kube: Kube

    def start(self) -> Cluster:
        self.plane.start()
        self.kube = self.plane.client()
        crds = [
            *(doc for path in sorted((ROOT / "crds").glob("*.yaml")) for doc in _crds(path)),
            *thirdparty.gateway_api_crds(),
            *thirdparty.istio_crds(),
            *(doc for doc in access.rendered_deploy() if doc["kind"] == "CustomResourceDefinition"),
        ]
        for crd in crds:
            self.kube.apply(crd)
        names = [crd["metadata"]["name"] for crd in crds]
        all_established = lambda: all(established(self.kube, name) for name in names)  # noqa: E731
        wait_until(all_established, timeout=60, what="the CRDs established")
        ordered = sorted(
            (doc for doc in access.rendered_deploy() if doc["kind"] in DEPLOY_KINDS),
            key=lambda doc: DEPLOY_KINDS.index(doc["kind"]),
        )
        for obj in ordered:
            self.kube.apply(obj)
        return self

    def stop(self) -> None:
        self.plane.stop()

    def token(self, namespace: str, account: str, seconds: int = 3600) -> str:
        """A token for a ServiceAccount from the API server's TokenRequest (`kubectl create token`)."""
        answer = self.kube.call(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": seconds},
            },
        )
        return str(answer["status"]["token"])


class World:
    """What a test sees of its namespace: objects, the audit history, and waiting for a state."""

    def __init__(self, running: Cluster, folder: pathlib.Path) -> None:
        self.cluster = running
        self.kube = running.kube
        self.audit = audit.AuditLog(running.plane.audit_log)
        self.namespace = f"t{next(_namespaces)}-{uuid.uuid4().hex[:6]}"
        self.folder = folder
        self._closers: list[Callable[[], None]] = []
        folder.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = folder / "kubeconfig"
        self.audit.mark()
        self.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}})
        self.kube.apply(access.secret_binding(self.namespace))
        # Pods may be created only once kube-controller-manager has made the namespace's ServiceAccount.
        wait_until(
            lambda: self.kube.exists("serviceaccounts", self.namespace, "default"),
            timeout=30,
            what=f"the default ServiceAccount of {self.namespace}",
        )
        running.plane.write_kubeconfig(self.kubeconfig, namespace=self.namespace)

    # ----- reading ------------------------------------------------------------------------------
    def get(self, plural: str, name: str, *, group: str | None = None) -> Obj:
        return self.kube.get(plural, self.namespace, name, group=group)

    def objects(self, plural: str, *, group: str | None = None) -> list[Obj]:
        return self.kube.objects(plural, self.namespace, group=group)

    def release(self, name: str) -> Obj:
        return self.get("modelreleases", name)

    def status(self, name: str) -> dict[str, Any]:
        return self.release(name).get("status") or {}

    def deployments(self) -> dict[str, Obj]:
        return {d["metadata"]["name"]: d for d in self.objects("deployments")}

    def service(self, name: str) -> Obj:
        return self.get("services", name)

    def events(self) -> list[Obj]:
        return [
            e
            for e in self.objects("events", group="")
            if (e.get("source") or {}).get("component") == CONTROLLER_AGENT
            or e.get("reportingComponent") == CONTROLLER_AGENT
        ]

    def everything(self) -> list[Obj]:
        """Every object now in the namespace, of every listable kind, and every body written to it
        that the audit log kept: where a secret must never appear."""
        found: list[Obj] = []
        for resource in self.kube.namespaced_resources():
            if resource.plural in ("secrets", "bindings", "localsubjectaccessreviews"):
                continue  # Secrets hold secrets by design; the others cannot be listed
            found += self.kube.call("GET", resource.path(self.namespace))["items"]
        return found + [c.object for c in self.calls() if c.object is not None]

    def calls(self) -> list[audit.Call]:
        """Every request in this namespace since the test began (the audit log)."""
        return [c for c in self.audit.calls() if c.namespace == self.namespace]

    def writes(self) -> list[audit.Call]:
        return [c for c in self.calls() if c.is_write]

    def controller_writes(self) -> list[audit.Call]:
        return [w for w in self.writes() if w.user == CONTROLLER_USER]

    # ----- writing ------------------------------------------------------------------------------
    def create(self, body: Obj) -> Obj:
        return self.kube.create(copy.deepcopy(body), self.namespace)

    def apply(self, body: Obj) -> Obj:
        return self.kube.apply(copy.deepcopy(body), self.namespace)

    def patch(self, plural: str, name: str, patch: Any, **options: Any) -> Obj:
        return self.kube.patch(plural, self.namespace, name, patch, **options)

    def delete(self, plural: str, name: str, options: Obj | None = None) -> Obj:
        return self.kube.delete(plural, self.namespace, name, options)

    def patch_release(self, name: str, patch: dict[str, Any]) -> None:
        self.patch("modelreleases", name, patch)

    def script_analysis(self, verdicts: dict[str, str]) -> None:
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "modelrelease-analysis-script"},
                "data": verdicts,
            }
        )

    # ----- waiting ------------------------------------------------------------------------------
    def wait_until(self, condition: Callable[[], Any], *, timeout: float = 30, what: str = "") -> Any:
        return wait_until(condition, timeout=timeout, what=what)

    def wait_for_status(
        self, name: str, check: Callable[[dict[str, Any]], bool], *, timeout: float = 60, what: str = ""
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            try:
                status = self.status(name)
            except KubeError:
                return None
            return status if check(status) else None

        try:
            result: dict[str, Any] = wait_until(probe, timeout=timeout, what=what)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; last status: {self._safe_status(name)}") from None
        return result

    def wait_for_phase(self, name: str, *phases: str, timeout: float = 60) -> dict[str, Any]:
        return self.wait_for_status(
            name, lambda s: s.get("phase") in phases, timeout=timeout, what=f"phase in {phases}"
        )

    def _safe_status(self, name: str) -> dict[str, Any]:
        try:
            return self.status(name)
        except KubeError as exc:  # the release may be gone
            return {"error": str(exc)}

    # ----- the end --------------------------------------------------------------------------------
    def on_close(self, callback: Callable[[], None]) -> None:
        """Run `callback` first when the test ends (a controller the test started itself, say)."""
        self._closers.append(callback)

    def close(self) -> None:
        """Check the controller's calls against RBAC, record them, and delete the namespace."""
        for callback in reversed(self._closers):
            callback()
        calls = [c for c in self.audit.calls() if c.user == CONTROLLER_USER]
        folder = os.environ.get(access.ACCESS_DIR_VARIABLE)
        allowed = sorted({(c.group, c.resource, c.verb) for c in calls if c.allowed})
        if folder and allowed:
            (pathlib.Path(folder) / f"{uuid.uuid4().hex}.json").write_text(json.dumps(allowed))
        self._delete_namespace()
        denied = sorted(
            {
                f"{c.verb} {c.resource}.{c.group or 'core'} in {c.namespace or '(cluster)'}"
                for c in calls
                if not c.allowed
            }
        )
        if denied:
            raise AssertionError(
                "the controller made calls deploy/base/rbac.yaml does not allow"
                " (refused by the API server):\n  " + "\n  ".join(denied)
            )

    def _delete_namespace(self) -> None:
        # The controller has stopped: its finalizers would hold the namespace's deletion for ever.
        for plural in ("modelreleases", "gitsources", "approvals", "analysistemplates"):
            for obj in self.objects(plural, group=GROUP):
                if obj["metadata"].get("finalizers"):
                    try:
                        self.patch(
                            plural, obj["metadata"]["name"], {"metadata": {"finalizers": None}}, group=GROUP
                        )
                    except KubeError as error:
                        if error.code != 404:
                            raise
        self.kube.call("DELETE", f"/api/v1/namespaces/{self.namespace}")


class Controller:
    """The `modelrelease run` process: start, SIGKILL, restart, as deploy/'s ServiceAccount."""

    def __init__(
        self,
        world: World,
        log: pathlib.Path,
        *extra: str,
        standalone: bool = True,
        proxy: faultproxy.FaultProxy | None = None,
        cluster_wide: bool = False,
    ) -> None:
        self.world = world
        self.cluster_wide = cluster_wide  # as deploy/ runs it; else it watches only the test's namespace
        self.log = log
        self.extra = extra
        self.standalone = standalone
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kubeconfig = log.with_suffix(".kubeconfig")
        token = world.cluster.token(access.ACCOUNT_NAMESPACE, access.ACCOUNT_NAME)
        # The audit log names each token by its JTI: two replicas of one ServiceAccount are told apart.
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        self.credential = f"JTI={claims['jti']}"
        server = proxy.url if proxy is not None else ""  # through the fault proxy, when a test injects faults
        world.cluster.plane.write_kubeconfig(
            self.kubeconfig, namespace=world.namespace, token=token, server=server
        )

    def start(self) -> Controller:
        self.starts += 1
        scope = [] if self.cluster_wide else ["--namespace", self.world.namespace]
        # Verdicts come from the test's ConfigMap (`World.script_analysis`) unless the test chose a
        # backend: `--analysis prometheus` runs the product's own entry point and the judge.
        args = processes.controller_command(
            self.kubeconfig,
            *scope,
            "--poll-interval",
            "0.5",
            "--request-timeout",
            "2",
            *self.extra,
            scripted="--analysis" not in self.extra,
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


def gpu_history(world: World, gpus_per_replica: int = 1) -> list[int]:
    """Total GPUs the namespace's Deployments ask for after each write, replayed from the audit log."""
    replicas: dict[str, int] = {}
    totals = []
    for write in world.writes():
        if write.plural != "deployments" or write.code >= 300 or write.subresource is not None:
            continue
        if write.verb == "delete":
            replicas.pop(write.name, None)
        elif write.object is not None:
            replicas[write.name] = int(write.object["spec"].get("replicas", 1))
        totals.append(sum(replicas.values()) * gpus_per_replica)
    return totals


def successful(world: World, verb: str, plural: str, name: str | None = None) -> list[audit.Call]:
    return [
        w
        for w in world.writes()
        if w.verb == verb and w.plural == plural and w.code < 300 and (name is None or w.name == name)
    ]


def _crds(path: pathlib.Path) -> Iterator[Obj]:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") == "CustomResourceDefinition":
            yield doc


def established(kube: Kube, name: str) -> bool:
    crd = kube.get("customresourcedefinitions", "", name)
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)
