"""Rollouts end to end: the real controller process, Kopf, the real control plane."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from tests.cluster import harness
from tests.controlplane.kube import KubeError

KUBECTL = pathlib.Path(sys.executable).parent / "kubectl"
PAUSED_STEPS = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}]


def selects(world: harness.World, revision: str) -> None:
    """Wait until the production Service selects only `revision` (the last move may follow the phase)."""
    world.wait_until(
        lambda: world.service("ranker")["spec"]["selector"].get("modelrelease.dev/revision") == revision,
        timeout=30,
        what=f"production Service selects {revision}",
    )


def deploy_first(world: harness.World, name: str = "ranker", **spec: object) -> dict[str, object]:
    world.create(harness.release_body(name, "1", **spec))
    return world.wait_for_phase(name, "Succeeded")


def move_to(world: harness.World, version: str, name: str = "ranker") -> None:
    world.patch_release(name, {"spec": {"model": {"version": version}}})


def test_failed_analysis_returns_traffic_to_stable_before_the_canary_is_removed(
    world: harness.World, controller: harness.Controller
) -> None:
    world.script_analysis({"1": "Pass", "2": "Fail"})
    first = deploy_first(world)
    move_to(world, "2")
    rolled = world.wait_for_phase("ranker", "RolledBack")
    assert rolled["stableRevision"] == first["stableRevision"]
    canary = rolled["lastRollback"]["revision"]
    canary_workload = f"ranker-{canary}"
    world.wait_until(lambda: canary_workload not in world.deployments(), timeout=30, what="canary deleted")
    (deletion,) = harness.successful(world, "delete", "deployments", canary_workload)
    restore = [
        w
        for w in harness.successful(world, "patch", "services", "ranker")
        if w.object["spec"]["selector"].get("modelrelease.dev/revision") == first["stableRevision"]
        and w.seq > harness.successful(world, "create", "deployments", canary_workload)[0].seq
    ]
    assert restore, "the production Service never went back to the stable revision"
    assert restore[0].seq < deletion.seq
    assert max(harness.gpu_history(world)) <= 4 + 2


def test_canary_promotes_through_analysis_within_the_gpu_budget(
    world: harness.World, controller: harness.Controller
) -> None:
    world.script_analysis({"default": "Pass"})
    deploy_first(world)
    move_to(world, "2")
    done = world.wait_for_status(
        "ranker", lambda s: s.get("phase") == "Succeeded" and s.get("stableModelVersion") == "2"
    )
    assert [a["verdict"] for a in done["analysis"]] == ["Pass"]
    world.wait_until(lambda: len(world.deployments()) == 1, timeout=30, what="old stable retired")
    selects(world, done["stableRevision"])
    assert max(harness.gpu_history(world)) <= 4 + 2


def test_blue_green_switches_back_when_post_promotion_analysis_fails(
    world: harness.World, controller: harness.Controller
) -> None:
    world.script_analysis({"1": "Pass", "2": "Fail"})
    strategy = {
        "blueGreen": {
            "postPromotionAnalysis": {"template": "quality", "maxDuration": "10m"},
            "scaleDownDelay": "30s",
        }
    }
    first = deploy_first(world, strategy=strategy, gpuBudget={"maxExtraGPUs": 4})
    move_to(world, "2")
    rolled = world.wait_for_phase("ranker", "RolledBack")
    assert rolled["stableRevision"] == first["stableRevision"]
    selects(world, first["stableRevision"])
    switched = [
        w
        for w in harness.successful(world, "patch", "services", "ranker")
        if w.object["spec"]["selector"].get("modelrelease.dev/revision") == rolled["lastRollback"]["revision"]
    ]
    assert switched, "traffic never switched to the green revision before switching back"


def test_abort_rolls_back_and_retry_rolls_out_again_to_promotion(
    world: harness.World, controller: harness.Controller
) -> None:
    first = deploy_first(world, strategy={"canary": {"steps": PAUSED_STEPS, "scaleDownDelay": "0s"}})
    move_to(world, "2")
    world.wait_for_phase("ranker", "Paused")
    world.patch_release("ranker", {"metadata": {"annotations": {"modelrelease.dev/command-abort": "t1"}}})
    aborted = world.wait_for_phase("ranker", "RolledBack")
    assert aborted["reason"] == "Aborted"
    selects(world, first["stableRevision"])
    world.patch_release("ranker", {"metadata": {"annotations": {"modelrelease.dev/command-retry": "t2"}}})
    world.wait_for_status("ranker", lambda s: s.get("phase") == "Paused" and s.get("attempt", 0) >= 2)
    world.patch_release("ranker", {"metadata": {"annotations": {"modelrelease.dev/command-promote": "t3"}}})
    done = world.wait_for_status(
        "ranker", lambda s: s.get("phase") == "Succeeded" and s.get("stableModelVersion") == "2"
    )
    assert done["handledCommands"] == {"abort": "t1", "retry": "t2", "promote": "t3"}


def test_approval_gate_waits_for_an_approval_object_and_records_who_approved(
    world: harness.World, controller: harness.Controller
) -> None:
    steps = [{"setWeight": 25}, {"approval": {"slack": False}}, {"setWeight": 50}]
    deploy_first(world, strategy={"canary": {"steps": steps, "scaleDownDelay": "0s"}})
    move_to(world, "2")
    waiting = world.wait_for_phase("ranker", "AwaitingApproval")
    [asked] = [e for e in world.events() if e["reason"] == "ApprovalRequested"]
    assert f"waits for approval: kubectl modelrelease approve ranker -n {world.namespace}" in asked["message"]
    approval = {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "Approval",
        "metadata": {"name": "ranker-ok"},
        "spec": {
            "release": "ranker",
            "revision": waiting["canaryRevision"],
            "step": waiting["currentStepIndex"],
            "decision": "approve",
            "by": "ana@example.com",
            "identity": "kubernetes:someone-else",
        },
    }
    # deploy/'s admission policy, enforced by the real API server: an Approval counts as its creator.
    with pytest.raises(KubeError) as forged:
        world.create(approval)
    assert forged.value.code == 422
    assert "spec.identity must be kubernetes:kubernetes-admin" in forged.value.message
    approval["spec"]["identity"] = "kubernetes:kubernetes-admin"  # who the test's certificate says it is
    world.create(approval)
    done = world.wait_for_status(
        "ranker", lambda s: s.get("phase") == "Succeeded" and s.get("stableModelVersion") == "2"
    )
    assert [(a["by"], a["via"]) for a in done["approvals"]] == [("ana@example.com", "ranker-ok")]


def test_kubectl_get_mrel_shows_the_printer_columns(
    world: harness.World, controller: harness.Controller, kubeconfig: pathlib.Path
) -> None:
    deploy_first(world)
    shown = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "get", "mrel"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    header, row = shown.stdout.splitlines()
    assert header.split() == [
        "NAME",
        "PHASE",
        "STEP",
        "WEIGHT",
        "STABLE",
        "CANARY",
        "REPLICAS",
        "VERDICT",
        "AGE",
    ]
    assert row.split()[:2] == ["ranker", "Succeeded"]
    assert shown.stderr == ""


def _creations_per_deployment(world: harness.World) -> dict[str, int]:
    counts: dict[str, int] = {}
    for write in harness.successful(world, "create", "deployments"):
        counts[write.name] = counts.get(write.name, 0) + 1
    return counts
