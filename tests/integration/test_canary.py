"""Canary rollouts end to end: the real controller process, Kopf over HTTP, the emulated cluster."""

from __future__ import annotations

from tests.integration import harness


def test_first_deploy_then_canary_promotes_and_retires_the_old_stable(
    world: harness.World, controller: harness.Controller
) -> None:
    world.script_analysis({"default": "Pass"})
    world.create(harness.release_body("ranker", "1"))
    first = world.wait_for_phase("ranker", "Succeeded")
    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
    done = world.wait_for_status(
        "ranker",
        lambda s: s.get("phase") == "Succeeded" and s.get("stableRevision") != first["stableRevision"],
    )
    assert done["stableModelVersion"] == "2"
    world.sandbox.wait_until(lambda: len(world.deployments()) == 1, timeout=30, what="old stable retired")
    (only,) = world.deployments().values()
    assert only["metadata"]["labels"]["modelrelease.dev/revision"] == done["stableRevision"]
