"""The controller process is SIGKILLed at seeded points and restarted: nothing repeats, nothing is skipped.

Kill points are counted in the controller's own API writes (seeded random gaps of 1–4 writes), so
they land between any two of its actions, including between a Deployment write and the status
write that records it. Every rollout must end as the same rollout run without kills ends.
"""

from __future__ import annotations

import collections
import pathlib
import random
from typing import Any

from tests.cluster import harness

SEED = 20261123
MIN_KILLS = 20
# version → scripted verdict; the third rollout is rolled back, the others promoted
ROLLOUTS = (("2", "Pass"), ("3", "Fail"), ("4", "Pass"), ("5", "Pass"), ("6", "Pass"), ("7", "Pass"))
STEPS = [{"setWeight": 25}, {"analysis": {"template": "quality", "maxDuration": "10m"}}, {"setWeight": 50}]


def _controller_writes(world: harness.World) -> int:
    return len(world.controller_writes())


def _summary(world: harness.World) -> dict[str, Any]:
    status = world.status("ranker")
    return {
        "phase": status["phase"],
        "reason": status.get("reason"),
        "stableModelVersion": status["stableModelVersion"],
        "stableRevision": status["stableRevision"],
        "deployments": sorted(world.deployments()),
        "selector": world.service("ranker")["spec"]["selector"],
        "rolledBack": (status.get("lastRollback") or {}).get("revision"),
    }


def _run(
    world: harness.World, controller: harness.Controller, kills: list[int] | None
) -> list[dict[str, Any]]:
    """Deploy v1 then each rollout; with `kills`, SIGKILL + restart at each seeded write count."""
    rng = random.Random(SEED)
    summaries = []
    world.script_analysis({"1": "Pass", **dict(ROLLOUTS)})
    world.create(
        harness.release_body("ranker", "1", strategy={"canary": {"steps": STEPS, "scaleDownDelay": "0s"}})
    )
    world.wait_for_phase("ranker", "Succeeded")
    for version, verdict in ROLLOUTS:
        world.patch_release("ranker", {"spec": {"model": {"version": version}}})
        ended = "Succeeded" if verdict == "Pass" else "RolledBack"

        def finished(version: str = version, ended: str = ended) -> bool:
            status = world.status("ranker")
            return (
                status.get("phase") == ended
                and status.get("canaryModelVersion", version) == version
                and (ended != "Succeeded" or status.get("stableModelVersion") == version)
                and not status.get("registryOwed")  # the registry has been told how it ended
            )

        while kills is not None and not finished():
            target = _controller_writes(world) + rng.randint(1, 4)
            try:
                reached = world.wait_until(
                    lambda target=target: finished() or _controller_writes(world) >= target,
                    timeout=60,
                    what=f"controller write {target}",
                )
            except TimeoutError as exc:
                raise TimeoutError(f"{exc}; status {world.status('ranker')}") from None
            if reached and not finished():
                controller.kill()
                kills.append(target)
                controller.start()
        world.wait_until(finished, timeout=60, what=f"rollout of {version} ends {ended}")
        world.wait_until(lambda: len(world.deployments()) == 1, timeout=60, what="no orphan Deployments")
        summaries.append(_summary(world))
    return summaries


def _said(world: harness.World) -> collections.Counter[str]:
    """How often each reason was said (messages carry timestamps, which differ between runs)."""
    return collections.Counter(e["reason"] for e in world.events())


def test_killed_and_restarted_controller_ends_every_rollout_as_an_uninterrupted_one(
    real_cluster: harness.Cluster, tmp_path: pathlib.Path
) -> None:
    calm = harness.World(real_cluster, tmp_path / "calm")
    controller = harness.Controller(calm, tmp_path / "calm.log").start()
    try:
        expected = _run(calm, controller, kills=None)
    finally:
        controller.stop()
    expected_said = _said(calm)
    calm.close()
    world = harness.World(real_cluster, tmp_path / "rough")
    controller = harness.Controller(world, tmp_path / "rough.log").start()
    kills: list[int] = []
    try:
        observed = _run(world, controller, kills)
    finally:
        controller.stop()

    assert len(kills) >= MIN_KILLS, f"only {len(kills)} kill points were reached"
    assert observed == expected
    # Each revision's Deployment was created once: no step was executed again after a restart.
    created = collections.Counter(w.name for w in harness.successful(world, "create", "deployments"))
    assert set(created.values()) == {1}
    # Nothing was said twice and nothing left unsaid: each reason as often as in the uninterrupted run,
    # however often each Event was posted (rollouts of different revisions may say the same words).
    assert _said(world) == expected_said
    status = world.status("ranker")
    assert len(status["notifications"]) == len(set(status["notifications"]))
    # Steps only moved forward within each attempt, as recorded by every status write.
    steps: dict[tuple[str, int], list[int]] = collections.defaultdict(list)
    for write in harness.successful(world, "patch", "modelreleases"):
        recorded = (write.object or {}).get("status") or {}
        if write.subresource == "status" and recorded.get("currentStepIndex") is not None:
            steps[(recorded.get("canaryRevision"), recorded.get("attempt"))].append(
                recorded["currentStepIndex"]
            )
    assert all(indexes == sorted(indexes) for indexes in steps.values())
    world.close()
