"""Blue-green rollouts: full preview, pre-promotion analysis, switch, post-promotion analysis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from analysis import verdicts
from controller.domain import actions, naming
from controller.resources import releasestatus
from tests.unit.domain import builders
from tests.unit.domain import world as w

Phase = releasestatus.Phase
Verdict = verdicts.Verdict
ANALYSIS = {"template": "smoke", "maxDuration": "10m"}


def deployed(blue_green: dict[str, Any], **spec: Any) -> w.Run:
    world = w.World(model_version="6", gpu_budget=spec.pop("gpu_budget", None))
    kwargs = {"replicas": 2, "max_extra_gpus": 2, **spec}
    run = w.Run(builders.release_spec(version="6", blue_green=blue_green, **kwargs), world).settle()
    world.model_version = "7"
    world.log.clear()
    run.set_spec(builders.release_spec(version="7", blue_green=blue_green, **kwargs))
    return run


def weights(run: w.Run) -> list[tuple[str | None, int]]:
    return [(a.canary_revision, a.canary_weight) for a in run.world.executed(actions.SetTrafficWeight)]


def test_blue_green_brings_up_a_full_preview_without_traffic_then_switches_and_promotes() -> None:
    run = deployed({"prePromotionAnalysis": ANALYSIS, "postPromotionAnalysis": ANALYSIS}, gpu_budget=4)
    run.settle()
    new = naming.build_revision(run.spec.serving, "fraud", "7")
    [create] = run.world.executed(actions.CreateWorkload)
    assert create.replicas == 2, "the preview is full size by default"
    assert weights(run) == [(new, 0), (new, 100), (None, 0)]
    starts = run.world.executed(actions.StartAnalysis)
    assert [s.step_index for s in starts] == [1, 3]
    assert run.status.stable_model_version == "7"
    assert run.world.peak_gpus == 4


def test_the_preview_takes_no_traffic_until_pre_promotion_analysis_passes() -> None:
    run = deployed({"prePromotionAnalysis": ANALYSIS})
    run.until(lambda r: bool(r.status.analysis))
    assert run.world.traffic is not None
    assert run.world.traffic.canary_weight == 0
    run.settle()
    [switch_at] = [
        t for t, a in run.world.log if isinstance(a, actions.SetTrafficWeight) and a.canary_weight == 100
    ]
    assert switch_at - run.status.analysis[0].started_at >= timedelta(minutes=5)


def test_a_failed_pre_promotion_analysis_never_switches() -> None:
    run = deployed({"prePromotionAnalysis": ANALYSIS})
    run.world.verdict = w.always(Verdict.FAIL)
    run.settle()
    assert run.status.phase == Phase.ROLLED_BACK
    assert all(weight == 0 for _, weight in weights(run))


def test_a_failed_post_promotion_analysis_switches_back_before_scaling_the_new_version_down() -> None:
    run = deployed({"postPromotionAnalysis": ANALYSIS})

    def fail_after_switch(start: actions.StartAnalysis, now: Any) -> Verdict:
        return Verdict.FAIL if start.step_index == 2 else Verdict.PASS

    run.world.verdict = fail_after_switch
    run.settle()
    new = naming.build_revision(run.spec.serving, "fraud", "7")
    assert weights(run)[-2:] == [(new, 100), (None, 0)]
    log = [a for _, a in run.world.log]
    back = max(i for i, a in enumerate(log) if isinstance(a, actions.SetTrafficWeight))
    removed = next(i for i, a in enumerate(log) if isinstance(a, actions.DeleteWorkload))
    assert back < removed
    assert run.status.phase == Phase.ROLLED_BACK
    assert run.status.stable_model_version == "6"


def test_auto_promote_false_waits_at_the_promotion_gate() -> None:
    run = deployed({"autoPromote": False, "previewReplicas": 1})
    run.in_phase(Phase.AWAITING_APPROVAL)
    [create] = run.world.executed(actions.CreateWorkload)
    assert create.replicas == 1
    [request] = run.world.executed(actions.RequestApproval)
    run.world.approve(request.revision, request.step_index, releasestatus.ApprovalDecision.APPROVE)
    run.settle()
    assert run.status.phase == Phase.SUCCEEDED
    scales = run.world.executed(actions.ScaleWorkload)
    assert [(s.replicas) for s in scales] == [2], "the preview grows to full size before the switch"


def test_blue_green_is_refused_when_the_budget_cannot_hold_a_second_copy() -> None:
    run = deployed({}, max_extra_gpus=1)
    run.reconcile()
    assert run.status.phase == Phase.BLOCKED
    assert run.status.reason == "GPUBudgetExceeded"
    assert "blue-green runs 2 new replicas (2 GPUs) beside the whole stable" in run.status.message
    assert not run.world.executed(actions.CreateWorkload)
