"""The benchmarks' cluster: a real control plane (tests/controlplane, built by `make controlplane`)
with our CRDs and deploy/'s RBAC installed, the controller's kubeconfig as deploy/'s ServiceAccount,
and what the controller asked of the API server read back from the server's audit log."""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
from collections.abc import Iterator
from datetime import datetime

from controller.tooling import processes
from tests.cluster import access, harness
from tests.controlplane import audit
from tests.controlplane.kube import Kube

ROOT = pathlib.Path(__file__).resolve().parents[2]


class BenchCluster:
    def __init__(self, running: harness.Cluster, folder: pathlib.Path) -> None:
        self.cluster = running
        self.kube: Kube = running.kube
        self.folder = folder
        self.audit = audit.AuditLog(running.plane.audit_log)
        token = running.token(access.ACCOUNT_NAMESPACE, access.ACCOUNT_NAME, seconds=24 * 3600)
        self.controller_kubeconfig = running.plane.write_kubeconfig(
            folder / "controller.kubeconfig", token=token
        )
        self.admin_kubeconfig = running.plane.write_kubeconfig(folder / "admin.kubeconfig")
        # Where a namespace's GitSources read their webhook Secrets, an administrator binds the reader.
        self.kube.apply(access.secret_binding("default"))

    def controller_calls(self, since: datetime | None = None) -> list[audit.Call]:
        """Every request the controller's ServiceAccount made (from `since`), as the server logged it."""
        return [
            call
            for call in self.audit.calls()
            if call.user == access.CONTROLLER_USER and (since is None or call.at >= since)
        ]

    def start_controller(
        self, log: pathlib.Path, *flags: str, scripted: bool = True
    ) -> subprocess.Popen[bytes]:
        """The controller process as deploy/'s ServiceAccount, cluster-wide and standalone."""
        with log.open("ab") as out:
            return subprocess.Popen(
                processes.controller_command(
                    self.controller_kubeconfig, "--standalone", *flags, scripted=scripted
                ),
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )


@contextlib.contextmanager
def running(folder: pathlib.Path, *, nodes: int = 4, gpus_per_node: int = 8) -> Iterator[BenchCluster]:
    """A started cluster of `nodes` KWOK nodes with `gpus_per_node` GPUs each, stopped on leaving."""
    started = harness.Cluster(folder / "controlplane", nodes=nodes, gpus_per_node=gpus_per_node)
    try:
        started.start()
        yield BenchCluster(started, folder)
    finally:
        started.stop()
