"""Properties of the engine over generated rollouts (Hypothesis, ≥ 200 examples each in CI).

Each example is a whole release: a stable on model 6, a spec moved to model 7 with generated
steps or blue-green, router, replicas, GPUs and budget, scripted analysis verdicts and
approvers, operator commands and spec changes at generated times, and pods that may never
become Ready. The world checks the GPU budget and traffic readiness after every action.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from analysis import verdicts
from controller.domain import actions, engine, naming
from controller.domain import decision as decisions
from controller.resources import releasestatus
from tests.unit.domain import builders
from tests.unit.domain import world as w

Verdict = verdicts.Verdict
Decision = releasestatus.ApprovalDecision
HORIZON = timedelta(hours=4)


@dataclass(frozen=True)
class Scenario:
    spec: dict[str, Any]
    verdicts: dict[int, tuple[Verdict, int]]  # step index → (verdict, minutes until it shows)
    approver: Decision | None
    commands: tuple[tuple[int, str], ...]  # (minute, command)
    change: tuple[int, str] | None  # (minute, "version" | "steps")
    never_ready: bool
    start_delay: int
    gpu_budget: int | None = field(default=None)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    replicas = draw(st.integers(1, 6))
    gpus = draw(st.integers(0, 2))
    extra = draw(st.one_of(st.none(), st.integers(0, 2 * replicas * max(gpus, 1))))
    spec: dict[str, Any] = {
        "replicas": replicas,
        "gpus": gpus,
        "max_extra_gpus": extra if gpus else None,
        "router": draw(
            st.sampled_from(
                [{"replicas": {}}, {"gatewayAPI": {"httpRoute": "r"}}, {"istio": {"virtualService": "v"}}]
            )
        ),
        "warmup": f"{draw(st.integers(0, 120))}s",
        "deadline": f"{draw(st.integers(2, 15))}m",
        "write_back": draw(st.booleans()),
    }
    if draw(st.integers(0, 3)) == 0:
        analysis = {"template": "t", "maxDuration": "10m"}
        spec["blue_green"] = {
            "autoPromote": draw(st.booleans()),
            "prePromotionAnalysis": draw(st.sampled_from([None, analysis])),
            "postPromotionAnalysis": draw(st.sampled_from([None, analysis])),
            "previewReplicas": draw(st.one_of(st.none(), st.integers(1, replicas))),
        }
        spec["blue_green"] = {k: v for k, v in spec["blue_green"].items() if v is not None}
    else:
        weights = sorted(draw(st.lists(st.integers(1, 100), min_size=1, max_size=4, unique=True)))
        steps: list[dict[str, Any]] = []
        routed = "replicas" not in spec["router"]  # mirrors and header routes need a route object
        kinds: list[dict[str, Any]] = [
            {"analysis": {"template": "t", "maxDuration": "15m"}},
            {"pause": {"duration": "3m"}},
            {"pause": {}},
            {"approval": {}},
        ]
        if routed:
            kinds.append({"setHeaderRoute": {"match": [{"header": "x-cohort", "exact": "beta"}]}})
            if draw(st.booleans()):
                percent = draw(st.sampled_from([25, 100]))
                steps.append(
                    {"shadow": {"percent": percent, "analysis": {"template": "t", "maxDuration": "15m"}}}
                )
        for weight in weights:
            steps.append({"setWeight": weight})
            for _ in range(draw(st.integers(0, 2))):
                steps.append(draw(st.sampled_from(kinds)))
        spec["steps"] = steps
        if draw(st.booleans()):
            # Its verdict is the script's for step index -1 (the last of the eight).
            spec["background"] = {"template": "bg", "startingStep": draw(st.integers(0, len(steps) - 1))}
    verdict_of = {i: (draw(st.sampled_from(list(Verdict))), draw(st.integers(0, 20))) for i in range(8)}
    commands = tuple(
        sorted(
            draw(
                st.lists(
                    st.tuples(
                        st.integers(0, 90), st.sampled_from(["abort", "promote", "promote_full", "retry"])
                    ),
                    max_size=3,
                )
            )
        )
    )
    return Scenario(
        spec=spec,
        verdicts=verdict_of,
        approver=draw(st.sampled_from([Decision.APPROVE, Decision.REJECT, None])),
        commands=commands,
        change=draw(
            st.one_of(st.none(), st.tuples(st.integers(0, 60), st.sampled_from(["version", "steps"])))
        ),
        never_ready=draw(st.integers(0, 5)) == 0,
        start_delay=draw(st.integers(5, 120)),
    )


@dataclass
class Outcome:
    status: releasestatus.ModelReleaseStatus
    deployments: dict[str, tuple[str, int]]
    traffic: Any
    world: w.World
    decisions: int
    said: frozenset[tuple[str, ...]]  # the Events posted, by the identity the runtime names them with
    steps: list[tuple[str | None, int, int]]  # (canary revision, attempt, step index) of each status written


def _scripted(scenario: Scenario) -> w.VerdictScript:
    def script(run: actions.StartAnalysis, now: datetime) -> Verdict:
        # A verdict needs data collected after the start, so never appears at the instant of it.
        verdict, minutes = scenario.verdicts[run.step_index % 8]
        return (
            verdict if now > run.start and now >= run.start + timedelta(minutes=minutes) else Verdict.RUNNING
        )

    return script


def simulate(
    scenario: Scenario, crashes: dict[int, float] | None = None, check_replay: bool = False
) -> Outcome:
    """Run the scenario to its end as the runtime runs the engine: one decision per reconcile, its
    actions executed, then its status written; again at once when it asks (requeue zero), else
    after the wait it asks for. `crashes` maps a decision number to the share of its actions
    executed before the controller dies: that decision's status is never written, and the next
    decision — which may crash too — resumes from the older status at the same instant."""
    crashes = crashes or {}
    spec_args = dict(scenario.spec)
    world = w.World(model_version="6", start_delay=timedelta(seconds=scenario.start_delay))
    run = w.Run(builders.release_spec(version="6", **spec_args), world).settle()
    gpus = spec_args["gpus"]
    extra = spec_args["max_extra_gpus"]
    if extra is not None:
        world.gpu_budget = spec_args["replicas"] * gpus + extra
    world.model_version = "7"
    world.verdict = _scripted(scenario)
    if scenario.approver is not None:
        decided = scenario.approver
        world.approver = lambda request, now: decided
    spec7 = builders.release_spec(version="7", **spec_args)
    if scenario.never_ready:
        world.never_ready.add(naming.build_revision(spec7.serving, "fraud", "7"))
    run.set_spec(spec7)
    start = world.now
    pending = list(scenario.commands)
    change = scenario.change
    number = 0
    at_once = 0
    said: set[tuple[str, ...]] = set()
    steps: list[tuple[str | None, int, int]] = []
    while world.now < start + HORIZON:
        minute = (world.now - start) / timedelta(minutes=1)
        while pending and pending[0][0] <= minute:
            _, command = pending.pop(0)
            world.commands = world.commands.model_copy(update={command: f"{command}-{minute:.0f}"})
        if change is not None and change[0] <= minute:
            _apply_change(run, change[1], spec_args)
            change = None
        observed = world.observe()
        decision = engine.reconcile(run.spec, run.status, observed, now=world.now)
        number += 1
        if number in crashes:
            cut = int(len(decision.actions) * crashes[number])
            for action in decision.actions[:cut]:
                world.execute(action)
            continue  # killed before the status write; the restarted controller looks again at once
        for action in decision.actions:
            world.execute(action)
        said |= {_identity(event, decision.status) for event in decision.events}
        run.status = decision.status
        if run.status.current_step_index is not None:
            steps.append((run.status.canary_revision, run.status.attempt, run.status.current_step_index))
        if check_replay and decision.requeue_after != timedelta(0):
            # Settled for this instant: deciding again on what it left changes nothing.
            replay = engine.reconcile(run.spec, run.status, world.observe(), now=world.now)
            assert replay.actions == (), f"replay at decision {number} wants {replay.actions}"
            assert replay.status == run.status, f"replay at decision {number} changes the status"
        terminal = run.status.phase in (
            releasestatus.Phase.SUCCEEDED,
            releasestatus.Phase.ROLLED_BACK,
            releasestatus.Phase.BLOCKED,
            releasestatus.Phase.FAILED,
        )
        if (
            terminal
            and not decision.actions
            and decision.requeue_after is None
            and not pending
            and change is None
        ):
            break
        if decision.requeue_after == timedelta(0):
            at_once += 1
            assert at_once < engine.MAX_MOVES, f"still moving after {at_once} decisions at {world.now}"
            continue  # more moves are due at this instant
        at_once = 0
        wait = decision.requeue_after or timedelta(seconds=30)
        world.tick(min(wait, timedelta(seconds=30)))
    return Outcome(
        status=run.status,
        deployments={n: (d.revision, d.replicas) for n, d in world.deployments.items()},
        traffic=world.traffic,
        world=world,
        decisions=number,
        said=frozenset(said),
        steps=steps,
    )


def _identity(event: decisions.Event, status: releasestatus.ModelReleaseStatus) -> tuple[str, ...]:
    """What the runtime names an Event by (adapters/events.py), so a repeat is not said twice."""
    if event.scope is not None:
        return (event.scope, event.reason)
    return (status.revision or "", str(status.attempt), event.reason, event.key or event.message)


def _apply_change(run: w.Run, kind: str, spec_args: dict[str, Any]) -> None:
    if kind == "version":
        run.world.model_version = "8"
        run.set_spec(builders.release_spec(version="8", **spec_args))
    elif "steps" in spec_args:
        steps = spec_args["steps"]
        shadow = 1 if steps and "shadow" in steps[0] else 0  # a shadow stays first (before any weight)
        edited = [*steps[:shadow], {"setWeight": 1}, *steps[shadow:]]
        run.set_spec(
            builders.release_spec(version=run.spec.model.version or "7", **{**spec_args, "steps": edited})
        )


def _end_state(outcome: Outcome) -> tuple[Any, ...]:
    # When (and how often) the Git write-back was asked for is bookkeeping that a crash shifts by design (the
    # request is made again); the commit it found is the state that must agree.
    status = outcome.status.model_dump(
        exclude={"conditions": True, "last_rollback": {"git_write_back": {"attempted_at", "attempts"}}}
    )
    return (status, outcome.deployments, outcome.traffic)


@given(scenarios())
def test_replaying_a_settled_decision_on_its_own_output_yields_no_new_actions(scenario: Scenario) -> None:
    simulate(scenario, check_replay=True)


@given(scenarios(), st.data())
def test_killing_the_controller_between_any_two_actions_and_resuming_reaches_the_same_end_state(
    scenario: Scenario, data: st.DataObject
) -> None:
    uninterrupted = simulate(scenario)
    # Crash points cluster: a run of consecutive decisions killed one after another (each resumed
    # reconcile killed again) as well as scattered ones.
    first = data.draw(st.integers(1, max(uninterrupted.decisions, 1)))
    # A kill after all of a decision's actions (share 1) leaves the world a whole move ahead of status.
    share = st.one_of(st.just(1.0), st.floats(0, 1))
    chained = {first + i: data.draw(share) for i in range(data.draw(st.integers(1, 6)))}
    scattered = data.draw(
        st.dictionaries(st.integers(1, max(uninterrupted.decisions, 1)), st.floats(0, 1), max_size=4)
    )
    points = {**scattered, **chained}
    interrupted = simulate(scenario, crashes=points)
    assert _end_state(interrupted) == _end_state(uninterrupted)
    # On the way, the world never ran ahead of status by more than the resume rules cover: nothing
    # was undone and redone (each Deployment created once, as uninterrupted), no step was walked
    # back, and every Event said is the one an uninterrupted run says.
    assert interrupted.world.creations == uninterrupted.world.creations
    for revision in {r for r, _, _ in interrupted.steps}:
        walked = [(attempt, index) for r, attempt, index in interrupted.steps if r == revision]
        assert walked == sorted(walked), f"revision {revision} walked back: {walked}"
    assert interrupted.said == uninterrupted.said


@given(scenarios())
def test_the_gpu_budget_is_never_exceeded_in_any_intermediate_state(scenario: Scenario) -> None:
    outcome = simulate(scenario)  # the world raises InvariantBrokenError at the action that breaks it
    if outcome.world.gpu_budget is not None:
        assert outcome.world.peak_gpus <= outcome.world.gpu_budget


@given(scenarios())
def test_traffic_is_never_weighted_to_a_workload_that_is_not_ready(scenario: Scenario) -> None:
    outcome = simulate(scenario)  # the world raises InvariantBrokenError at the action that breaks it
    traffic = outcome.traffic
    if traffic is not None and traffic.canary_revision is not None and traffic.canary_weight > 0:
        ready = [d for d in outcome.world.deployments.values() if d.revision == traffic.canary_revision]
        assert ready
        assert outcome.world.ready_replicas(ready[0]) > 0
