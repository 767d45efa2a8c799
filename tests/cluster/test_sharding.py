"""Past one controller: shards split the releases by label (`--selector`), each shard a peering group
of its own with two replicas. No release is acted on by two shards, a release no shard selects is
left alone, killing a shard's acting replica mid-rollout leaves its releases to the survivor, and a
release from before shards had finalizers of their own loses the shared one (docs/operations.md,
"Sharding")."""

from __future__ import annotations

import pathlib
import time
from typing import Any

from controller.runtime import handlers
from tests.cluster import harness

SHARD = "modelrelease.dev/shard"
LIFETIME = "5"  # seconds a silent replica counts as alive (the default 60 s is production's failover)
# Two timed pauses: the rollout moves by itself, so a shard that stops acting shows as a stuck release.
STEPS = [{"setWeight": 25}, {"pause": {"duration": "3s"}}, {"setWeight": 50}, {"pause": {"duration": "3s"}}]
RELEASES = {"alpha-1": "a", "alpha-2": "a", "beta-1": "b", "beta-2": "b"}
UPGRADED = "beta-2"


def _release(name: str, version: str, shard: str | None) -> dict[str, Any]:
    body = harness.release_body(name, version, strategy={"canary": {"steps": STEPS}})
    if shard is not None:
        body["metadata"]["labels"] = {SHARD: shard}
    return body


def _writers(world: harness.World, name: str, since: int = 0) -> set[str]:
    """The credentials (one token per replica) that wrote the release, from the audit log."""
    return {
        call.credential
        for call in world.calls()[since:]
        if call.is_write
        and call.user == harness.CONTROLLER_USER
        and call.plural == "modelreleases"
        and call.name == name
        and call.code < 300
    }


def test_shards_split_releases_by_selector_and_a_shards_standby_takes_over_its_releases_after_a_kill(
    world: harness.World, tmp_path: pathlib.Path
) -> None:
    shards = {
        shard: [
            harness.Controller(
                world,
                tmp_path / f"shard-{shard}-{replica}.log",
                *("--selector", f"{SHARD}={shard}", "--peering", f"shard-{shard}"),
                *("--peering-lifetime", LIFETIME),
                standalone=False,
            ).start()
            for replica in range(2)
        ]
        for shard in ("a", "b")
    }
    credentials = {shard: {r.credential for r in replicas} for shard, replicas in shards.items()}
    try:

        def peering_groups() -> dict[str, int]:
            return {p["metadata"]["name"]: len(p.get("status") or {}) for p in world.objects("kopfpeerings")}

        world.wait_until(
            lambda: peering_groups() == {"shard-a": 2, "shard-b": 2},
            timeout=30,
            what="each shard's two replicas in its own peering object",
        )
        for name, shard in RELEASES.items():
            body = _release(name, "1", shard)
            if name == UPGRADED:  # created before the upgrade: it carries the shared finalizer
                body["metadata"]["finalizers"] = [handlers.LEGACY_FINALIZER]
            world.create(body)
        world.create(_release("unsharded", "1", None))
        for name in RELEASES:
            world.wait_for_phase(name, "Succeeded", timeout=60)

        settled = len(world.calls())
        for name in RELEASES:
            world.patch_release(name, {"spec": {"model": {"version": "2"}}})
        world.wait_for_status("alpha-1", lambda s: s.get("canaryModelVersion") == "2", timeout=30)
        # Shard a's acting replica: the one writing its releases now (Kopf pauses the other).
        (leader,) = _writers(world, "alpha-1", since=settled) or {""}
        acting = next(r for r in shards["a"] if r.credential == leader)
        acting.kill()
        killed_at = time.monotonic()
        killed = len(world.calls())
        for name in RELEASES:
            world.wait_for_status(name, lambda s: s.get("stableModelVersion") == "2", timeout=90)
        moving_again = time.monotonic() - killed_at
    finally:
        for replicas in shards.values():
            for replica in replicas:
                replica.stop()

    for name, shard in RELEASES.items():
        writers = _writers(world, name)
        assert writers, f"{name} was never written"
        assert writers <= credentials[shard], f"{name} (shard {shard}) written by another shard: {writers}"
    # The release from before the upgrade lost the shared finalizer to its shard's own, so a delete
    # never waits on a finalizer no controller removes.
    held = world.release(UPGRADED)["metadata"].get("finalizers")
    assert held == [handlers.finalizer_for({SHARD: "b"})], held
    # A release no shard selects is nobody's: no controller wrote it, it has no status.
    assert not _writers(world, "unsharded")
    assert not world.release("unsharded").get("status")
    # Shard a's releases finished under the survivor (within a few peering lifetimes of the kill),
    # and shard b never noticed.
    survivor = credentials["a"] - {leader}
    assert _writers(world, "alpha-1", since=killed) <= survivor
    assert _writers(world, "alpha-2", since=killed) <= survivor
    assert _writers(world, "alpha-1", since=killed), "the survivor never acted on alpha-1"
    assert moving_again < 4 * float(LIFETIME) + 20, f"shard a's releases took {moving_again:.0f} s"
    print(f"shard failover after kill -9 with --peering-lifetime {LIFETIME}: done in {moving_again:.1f} s")
