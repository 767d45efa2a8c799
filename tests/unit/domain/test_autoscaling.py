"""A release resized (an HPA, `kubectl scale`: `spec.serving.replicas` through `/scale`) between and
during rollouts: each step keeps its split of the size now, inside the budget of the size now."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from controller.resources import commands, releasestatus
from tests.unit.domain import builders
from tests.unit.domain import world as w

Phase = releasestatus.Phase
STEPS = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}]
EXTRA = 2
REPLICAS = {"replicas": {}}


def sizes(run: w.Run) -> tuple[int, int]:
    """(canary, stable) replicas the world runs now, each counted only once Ready."""
    st = run.status
    assert st.stable_revision is not None
    assert st.canary_revision is not None
    canary = run.world.deployments.get(w.workload(st.canary_revision))
    stable = run.world.deployments[w.workload(st.stable_revision)]
    ready = run.world.ready_replicas
    return (ready(canary) if canary else 0, ready(stable))


def resize(run: w.Run, replicas: int) -> None:
    """The scale subresource writes spec.serving.replicas; nothing else in the spec moves."""
    run.set_spec(
        run.spec.model_copy(update={"serving": run.spec.serving.model_copy(update={"replicas": replicas})})
    )


def paused_at_25(replicas: int = 4) -> w.Run:
    world = w.World(model_version="6")
    spec = builders.release_spec(
        version="6", replicas=replicas, steps=STEPS, router=REPLICAS, max_extra_gpus=EXTRA
    )
    run = w.Run(spec, world).settle()
    world.model_version = "7"
    run.set_spec(
        builders.release_spec(
            version="7", replicas=replicas, steps=STEPS, router=REPLICAS, max_extra_gpus=EXTRA
        )
    )
    return run.in_phase(Phase.PAUSED)


@pytest.mark.parametrize("size", [8, 2, 5, 1, 12])
def test_a_paused_canary_resized_keeps_its_replica_split_of_the_new_size_inside_that_sizes_budget(
    size: int,
) -> None:
    run = paused_at_25()
    before = run.world.total_gpus()
    # While the old size's Deployments shrink, nothing may grow past what ran or the new budget allows.
    run.world.gpu_budget = max(before, size + EXTRA)
    resize(run, size)
    want = (max(1, math.ceil(size * 25 / 100)), max(1, size - math.floor(size * 25 / 100)))
    run.until(lambda r: sizes(r) == want and r.world.total_gpus() == sum(want), limit=timedelta(minutes=10))
    assert run.world.total_gpus() <= size + EXTRA
    canary, stable = want
    assert abs(canary / (canary + stable) * size - size * 25 / 100) <= 1, "the split is kept within one pod"
    assert run.status.phase == Phase.PAUSED
    assert run.status.canary_weight == 25


def test_a_step_the_new_size_cannot_fit_waits_without_rolling_back_and_goes_on_when_it_fits() -> None:
    run = paused_at_25()
    resize(run, 16)  # the paused step fits (4 canary, 12 stable: 16 of 18 GPUs) ...
    run.until(lambda r: sizes(r) == (4, 12))
    # ... and so does setWeight 50 (8 and 8); the promotion does not: 16 canary beside the 8 stable
    # still serving 50 % would be 24 of 18 GPUs.
    run.world.commands = run.world.commands.with_token(commands.Command.PROMOTE, "t1")
    run.until(lambda r: r.status.reason == "ResizeWaiting")
    assert sizes(run) == (8, 8)
    held = {name: d.replicas for name, d in run.world.deployments.items()}
    waiting_since = run.world.now
    run.until(lambda r: r.world.now >= waiting_since + timedelta(hours=1), limit=timedelta(hours=2))
    assert run.status.phase == Phase.PROMOTING
    assert (
        "at 16 replicas the rollout does not fit its GPU budget, so it waits: promotion" in run.status.message
    )
    assert {name: d.replicas for name, d in run.world.deployments.items()} == held, "nothing grew"
    assert run.status.stable_model_version == "6", "nor was it rolled back or promoted"
    resize(run, 4)  # the autoscaler scales back: at 4 the promotion fits (4 canary + 2 stable = 6)
    run.settle()
    said = [e.reason for d in run.decisions for e in d.events]
    assert said.count("ResizeWaiting") == 1
    assert said.count("ResizeFits") == 1
    assert run.status.phase == Phase.SUCCEEDED
    assert run.status.stable_model_version == "7"
    assert run.world.total_gpus() == 4


def test_between_rollouts_the_stable_follows_the_size_and_status_says_it_for_scale() -> None:
    world = w.World(model_version="6")
    run = w.Run(builders.release_spec(version="6", steps=STEPS, router=REPLICAS), world).settle()
    assert run.status.replicas == 4
    resize(run, 7)
    run.settle()
    assert run.world.total_gpus() == 7
    assert run.status.replicas == 7
    assert run.status.selector == run.world.observe().pod_selector
