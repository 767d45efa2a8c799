"""Benchmark (not a test): reconcile latency and API writes per step transition, on a real cluster.

    python -m controller.tooling.runtime_benchmark [--rollouts N] [--out docs/benchmarks.md]

Runs the reconciler in-process (the same function the Kopf daemon calls) as deploy/'s ServiceAccount
against the real control plane (tests/controlplane, KWOK pods Ready about a second after binding),
rolls a release through N canary rollouts, and reports per reconcile the wall time, and per step
transition (a status write that moves the step or the phase) the controller's API writes since the
previous transition, split into workload, traffic, status and Events, as the API server's audit log
recorded them.
"""

from __future__ import annotations

import argparse
import functools
import logging
import pathlib
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from analysis import markdown
from controller.adapters import kubeapi, releases
from controller.runtime import operator, reconciler, settings
from controller.tooling import benchcluster, scripted_analysis
from tests.controlplane.kube import wait_until

STEPS = [
    {"setWeight": 10},
    {"setWeight": 25},
    {"analysis": {"template": "q", "maxDuration": "10m"}},
    {"setWeight": 50},
]


def _release(version: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": "bench", "namespace": "default"},
        "spec": {
            "model": {"name": "bench", "version": version},
            "serving": {
                "image": "triton:24.08",
                "replicas": 10,
                "resources": {"limits": {"nvidia.com/gpu": 1}},
            },
            "strategy": {"canary": {"steps": STEPS, "scaleDownDelay": "0s"}},
            "gpuBudget": {"maxExtraGPUs": 5},
        },
    }


def _category(write: Any) -> str:
    if write.plural == "modelreleases":
        return "status" if write.subresource == "status" else "release"
    names = {"deployments": "workload", "services": "traffic", "events": "events"}
    return str(names.get(write.plural, write.plural))


def run(rollouts: int) -> dict[str, Any]:
    logger = logging.getLogger("benchmark")
    with tempfile.TemporaryDirectory() as scratch, benchcluster.running(pathlib.Path(scratch)) as bench:
        config = settings.RuntimeSettings(kubeconfig=str(bench.controller_kubeconfig))
        api = operator.build_api(config)
        io = operator.build_ports(config, api, analysis_factory=scripted_analysis.scripted)
        admin = operator.build_api(settings.RuntimeSettings(kubeconfig=str(bench.admin_kubeconfig)))
        bench.kube.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "modelrelease-analysis-script", "namespace": "default"},
                "data": {"default": "Pass"},
            }
        )
        bench.audit.mark()
        bench.kube.create(_release("1"))
        latencies: list[float] = []
        transitions: list[dict[str, Any]] = []
        path = releases.release_path("default", "bench")
        _drive(io, api, logger, latencies, "1")
        for version in [str(v) for v in range(2, rollouts + 2)]:
            admin.merge_patch(path, {"spec": {"model": {"version": version}}})
            _drive(io, api, logger, latencies, version)
        writes = [w for w in bench.controller_calls() if w.is_write and w.code < 300]
        previous_key: tuple[Any, ...] | None = None
        since: dict[str, int] = {}
        for write in writes:
            category = _category(write)
            if category == "release":
                continue  # the benchmark's own spec edits, not the controller's
            since[category] = since.get(category, 0) + 1
            if category == "status":
                status = (write.object or {}).get("status") or {}
                key = (status.get("currentStepIndex"), status.get("phase"), status.get("reason"))
                if key != previous_key:
                    transitions.append({**since, "_label": f"{key[1]}/{key[2]} step {key[0]}"})
                    since = {}
                    previous_key = key
        return {"latencies": latencies, "transitions": transitions}


def _drive(
    io: Any, api: kubeapi.KubeApi, logger: logging.Logger, latencies: list[float], version: str
) -> None:
    path = releases.release_path("default", "bench")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        revision = api.get(path)["metadata"]["resourceVersion"]
        started = time.perf_counter()
        outcome = reconciler.reconcile_release(
            io, "default", "bench", clock=lambda: datetime.now(UTC), logger=logger
        )
        latencies.append(time.perf_counter() - started)
        status = api.get(path).get("status") or {}
        if (
            status.get("phase") == "Succeeded"
            and status.get("stableModelVersion") == version
            and not outcome.actions
        ):
            return
        if outcome.requeue_after == timedelta(0):
            continue
        wait = 0.5 if outcome.requeue_after is None else min(outcome.requeue_after.total_seconds(), 0.5)
        try:  # until the release changes (a pod became Ready, say), or the requeue is due
            wait_until(functools.partial(_changed, api, path, revision), timeout=wait, every=0.02)
        except TimeoutError:
            pass
    status = api.get(path).get("status") or {}
    raise TimeoutError(f"rollout to {version} did not finish: {status.get('phase')} {status.get('message')}")


def _changed(api: kubeapi.KubeApi, path: str, revision: str) -> bool:
    return bool(api.get(path)["metadata"]["resourceVersion"] != revision)


def _report(result: dict[str, Any], rollouts: int, command: str) -> str:
    latencies = sorted(result["latencies"])
    ms = [1000 * v for v in latencies]
    transitions = result["transitions"]
    kinds = ("workload", "traffic", "status")
    without_events = [sum(t.get(k, 0) for k in kinds) for t in transitions]
    categories = sorted({k for t in transitions for k in t if not k.startswith("_")})
    over = [(t["_label"], n) for t, n in zip(transitions, without_events, strict=True) if n > 3]
    lines = [
        "## Runtime: reconcile latency and API writes per step transition",
        "",
        f"Command: `{command}` ({rollouts} canary rollouts of 10 GPU replicas,",
        "steps 10 % → 25 % → analysis → 50 %, the real control plane on 127.0.0.1 (KWOK pods), as",
        "deploy/'s ServiceAccount; the reconciler runs in-process, as the Kopf daemon calls it; the writes",
        "are read from the API server's audit log).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| reconciles | {len(ms)} |",
        f"| reconcile latency median | {statistics.median(ms):.1f} ms |",
        f"| reconcile latency p90 | {ms[int(0.9 * (len(ms) - 1))]:.1f} ms |",
        f"| reconcile latency max | {ms[-1]:.1f} ms |",
        f"| step transitions | {len(transitions)} |",
        f"| writes per transition (workload, traffic, status) | {statistics.median(without_events):.0f} |",
        f"| … max | {max(without_events)} |",
        f"| transitions above 3 writes | {len(over)} of {len(transitions)} |",
        "",
        "Transitions above the goal of 3 writes: "
        + ("; ".join(f"{label}: {n}" for label, n in over) or "none")
        + ".",
        "",
        "Writes per transition by kind (sum over all transitions): "
        + ", ".join(f"{c} {sum(t.get(c, 0) for t in transitions)}" for c in categories)
        + ".",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m controller.tooling.runtime_benchmark", description=__doc__
    )
    parser.add_argument("--rollouts", type=int, default=5)
    parser.add_argument("--out", type=pathlib.Path, help="also write the report to this Markdown file")
    args = parser.parse_args(argv)
    result = run(args.rollouts)
    report = _report(
        result,
        args.rollouts,
        "python -m controller.tooling.runtime_benchmark " + " ".join(argv or sys.argv[1:]),
    )
    print(report)
    if args.out:
        markdown.write_section(args.out, "runtime-benchmark", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
