"""Benchmark (not a test): API requests per release per minute in each phase a release waits in.

    python -m controller.tooling.load_benchmark [--releases 1 50] [--window 60] [--poll-interval 30]
                                        [--out docs/benchmarks.md]

Starts the real control plane (tests/controlplane) and the controller process as deploy/'s
ServiceAccount (Kopf, the production default poll interval), brings N releases into each phase in
turn and counts every request of the controller's that the API server's audit log records as completed
in a window (the reconciler's and Kopf's own: watches, finalizers), with the controller's CPU time. A
release that waits — stable and idle, analysing with no verdict yet, paused at a gate, stepping while
canary pods load — must cost requests per poll interval, not per CPU cycle.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import math
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from analysis import markdown
from controller.tooling import benchcluster, processes
from tests.controlplane import cluster
from tests.controlplane.kube import wait_until

GROUP = "modelrelease.dev"
STEPS = [
    {"setWeight": 25},
    {"analysis": {"template": "quality", "maxDuration": "2h"}},
    {"setWeight": 50},
    {"pause": {}},
]
PHASES = ("idle", "analysing", "paused", "stepping")


@dataclasses.dataclass(frozen=True)
class Window:
    phase: str
    releases: int
    seconds: float
    requests: int
    cpu_seconds: float
    kinds: tuple[tuple[str, int], ...] = ()  # the most frequent requests: ("patch modelreleases/status", n)

    @property
    def per_release_minute(self) -> float:
        return self.requests / self.releases / (self.seconds / 60)


def _release(index: int, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": f"bench-{index:03d}", "namespace": "default"},
        "spec": {
            "model": {"name": "bench", "version": version},
            "serving": {
                "image": "triton:24.08",
                "replicas": 2,
                "resources": {"limits": {"nvidia.com/gpu": 1}},
            },
            "strategy": {"canary": {"steps": STEPS, "scaleDownDelay": "0s"}},
            "gpuBudget": {"maxExtraGPUs": 2},
        },
    }


def _all(bench: benchcluster.BenchCluster, check: Callable[[dict[str, Any]], bool]) -> bool:
    releases = bench.kube.objects("modelreleases", "default", group=GROUP)
    return bool(releases) and all(check(r.get("status") or {}) for r in releases)


def _measure(bench: benchcluster.BenchCluster, pid: int, phase: str, releases: int, seconds: float) -> Window:
    began, cpu = datetime.now(UTC), processes.cpu_seconds(pid)
    time.sleep(seconds)  # the measuring window itself: requests and CPU are counted over it
    ended = datetime.now(UTC)
    requests = [call for call in bench.controller_calls(since=began) if call.at < ended]
    kinds = collections.Counter(f"{call.verb} {call.resource}" for call in requests).most_common(3)
    return Window(phase, releases, seconds, len(requests), processes.cpu_seconds(pid) - cpu, tuple(kinds))


def _loading_pods(bench: benchcluster.BenchCluster) -> int:
    """Pods of model 3 bound to a node and loading (KWOK holds their readiness for an hour)."""
    return sum(
        1
        for pod in bench.kube.objects("pods", "default")
        if cluster.READY_AFTER in (pod["metadata"].get("annotations") or {}) and pod["spec"].get("nodeName")
    )


def _patch_all(bench: benchcluster.BenchCluster, patch: dict[str, Any]) -> None:
    for release in bench.kube.objects("modelreleases", "default", group=GROUP):
        bench.kube.patch("modelreleases", "default", release["metadata"]["name"], patch, group=GROUP)


def run(releases: int, window: float, poll_interval: float) -> list[Window]:
    measured = []
    # The scheduler places every pod: 4 nodes with room for each release's peak (stable + 2 extra).
    gpus_per_node = max(8, math.ceil(releases * 4 / 4))
    with (
        tempfile.TemporaryDirectory() as scratch,
        benchcluster.running(pathlib.Path(scratch), gpus_per_node=gpus_per_node) as bench,
    ):
        log = pathlib.Path(scratch) / "controller.log"
        controller = bench.start_controller(log, "--poll-interval", str(poll_interval))
        try:
            for index in range(releases):
                bench.kube.create(_release(index, "1"))
            deadline = 120 + 5 * releases

            def every(check: Callable[[dict[str, Any]], bool], what: str) -> None:
                wait_until(lambda: _all(bench, check), timeout=deadline, what=what, every=0.5)

            every(lambda s: s.get("phase") == "Succeeded", "every release serving model 1")
            measured.append(_measure(bench, controller.pid, "idle", releases, window))

            _patch_all(bench, {"spec": {"model": {"version": "2"}}})
            every(lambda s: s.get("reason") == "Analysing", "every release analysing model 2")
            measured.append(_measure(bench, controller.pid, "analysing", releases, window))

            bench.kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "modelrelease-analysis-script", "namespace": "default"},
                    "data": {"2": "Pass"},
                }
            )
            every(lambda s: s.get("phase") == "Paused", "every release paused")
            measured.append(_measure(bench, controller.pid, "paused", releases, window))

            # Model 3's pods take an hour to become Ready (KWOK holds them): canary pods still loading.
            slow = {"serving": {"podAnnotations": {cluster.READY_AFTER: "1h"}}}
            _patch_all(bench, {"spec": {"model": {"version": "3"}, **slow}})
            every(lambda s: s.get("canaryModelVersion") == "3", "every release stepping to model 3")
            # Measured once every canary pod is bound to a node (loading): the window is the wait
            # itself, not the churn of creating a Deployment, its ReplicaSet and pods, and binding them.
            wait_until(
                lambda: _loading_pods(bench) >= releases, timeout=deadline, what="canary pods", every=0.5
            )
            measured.append(_measure(bench, controller.pid, "stepping", releases, window))
        finally:
            processes.stop(controller)
    return measured


def report(windows: Sequence[Window], command: str, poll_interval: float) -> str:
    lines = [
        "## Runtime: API requests per release per minute while releases wait",
        "",
        f"Command: `{command}`. The controller process (Kopf over HTTP, `--poll-interval {poll_interval:g}`)",
        "as deploy/'s ServiceAccount on the real control plane; each of its requests the audit log records",
        "as completed in the window, divided by releases",
        "and minutes (the reconciler's reads and writes, Kopf's watches and finalizer patches).",
        "Phases: idle = Succeeded; analysing = an analysis step with no verdict yet; paused = an",
        "indefinite pause step; stepping = a weight step waiting for canary pods that take an hour to load",
        "(measured once they are bound to nodes: the churn of creating them is not in the window).",
        "",
        "| releases | phase | requests / release / minute | controller CPU | most frequent requests |",
        "|---|---|---|---|---|",
    ]
    for w in windows:
        cpu = 100 * w.cpu_seconds / w.seconds
        kinds = ", ".join(f"{kind} {count}" for kind, count in w.kinds)
        lines.append(
            f"| {w.releases} | {w.phase} | {w.per_release_minute:.1f} | {cpu:.1f} % of a core | {kinds} |"
        )
    lines += [
        "",
        f"Bound: with a {poll_interval:g} s poll a waiting release is reconciled about "
        f"{60 / poll_interval:g} times a minute (plus once per watch event on it), each reconcile ≈ 6–8 "
        "requests. Before the fix",
        "(461b317) an analysing release made 300–600 requests per second.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller.tooling.load_benchmark", description=__doc__)
    parser.add_argument("--releases", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured per phase")
    parser.add_argument("--poll-interval", type=float, default=30.0)
    parser.add_argument("--out", type=pathlib.Path, help="Markdown file to update (docs/benchmarks.md)")
    args = parser.parse_args(argv)
    windows = [w for n in args.releases for w in run(n, args.window, args.poll_interval)]
    command = "python -m controller.tooling.load_benchmark " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    text = report(windows, command.strip(), args.poll_interval)
    print(text)
    if args.out:
        markdown.write_section(args.out, "api-load-benchmark", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
