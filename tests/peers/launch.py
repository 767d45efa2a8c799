"""Flagger and Argo Rollouts on the tests' control plane: their CRDs from their own Go modules, their
controllers as child processes built by `make peers`, each configured from a kubeconfig as its
documentation says an out-of-cluster controller is."""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
from typing import Any

from controller.tooling import processes
from tests.controlplane import thirdparty

HERE = pathlib.Path(__file__).resolve().parent
BIN = HERE / "bin"
FLAGGER = ("github.com/fluxcd/flagger", "v1.44.0")
ARGO_ROLLOUTS = ("github.com/argoproj/argo-rollouts", "v1.9.2")


def flagger_crds() -> list[dict[str, Any]]:
    return thirdparty.crds_in(thirdparty.module_dir(*FLAGGER) / "artifacts" / "flagger" / "crd.yaml")


def argo_rollouts_crds() -> list[dict[str, Any]]:
    """Every CRD Argo Rollouts ships: its controller waits for an informer on each (Experiments and
    ClusterAnalysisTemplates included) before it reconciles anything."""
    folder = thirdparty.module_dir(*ARGO_ROLLOUTS) / "manifests" / "crds"
    return [doc for path in sorted(folder.glob("*-crd.yaml")) for doc in thirdparty.crds_in(path)]


@dataclasses.dataclass
class Peer:
    """A peer's controller process; `stop` ends it (SIGTERM, then SIGKILL)."""

    name: str
    process: subprocess.Popen[bytes]
    log: pathlib.Path

    def stop(self) -> None:
        processes.stop(self.process)


def _binary(name: str) -> pathlib.Path:
    path = BIN / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: `make peers` builds it from the Go module proxy")
    return path


def _start(name: str, command: list[str], log: pathlib.Path, ready_url: str) -> Peer:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    peer = Peer(name, process, log)
    try:
        processes.wait_ready(process, ready_url, log, timeout=60, what=name)
    except RuntimeError:
        peer.stop()
        raise
    return peer


def start_flagger(
    kubeconfig: pathlib.Path,
    log: pathlib.Path,
    *,
    namespace: str,
    prometheus: str,
    port: int,
    mesh_provider: str = "kubernetes",
    control_loop_interval: str = "10s",
) -> Peer:
    """Flagger watching one namespace ("" every one), asking `prometheus` for its checks (its flags,
    cmd/flagger). The primary's pods keep our release label (`-include-label-prefix`): Flagger copies
    no other label to them by default, and the fleet serves a release's pods by that label."""
    command = [
        str(_binary("flagger")),
        f"-kubeconfig={kubeconfig}",
        *([f"-namespace={namespace}"] if namespace else []),
        f"-metrics-server={prometheus}",
        f"-mesh-provider={mesh_provider}",
        f"-port={port}",
        "-log-level=info",
        "-enable-config-tracking=false",
        "-include-label-prefix=modelrelease.dev",
        # Flagger advances a canary at most once per control loop (default 10 s), whatever its
        # analysis interval: a benchmark that compresses time must compress this too.
        f"-control-loop-interval={control_loop_interval}",
    ]
    return _start("flagger", command, log, f"http://127.0.0.1:{port}/healthz")


def start_argo_rollouts(
    kubeconfig: pathlib.Path, log: pathlib.Path, *, namespace: str, healthz_port: int, metrics_port: int
) -> Peer:
    """The Argo Rollouts controller in namespaced mode (no cluster-wide RBAC), one namespace; with
    `namespace` "", cluster-wide."""
    command = [
        str(_binary("rollouts-controller")),
        f"--kubeconfig={kubeconfig}",
        *([f"--namespace={namespace}", "--namespaced"] if namespace else []),
        f"--healthzPort={healthz_port}",
        f"--metricsPort={metrics_port}",
        "--leader-elect=false",
        "--loglevel=info",
    ]
    return _start("argo-rollouts", command, log, f"http://127.0.0.1:{healthz_port}/healthz")
