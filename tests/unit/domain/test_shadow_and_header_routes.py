"""Shadow and header-route steps in the pure core: a shadow mirrors to a canary that serves no user
and is judged there first; a header route sends a cohort until a later setWeight; the replica
router refuses both, naming the step."""

from __future__ import annotations

import re
from typing import Any

import pydantic
import pytest

from analysis import verdicts
from controller.domain import actions, planning
from controller.resources import modelrelease, releasestatus
from tests.unit.domain import builders
from tests.unit.domain import world as w

Phase = releasestatus.Phase
Verdict = verdicts.Verdict
SHADOW = {"shadow": {"percent": 50, "analysis": {"template": "agreement", "maxDuration": "10m"}}}
COHORT = {"setHeaderRoute": {"match": [{"header": "x-cohort", "exact": "beta"}]}}


def serving(steps: list[dict[str, Any]]) -> w.Run:
    world = w.World(model_version="6")
    run = w.Run(builders.release_spec(version="6", steps=steps), world).settle()
    world.model_version = "7"
    world.log.clear()
    run.set_spec(builders.release_spec(version="7", steps=steps))
    return run


def traffic(run: w.Run) -> list[actions.SetTrafficWeight]:
    return [a for a in run.world.executed(actions.SetTrafficWeight) if a.canary_revision]


def test_a_shadow_mirrors_to_a_canary_without_users_judges_it_there_then_the_canary_steps_follow() -> None:
    run = serving([SHADOW, {"setWeight": 50}])
    run.settle()
    assert run.status.phase == Phase.SUCCEEDED
    routed = traffic(run)
    assert (routed[0].canary_weight, routed[0].mirror_percent) == (0, 50), "mirror first, no users"
    [started] = run.world.executed(actions.StartAnalysis)
    mirror_on = next(t for t, a in run.world.log if a in routed and a.mirror_percent)
    analysis_at = next(t for t, a in run.world.log if a == started)
    assert analysis_at >= mirror_on, "judged only once the mirror is on"
    # The shadow passed: the mirror goes, then users come with the setWeight.
    assert [(a.canary_weight, a.mirror_percent) for a in routed[1:3]] == [(0, 0), (50, 0)]
    [created] = run.world.executed(actions.CreateWorkload)
    assert created.replicas == 2, "sized for half of the load of the stable's 4 replicas"


def test_a_shadow_that_fails_rolls_back_before_any_user_request_reaches_the_canary() -> None:
    run = serving([SHADOW, {"setWeight": 50}])
    run.world.verdict = w.always(Verdict.FAIL)
    run.settle()
    assert run.status.phase == Phase.ROLLED_BACK
    assert all(a.canary_weight == 0 for a in traffic(run)), "no user request ever went to the canary"


def test_a_header_route_sends_the_cohort_until_the_next_set_weight_clears_it() -> None:
    run = serving([{"setWeight": 10}, COHORT, {"pause": {"duration": "1m"}}, {"setWeight": 50}])
    run.settle()
    assert run.status.phase == Phase.SUCCEEDED
    cohort = modelrelease.SetHeaderRoute.model_validate(COHORT["setHeaderRoute"])
    routed = [(a.canary_weight, a.header_route) for a in traffic(run)]
    # The weight a setWeight step sets is in force from the next step: here with the cohort.
    assert routed[routed.index((10, cohort)) :] == [(10, cohort), (10, None), (50, None)]


def test_a_shadows_gpus_are_planned_like_a_canary_at_its_percent() -> None:
    spec = builders.release_spec(steps=[SHADOW, {"setWeight": 50}], max_extra_gpus=4)
    plan = planning.plan_rollout(spec, planning.StableFootprint(replicas=4, gpus_per_replica=1))
    assert isinstance(plan, planning.RolloutPlan)
    shadow = plan.steps[0]
    assert (shadow.kind, shadow.canary_replicas, shadow.stable_replicas, shadow.mirror) == (
        planning.StepKind.SHADOW,
        2,
        4,
        50,
    )
    assert shadow.canary_replicas + shadow.stable_replicas == 6, "the shadow's GPUs: 2 mirrored + 4 stable"
    tight = builders.release_spec(steps=[SHADOW], max_extra_gpus=1)
    refused = planning.plan_rollout(tight, planning.StableFootprint(replicas=4, gpus_per_replica=1))
    assert isinstance(refused, planning.Refusal)
    assert "step 0 (shadow 50%, analysis agreement)" in refused.message


@pytest.mark.parametrize(
    ("steps", "said"),
    [
        ([SHADOW], "steps[0] (shadow 50%, analysis agreement): the replicas router cannot mirror traffic"),
        ([COHORT], "steps[0] (setHeaderRoute header x-cohort = 'beta'): the replicas router cannot route by"),
    ],
)
def test_the_replica_router_refuses_shadows_and_header_routes_naming_the_step(
    steps: list[dict[str, Any]], said: str
) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(said)):
        builders.release_spec(steps=steps, router={"replicas": {}})


def test_a_shadow_after_users_reached_the_canary_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="put it before the first setWeight above 0"):
        builders.release_spec(steps=[{"setWeight": 10}, SHADOW])


def test_a_new_version_starting_with_a_shadow_takes_traffic_off_the_previous_canary_before_removing_it() -> (
    None
):
    # Found by the property tests: the shadow's mirror waits for the new canary to be Ready, and
    # the old canary (still at 20 %) was deleted meanwhile. The world raises if traffic ever goes
    # to a workload that is not Ready.
    steps: list[dict[str, Any]] = [SHADOW, {"setWeight": 20}, {"pause": {}}, {"setWeight": 50}]
    run = serving(steps)
    run.until(lambda r: r.world.traffic is not None and r.world.traffic.canary_weight == 20)
    run.world.model_version = "8"
    run.set_spec(builders.release_spec(version="8", steps=steps))  # model 8 while 7 is at 20 %
    run.until(lambda r: r.world.traffic is not None and r.world.traffic.mirror_percent == 50)
    assert run.world.traffic is not None
    assert run.world.traffic.canary_weight == 0
