"""Replica plans under the GPU budget, and the routing of weights to replicas."""

from __future__ import annotations

from typing import Any

import pytest

from controller.domain import actions, planning
from controller.resources import releasestatus
from tests.unit.domain import builders
from tests.unit.domain import world as w

Phase = releasestatus.Phase


def plan(stable: tuple[int, int] = (4, 1), **spec: Any) -> planning.RolloutPlan | planning.Refusal:
    return planning.plan_rollout(builders.release_spec(**spec), planning.StableFootprint(*stable))


def sizes(result: planning.RolloutPlan | planning.Refusal) -> list[tuple[int, int, int]]:
    assert isinstance(result, planning.RolloutPlan), result
    return [(s.canary_replicas, s.stable_replicas, s.weight) for s in (*result.steps, result.promotion)]


@pytest.mark.parametrize(
    ("steps", "extra", "expected"),
    [
        # router-based weights: stable keeps what the budget leaves, at least its share of traffic
        ([{"setWeight": 25}, {"setWeight": 50}], 2, [(1, 4, 25), (2, 4, 50), (4, 2, 100)]),
        (
            [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}],
            4,
            [(1, 4, 10), (1, 4, 10), (2, 4, 50), (4, 4, 100)],
        ),
        ([{"setWeight": 50}], 2, [(2, 4, 50), (4, 2, 100)]),
        # no budget: stable is never shrunk
        ([{"setWeight": 25}], None, [(1, 4, 25), (4, 4, 100)]),
    ],
)
def test_router_plans_shrink_stable_only_as_far_as_the_budget_needs(
    steps: list[dict[str, Any]], extra: int | None, expected: list[tuple[int, int, int]]
) -> None:
    assert sizes(plan(steps=steps, max_extra_gpus=extra)) == expected


def test_replica_ratio_plans_approximate_the_weight_with_replicas() -> None:
    result = plan(steps=[{"setWeight": 25}, {"setWeight": 50}], router={"replicas": {}}, max_extra_gpus=None)
    assert sizes(result) == [(1, 3, 25), (2, 2, 50), (4, 4, 100)]


def test_a_jump_the_budget_cannot_carry_is_refused_with_the_step_and_the_arithmetic() -> None:
    result = plan(steps=[{"setWeight": 10}, {"setWeight": 100}], max_extra_gpus=2)
    assert isinstance(result, planning.Refusal)
    assert result.reason == "GPUBudgetExceeded"
    assert result.message == (
        "step 1 (setWeight 100): the canary needs 4×1 GPUs while stable still serves 90% and must keep "
        "4 of 4 replicas; the budget is 6 GPUs (stable 4×1 + maxExtraGPUs 2). Add a smaller setWeight "
        "step before it or raise maxExtraGPUs"
    )


def test_a_canary_whose_replicas_need_more_gpus_than_the_whole_budget_is_refused() -> None:
    result = plan(stable=(1, 1), replicas=1, gpus=8, max_extra_gpus=2, steps=[{"setWeight": 50}])
    assert isinstance(result, planning.Refusal)


def test_a_budget_on_cpu_only_serving_constrains_nothing() -> None:
    result = plan(stable=(4, 0), gpus=0, max_extra_gpus=None, steps=[{"setWeight": 10}, {"setWeight": 100}])
    assert sizes(result)[-1] == (4, 4, 100)


@pytest.mark.parametrize(
    "steps",
    [
        [{"setWeight": 25}, {"setWeight": 50}, {"setWeight": 75}],
        [{"setWeight": 50}, {"analysis": {"template": "t"}}],
        [{"setWeight": 20}, {"pause": {"duration": "1m"}}, {"setWeight": 50}, {"setWeight": 100}],
    ],
)
def test_a_rollout_never_requests_more_gpus_than_the_budget_at_any_moment(
    steps: list[dict[str, Any]],
) -> None:
    world = w.World(model_version="6", gpu_budget=6)
    run = w.Run(builders.release_spec(version="6", max_extra_gpus=2, steps=steps), world).settle()
    world.model_version = "7"
    run.set_spec(builders.release_spec(version="7", max_extra_gpus=2, steps=steps))
    run.settle()
    assert run.status.phase == Phase.SUCCEEDED
    assert world.peak_gpus == 6


def test_a_refused_plan_fails_before_anything_starts_and_keeps_stable_untouched() -> None:
    world = w.World(model_version="6")
    run = w.Run(builders.release_spec(version="6"), world).settle()
    world.model_version = "7"
    world.log.clear()
    run.set_spec(builders.release_spec(version="7", steps=[{"setWeight": 10}, {"setWeight": 100}]))
    decision = run.reconcile()
    assert run.status.phase == Phase.BLOCKED
    assert run.status.reason == "GPUBudgetExceeded"
    assert "step 1 (setWeight 100)" in run.status.message
    assert [type(a) for a in decision.actions] == [actions.Notify]
    assert run.status.canary_revision is None
    degraded = next(c for c in run.status.conditions if c.type == "Degraded")
    assert (degraded.status, degraded.reason) == ("True", "GPUBudgetExceeded")
    assert run.reconcile().actions == ()
    run.set_spec(
        builders.release_spec(version="7", max_extra_gpus=4, steps=[{"setWeight": 10}, {"setWeight": 100}])
    )
    run.settle()
    assert run.status.stable_model_version == "7", "a budget that fits lets the rollout start"


def test_replica_ratio_routing_moves_the_share_by_scaling_both_tracks() -> None:
    world = w.World(model_version="6")
    spec = {
        "router": {"replicas": {}},
        "max_extra_gpus": None,
        "steps": [{"setWeight": 25}, {"setWeight": 50}],
    }
    run = w.Run(builders.release_spec(version="6", **spec), world).settle()
    old_stable = w.workload(run.status.stable_revision or "")
    world.model_version = "7"
    world.log.clear()
    run.set_spec(builders.release_spec(version="7", **spec))
    run.settle()
    sizes = [
        (a.name == old_stable, a.replicas)
        for _, a in world.log
        if isinstance(a, actions.ScaleWorkload | actions.CreateWorkload)
    ]
    # 25 %: stable 3 beside 1 canary; 50 %: 2 beside 2; then the canary grows whole for promotion
    assert sizes[:4] == [(True, 3), (False, 1), (True, 2), (False, 2)]
