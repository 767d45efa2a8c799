"""Start and stop a real Kubernetes control plane on loopback, from the binary this folder's Go module builds.

`ControlPlane(folder).start()` runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
KWOK (which plays every kubelet) as child processes of ours, each on a free 127.0.0.1 port with its
log in the folder; waits for `/readyz` and the `default` ServiceAccount; creates KWOK Nodes with GPU
capacity; and writes an administrator's kubeconfig. `stop()` (or leaving the `with` block, or the
interpreter exiting) ends every process it started, by pid, also when starting failed half way.

The API server writes an audit log (`audit_log`, read by tests/controlplane/audit.py): every request
with its user, verb and resource, and the objects written to Deployments, Services and routes, so a
test can replay what the controller did and check its RBAC against the calls it made.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import yaml

from tests.controlplane import faultproxy, kube, pki

HERE = pathlib.Path(__file__).resolve().parent
BINARY = HERE / "bin" / "controlplane"
KUBERNETES_VERSION = "v1.36.3"
SERVICE_RANGE = "10.96.0.0/12"
POD_RANGE = "10.244.0.0/16"
GPU = "nvidia.com/gpu"
START_TIMEOUT = 120.0

# What the audit log leaves out: the control plane's own reads and heartbeats, which are most of its
# traffic and not what any test asks about. Its writes (a ReplicaSet's pods, the scheduler's bindings,
# KWOK's pod status) stay: they tell a pod's story when a test has to find out why it was late.
CONTROL_PLANE_USERS = [pki.CONTROLLER_MANAGER.user, pki.SCHEDULER.user, pki.KWOK.user]
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "nonResourceURLs": ["/readyz*", "/livez*", "/healthz*", "/version", "/openapi*"]},
        {
            "level": "None",
            "users": CONTROL_PLANE_USERS,
            "userGroups": ["system:serviceaccounts:kube-system", "system:nodes"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "level": "None",
            "resources": [
                {"group": "coordination.k8s.io", "resources": ["leases"]},
                {"group": "", "resources": ["nodes/status", "events"]},
                {"group": "events.k8s.io", "resources": ["events"]},
            ],
            "users": [*CONTROL_PLANE_USERS, "system:apiserver"],
        },
        {"level": "None", "users": ["system:apiserver"]},
        {
            "level": "RequestResponse",
            "verbs": ["create", "update", "patch", "delete"],
            "resources": [
                {"group": "apps", "resources": ["deployments", "deployments/scale"]},
                {"group": "", "resources": ["services"]},
                {"group": "gateway.networking.k8s.io", "resources": ["httproutes"]},
                {"group": "networking.istio.io", "resources": ["virtualservices"]},
                {
                    "group": "modelrelease.dev",
                    "resources": ["modelreleases", "modelreleases/status", "modelreleases/scale"],
                },
            ],
        },
        {"level": "Metadata"},
    ],
}


# A pod whose template carries this annotation (a Go duration: "3s", "2m") becomes Ready only that
# long after it was bound: a model server loading its weights. Set it through a release's
# `serving.podAnnotations`, so only that revision's pods are slow.
READY_AFTER = "kwok.modelrelease.dev/ready-after"


def with_slow_pods(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """KWOK's default stages, with pod readiness delayed by `READY_AFTER` where a pod asks for it.

    KWOK's own pod-ready stage is split in two: pods without the annotation as before, and a copy
    for pods with it, whose delay KWOK reads from the annotation.
    """
    result = []
    for stage in stages:
        if not stage:
            continue
        result.append(stage)
        if stage["metadata"]["name"] != "pod-ready":
            continue
        key = f'.metadata.annotations["{READY_AFTER}"]'
        slow = copy.deepcopy(stage)
        stage["spec"]["selector"]["matchExpressions"].append({"key": key, "operator": "DoesNotExist"})
        slow["metadata"]["name"] = "pod-ready-after-delay"
        slow["spec"]["selector"]["matchExpressions"].append({"key": key, "operator": "Exists"})
        slow["spec"]["delay"] = {"durationMilliseconds": 0, "durationFrom": {"expressionFrom": key}}
        result.append(slow)
    return result


class ControlPlaneError(RuntimeError):
    """The control plane could not be started; the message names the component and ends with its log."""


class ControlPlane:
    def __init__(self, folder: pathlib.Path, *, nodes: int = 4, gpus_per_node: int = 8) -> None:
        self.folder = folder
        self.nodes = nodes
        self.gpus_per_node = gpus_per_node
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.port = 0
        self.kubeconfig = folder / "admin.kubeconfig"
        self.audit_log = folder / "audit.log"
        self._files: pki.Files | None = None
        self._scratches: list[pathlib.Path] = []

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # ----- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        if not BINARY.exists():
            raise ControlPlaneError(f"{BINARY} is not built: run `make controlplane` first")
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM to every process started, newest first; SIGKILL what is still there after 10 s."""
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.processes.clear()
        for scratch in self._scratches:
            shutil.rmtree(scratch, ignore_errors=True)
        self._scratches.clear()
        atexit.unregister(self.stop)

    def _start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        identities = (pki.ADMIN, pki.CONTROLLER_MANAGER, pki.SCHEDULER, pki.KWOK)
        files = self._files = pki.write(self.folder, identities)
        etcd_client, etcd_peer, self.port = free_ports(3)
        self._launch(
            "etcd",
            "--name=etcd",
            f"--data-dir={self._scratch('etcd')}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_client}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-cluster=etcd=http://127.0.0.1:{etcd_peer}",
            "--unsafe-no-fsync=true",  # the data lives as long as the test run
            "--quota-backend-bytes=2147483648",
            "--log-level=warn",
        )
        policy = self.folder / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        self._launch(
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{etcd_client}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={self.folder / 'apiserver-certs'}",
            f"--tls-cert-file={files.serving}",
            f"--tls-private-key-file={files.key}",
            f"--client-ca-file={files.ca}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={files.public_key}",
            f"--service-account-signing-key-file={files.key}",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--authorization-mode=Node,RBAC",
            "--endpoint-reconciler-type=none",  # loopback has no default route to advertise
            "--allow-privileged=true",
            # An APIService (the HPA's external metrics) is reached at its Service's endpoint address:
            # there is no kube-proxy to make a ClusterIP answer.
            "--enable-aggregator-routing=true",
            f"--audit-policy-file={policy}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-maxbackup=0",
            # Never rotated: readers keep an offset into this one file (a test's mark, a benchmark's
            # whole run), and the default 100 MB rotation left the 1,000-release benchmark reading
            # only the last 100 MB of its rollout.
            "--audit-log-maxsize=1000000",
            "--profiling=false",
        )
        self._kubeconfig(self.kubeconfig, pki.ADMIN)
        self._wait(f"{self.url}/readyz", "kube-apiserver")
        self._launch(
            "kube-controller-manager",
            f"--kubeconfig={self._kubeconfig(self.folder / 'kcm.kubeconfig', pki.CONTROLLER_MANAGER)}",
            f"--authentication-kubeconfig={self.folder / 'kcm.kubeconfig'}",
            f"--authorization-kubeconfig={self.folder / 'kcm.kubeconfig'}",
            f"--root-ca-file={files.ca}",
            f"--service-account-private-key-file={files.key}",
            "--use-service-account-credentials=true",  # each controller as its own account, as kubeadm
            f"--cluster-cidr={POD_RANGE}",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--profiling=false",
            # The HPA looks every 2 s instead of 15 s: a test of autoscaling waits seconds, not minutes.
            "--horizontal-pod-autoscaler-sync-period=2s",
        )
        self._launch(
            "kube-scheduler",
            f"--kubeconfig={self._kubeconfig(self.folder / 'scheduler.kubeconfig', pki.SCHEDULER)}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--profiling=false",
        )
        stages = self.folder / "kwok-stages.yaml"
        defaults = subprocess.run([str(BINARY), "kwok-stages"], capture_output=True, check=True).stdout
        stages.write_text(yaml.safe_dump_all(with_slow_pods(list(yaml.safe_load_all(defaults)))))
        self._launch(
            "kwok",
            f"--kubeconfig={self._kubeconfig(self.folder / 'kwok.kubeconfig', pki.KWOK)}",
            f"--config={stages}",
            "--manage-all-nodes=true",
            # The heartbeat stage renews a Lease per node; without a lease duration it renews none, the
            # node controller finds every node silent after 40 s and marks all their pods NotReady.
            "--node-lease-duration-seconds=40",
            f"--cidr={POD_RANGE}",
            "--server-address=",  # no metrics or exec server: nothing here asks for one
        )
        self._wait_for(
            lambda: self.client().exists("serviceaccounts", "default", "default"),
            "the default ServiceAccount (made by kube-controller-manager)",
        )
        admin = self.client()
        for index in range(self.nodes):
            admin.apply(self.node(f"gpu-node-{index}"))
        self._wait_for(self._nodes_ready, f"{self.nodes} Ready nodes (KWOK)")

    # ----- the cluster as a test uses it ---------------------------------------------------------
    def node(self, name: str) -> dict[str, Any]:
        """A KWOK node with GPUs (the annotation tells KWOK to play its kubelet)."""
        capacity = {"cpu": "64", "memory": "512Gi", "pods": "110", GPU: str(self.gpus_per_node)}
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {"kubernetes.io/hostname": name, "type": "kwok", "nvidia.com/gpu.present": "true"},
            },
            "spec": {},
            "status": {"capacity": capacity, "allocatable": capacity},
        }

    def client(self) -> kube.Kube:
        """The administrator's client (a `system:masters` certificate)."""
        return kube.Kube(self.url, self._admin_tls())

    def write_kubeconfig(
        self, path: pathlib.Path, *, namespace: str = "default", token: str = "", server: str = ""
    ) -> pathlib.Path:
        """A kubeconfig for this cluster (or `server`, a proxy in front of it): the administrator's
        certificate, or `token` when given."""
        user: dict[str, str] = {"token": token} if token else self._certificate(pki.ADMIN)
        return self._write_kubeconfig(path, "admin" if not token else "token", user, namespace, server)

    def serving_tls(self) -> tuple[str, str]:
        """The API server's certificate and key files (for a test's own server the cluster calls)."""
        assert self._files is not None
        return str(self._files.serving), str(self._files.key)

    def fault_proxy(self) -> faultproxy.FaultProxy:
        """A fault-injecting proxy in front of this API server, serving the API server's certificate."""
        assert self._files is not None
        files = self._files
        return faultproxy.FaultProxy(self.url, str(files.ca), str(files.serving), str(files.key))

    # ----- helpers -------------------------------------------------------------------------------
    def _launch(self, name: str, *args: str) -> None:
        log = (self.folder / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [str(BINARY), name, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.folder,
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(self.folder)},
        )
        log.close()

    def _scratch(self, name: str) -> pathlib.Path:
        """etcd's data: in memory when the machine has /dev/shm (etcd writes on every change)."""
        shm = pathlib.Path("/dev/shm")
        base = shm if shm.is_dir() and os.access(shm, os.W_OK) else self.folder
        path = base / f"modelrelease-{os.getpid()}-{self.port or id(self)}-{name}"
        path.mkdir(parents=True, exist_ok=True)
        self._scratches.append(path)
        return path

    def _kubeconfig(self, path: pathlib.Path, identity: pki.Identity) -> pathlib.Path:
        return self._write_kubeconfig(path, identity.user, self._certificate(identity), "default")

    def _certificate(self, identity: pki.Identity) -> dict[str, str]:
        assert self._files is not None
        return {"client-certificate": str(self._files.client(identity)), "client-key": str(self._files.key)}

    def _write_kubeconfig(
        self, path: pathlib.Path, user_name: str, user: dict[str, str], namespace: str, server: str = ""
    ) -> pathlib.Path:
        assert self._files is not None
        cluster = {"server": server or self.url, "certificate-authority": str(self._files.ca)}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "modelrelease-test", "cluster": cluster}],
            "users": [{"name": user_name, "user": user}],
            "contexts": [
                {
                    "name": "modelrelease-test",
                    "context": {"cluster": "modelrelease-test", "user": user_name, "namespace": namespace},
                }
            ],
            "current-context": "modelrelease-test",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def _admin_tls(self) -> ssl.SSLContext:
        assert self._files is not None
        context = ssl.create_default_context(cafile=str(self._files.ca))
        context.load_cert_chain(str(self._files.client(pki.ADMIN)), str(self._files.key))
        return context

    def _nodes_ready(self) -> bool:
        nodes = self.client().objects("nodes")
        ready = [
            n
            for n in nodes
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]
        return len(ready) >= self.nodes

    def _wait(self, url: str, what: str) -> None:
        def answered() -> bool:
            request = urllib.request.Request(url)
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(request, context=self._admin_tls(), timeout=2) as answer,
            ):
                return bool(answer.status == 200)
            return False

        self._wait_for(answered, f"{what} at {url}")

    def _wait_for(self, condition: Callable[[], bool], what: str) -> None:
        """Poll a starting process's readiness with a deadline, failing at once if any of ours exited."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            self._check_alive()
            with contextlib.suppress(OSError, urllib.error.URLError):
                if condition():
                    return
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"not within {START_TIMEOUT:.0f} s: {what}\n{self._log_tails()}")
            time.sleep(0.1)  # a starting server's readiness has no event to wait on

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with {process.returncode} while the control plane started; "
                    f"the end of {self.folder / (name + '.log')}:\n{_tail(self.folder / (name + '.log'))}"
                )

    def _log_tails(self) -> str:
        return "\n".join(f"--- {name}:\n{_tail(self.folder / (name + '.log'))}" for name in self.processes)


def _tail(path: pathlib.Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError as error:
        return f"(unreadable: {error})"


def free_ports(count: int) -> list[int]:
    """Ports the kernel has just handed out, held together so they differ from one another."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
