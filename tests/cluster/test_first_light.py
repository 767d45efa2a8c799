"""A first rollout on the real control plane: the release's Deployments become real ReplicaSets and
KWOK pods, and the controller promotes through a scripted analysis as deploy/'s ServiceAccount."""

from __future__ import annotations

from tests.cluster import harness


def test_a_canary_rollout_is_promoted_on_the_real_control_plane(
    world: harness.World, controller: harness.Controller
) -> None:
    world.script_analysis({"default": "Pass"})
    world.create(harness.release_body("ranker", "1"))
    world.wait_for_phase("ranker", "Succeeded")
    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
    done = world.wait_for_status(
        "ranker", lambda s: s.get("phase") == "Succeeded" and s.get("stableModelVersion") == "2"
    )
    assert [a["verdict"] for a in done["analysis"]] == ["Pass"]
    pods = world.objects("pods")
    assert pods
    assert all(p["spec"].get("nodeName") for p in pods)
