"""`kubectl modelrelease explain`: one paragraph from the spec and status the engine really writes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from controller.cli import explain
from controller.resources import commands, releasestatus
from tests.unit.domain import builders
from tests.unit.domain import world as w

Phase = releasestatus.Phase
STEPS = [
    {"setWeight": 25},
    {"analysis": {"template": "quality", "maxDuration": "15m"}},
    {"pause": {}},
    {"approval": {"approvals": 2}},
    {"setWeight": 50},
]


def _body(run: w.Run) -> dict[str, Any]:
    return {
        "metadata": {"name": "fraud", "namespace": "ml"},
        "spec": run.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        "status": run.status.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def _rolling() -> w.Run:
    world = w.World(model_version="6")
    run = w.Run(builders.release_spec(version="6", steps=STEPS), world).settle()
    world.model_version = "7"
    run.set_spec(builders.release_spec(version="7", steps=STEPS))
    return run


def test_each_kind_of_step_says_what_it_waits_for_and_how_to_move_it_on() -> None:
    run = _rolling()
    run.until(lambda r: r.status.current_step_index == 1 and bool(r.status.analysis))
    said = explain.explain(_body(run), run.world.now)
    assert said.startswith("fraud is Progressing")
    assert "rolling model 7" in said
    assert "over model 6 with 25% of users on the canary" in said
    assert "It is at step 1 (analysis quality), the 2nd of 5 steps for 0s." in said
    assert "waits for the judge: analysis quality is collecting evidence" in said

    run.in_phase(Phase.PAUSED)
    run.world.tick(timedelta(minutes=3))
    said = explain.explain(_body(run), run.world.now)
    assert "It is at step 2 (pause), the 3rd of 5 steps for 3m." in said
    assert "`kubectl modelrelease promote fraud -n ml`" in said

    run.world.commands = run.world.commands.with_token(commands.Command.PROMOTE, "t1")
    run.in_phase(Phase.AWAITING_APPROVAL)
    said = explain.explain(_body(run), run.world.now)
    assert "waits for 2 more approval(s)" in said
    assert "`kubectl modelrelease approve fraud -n ml`" in said


def test_a_rolled_back_release_says_why_how_long_it_took_and_how_to_retry() -> None:
    run = _rolling()
    run.world.verdict = w.fails_after(timedelta(minutes=2))
    run.in_phase(Phase.ROLLED_BACK)
    said = explain.explain(_body(run), run.world.now)
    assert said.startswith("fraud is RolledBack (AnalysisFailed)")
    assert "Model 6 serves all traffic again" in said
    assert "The last rollout (model 7 from 6) ended RolledBack (AnalysisFailed) after" in said
    assert "`kubectl modelrelease retry fraud -n ml`" in said


def test_a_steady_release_waits_for_nothing_and_a_new_one_asks_whether_a_controller_runs() -> None:
    world = w.World(model_version="6")
    run = w.Run(builders.release_spec(version="6", steps=STEPS), world).settle()
    said = explain.explain(_body(run), world.now)
    assert "Model 6 (revision" in said
    assert "it waits for nothing" in said
    fresh = {"metadata": {"name": "x", "namespace": "ml"}, "spec": _body(run)["spec"]}
    assert "has not reconciled it yet" in explain.explain(fresh, world.now)
