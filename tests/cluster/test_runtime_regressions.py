"""What a new user hit in the runtime, each pinned by the behaviour a user expects.

Each test failed on 461b317 (checked by running it there) and passes now.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.cluster import harness
from tests.controlplane import faultproxy
from tests.controlplane.cluster import READY_AFTER
from tests.controlplane.faultproxy import FaultRule
from tests.controlplane.kube import KubeError

PAUSED_STEPS = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}]
ANALYSED_STEPS = [
    {"setWeight": 25},
    {"analysis": {"template": "quality", "maxDuration": "10m"}},
    {"setWeight": 50},
]
POLL_SECONDS = 2.0
WINDOW_SECONDS = 8.0
# One reconcile reads the release, Deployments, pods, the route's Services, Approvals and the analysis
# script (≤ 8 requests) and writes at most a few; Kopf adds a watch reconnection now and then. A
# release that waits (for a verdict, a person, or pods) is reconciled once per poll interval and on
# watch events: over the window that is at most window/poll + 3 reconciles of ≤ 12 requests. The
# busy loop this guards against made ~300-600 requests per second.
MAX_REQUESTS_PER_WINDOW = int((WINDOW_SECONDS / POLL_SECONDS + 3) * 12)


def _controller_requests(world: harness.World) -> int:
    return sum(1 for c in world.audit.calls() if c.user == harness.CONTROLLER_USER)


def _requests_over_window(world: harness.World) -> int:
    """The controller's requests over the window, counted in the API server's audit log."""
    before = _controller_requests(world)
    deadline = time.monotonic() + WINDOW_SECONDS
    # A rate needs wall time to pass.
    world.wait_until(lambda: time.monotonic() >= deadline, timeout=WINDOW_SECONDS + 5)
    return _controller_requests(world) - before


def _annotate(world: harness.World, name: str, command: str, token: str) -> None:
    world.patch_release(name, {"metadata": {"annotations": {f"modelrelease.dev/command-{command}": token}}})


def test_a_waiting_release_costs_requests_per_poll_interval_not_per_cpu_cycle_in_every_phase(
    world: harness.World, tmp_path: Any
) -> None:
    controller = harness.Controller(
        world, tmp_path / "controller.log", "--poll-interval", str(POLL_SECONDS)
    ).start()
    try:
        steps = [*ANALYSED_STEPS, {"pause": {}}]
        world.create(harness.release_body("ranker", "1", strategy={"canary": {"steps": steps}}))
        world.wait_for_phase("ranker", "Succeeded")
        measured = {"idle": _requests_over_window(world)}

        world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
        world.wait_for_status("ranker", lambda s: s.get("reason") == "Analysing")
        measured["analysing"] = _requests_over_window(world)  # no verdict scripted: stays Running

        world.script_analysis({"2": "Pass"})
        world.wait_for_phase("ranker", "Paused")
        measured["paused"] = _requests_over_window(world)

        # Model 3's pods take two minutes to load (KWOK delays their readiness).
        slow = {"model": {"version": "3"}, "serving": {"podAnnotations": {READY_AFTER: "120s"}}}
        world.patch_release("ranker", {"spec": slow})
        world.wait_for_status(
            "ranker", lambda s: s.get("reason") == "RolloutStarted" and s.get("canaryModelVersion") == "3"
        )
        measured["stepping"] = _requests_over_window(world)  # canary pods take two minutes to load
    finally:
        controller.stop()
    assert {phase: n for phase, n in measured.items() if n > MAX_REQUESTS_PER_WINDOW} == {}, measured


def test_releases_whose_long_names_share_a_prefix_get_their_own_valid_objects(
    world: harness.World, controller: harness.Controller
) -> None:
    prefix = "a-model-release-with-a-rather-long-descriptive-name-for-search"
    names = [f"{prefix}-alpha", f"{prefix}-beta"]
    for name in names:
        world.create(harness.release_body(name, "1"))
    for name in names:
        world.wait_for_phase(name, "Succeeded")
    deployments = world.deployments()
    assert len(deployments) == 2
    for deployment in deployments.values():
        assert len(deployment["metadata"]["name"]) <= 63
        assert all(len(v) <= 63 for v in deployment["metadata"]["labels"].values())
    owners = {d["metadata"]["ownerReferences"][0]["name"] for d in deployments.values()}
    assert owners == set(names)
    # The last traffic move may follow the phase by one reconcile.
    services = world.wait_until(
        lambda: [s["metadata"]["name"] for s in world.objects("services")] or None,
        timeout=10,
        what="production Services",
    )
    world.wait_until(lambda: len(world.objects("services")) == 2, timeout=10, what="both")
    services = [s["metadata"]["name"] for s in world.objects("services")]
    assert len(set(services)) == 2  # each release's own production Service
    assert all(len(name) <= 63 for name in services)


def test_a_deployment_someone_else_owns_under_the_generated_name_fails_the_release_with_the_reason(
    world: harness.World, controller: harness.Controller
) -> None:
    world.create(harness.release_body("ranker", "1"))
    first = world.wait_for_phase("ranker", "Succeeded")
    taken = f"ranker-{first['revision']}"
    _delete_release(world)
    world.wait_until(lambda: taken not in world.deployments(), timeout=30, what="cleaned up")
    world.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": taken},
            "spec": _someone_elses_spec(),
        }
    )
    world.create(harness.release_body("ranker", "1"))
    failed = world.wait_for_phase("ranker", "Failed", timeout=30)
    assert failed["reason"] == "NotOwned"
    assert taken in failed["message"]
    assert "not owned by ModelRelease ranker" in failed["message"]
    creates = [w for w in world.controller_writes() if w.verb == "create" and w.name == taken]
    assert len(creates) <= 5, f"{len(creates)} creates of {taken}: the release retries in a loop"


def _gateway_release(name: str, version: str) -> dict[str, Any]:
    body = harness.release_body(name, version, trafficRouting={"gatewayAPI": {"httpRoute": "ranker-route"}})
    body["spec"]["strategy"]["canary"]["steps"] = PAUSED_STEPS
    return body


def _route() -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "ranker-route"},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [{"backendRefs": [{"name": "ranker", "port": 8000}]}],
        },
    }


def _serving_behind_route(world: harness.World) -> None:
    """Release `ranker` serving version 1 behind HTTPRoute `ranker-route`, steps that pause at 25 %."""
    world.create(_route())
    world.create(_gateway_release("ranker", "1"))
    world.wait_for_phase("ranker", "Succeeded")


def _delete_release(world: harness.World, options: dict[str, Any] | None = None) -> None:
    world.delete("modelreleases", "ranker", options)
    world.wait_until(
        lambda: not any(r["metadata"]["name"] == "ranker" for r in world.objects("modelreleases")),
        timeout=30,
        what="release gone",
    )


def test_deleting_a_release_with_orphan_propagation_leaves_workloads_and_routing_serving(
    world: harness.World, controller: harness.Controller
) -> None:
    _serving_behind_route(world)
    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
    world.wait_for_phase("ranker", "Paused")
    before = (set(world.deployments()), {s["metadata"]["name"] for s in world.objects("services")})
    route_before = world.objects("httproutes")[0]["spec"]

    _delete_release(world, {"propagationPolicy": "Orphan"})

    assert (
        set(world.deployments()),
        {s["metadata"]["name"] for s in world.objects("services")},
    ) == before
    assert world.objects("httproutes")[0]["spec"] == route_before
    assert all(not d["metadata"].get("ownerReferences") for d in world.deployments().values())
    assert not [w for w in world.controller_writes() if w.verb == "delete"]


def test_deleting_a_release_removes_what_it_owns_and_says_what_the_route_still_points_at(
    world: harness.World, controller: harness.Controller
) -> None:
    _serving_behind_route(world)
    world.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "ranker-by-hand",
                "labels": {
                    "modelrelease.dev/release": "ranker",
                    "app.kubernetes.io/managed-by": "modelrelease",
                },
            },
            "spec": _someone_elses_spec(),
        }
    )
    # A reconcile after it appeared (a misspelt command makes one, and says so) leaves it alone: it
    # carries the release's labels but not its ownerReference. The controller deleted it before.
    _annotate(world, "ranker", "promot", "t1")
    world.wait_until(lambda: any(e["reason"] == "UnknownCommand" for e in world.events()), what="a reconcile")
    assert "ranker-by-hand" in world.deployments()

    _delete_release(world)

    world.wait_until(
        lambda: set(world.deployments()) == {"ranker-by-hand"}, timeout=30, what="owned Deployments deleted"
    )
    assert world.objects("services") == []
    left = [e for e in world.events() if e["reason"] == "RouteLeftBehind"]
    assert len(left) == 1
    assert "HTTPRoute ranker-route" in left[0]["message"]


def test_a_second_rollout_failing_the_same_step_posts_its_own_events(
    world: harness.World, controller: harness.Controller
) -> None:
    world.script_analysis({"default": "Fail"})  # the same words for both rollouts
    world.create(harness.release_body("ranker", "1"))
    world.wait_for_phase("ranker", "Succeeded")
    for version in ("2", "3"):
        world.patch_release("ranker", {"spec": {"model": {"version": version}}})
        world.wait_for_status(
            "ranker",
            lambda s, v=version: (
                s.get("phase") == "RolledBack" and (s.get("lastRollback") or {}).get("modelVersion") == v
            ),
        )
    world.wait_until(
        lambda: sum(e["reason"] == "AnalysisFailed" for e in world.events()) == 2,
        timeout=10,
        what="an AnalysisFailed Event for each rollout",
    )


def test_an_event_that_cannot_be_posted_does_not_hold_back_the_status(
    world: harness.World, tmp_path: Any, fault_proxy: faultproxy.FaultProxy
) -> None:
    _through(world, tmp_path, fault_proxy)
    world.create(harness.release_body("ranker", "1", strategy={"canary": {"steps": PAUSED_STEPS}}))
    world.wait_for_phase("ranker", "Succeeded")
    fault_proxy.add(FaultRule(times=1000, code=500, verb="create", plural="events"))
    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
    # On 461b317 each failed Event aborted the reconcile and backed off: the phase stayed Succeeded for
    # minutes while the canary existed. Now the rollout walks on.
    paused = world.wait_for_phase("ranker", "Paused", timeout=20)
    assert paused["canaryModelVersion"] == "2"


def test_failing_api_calls_show_in_a_condition_until_a_reconcile_goes_through(
    world: harness.World, tmp_path: Any, fault_proxy: faultproxy.FaultProxy
) -> None:
    _through(world, tmp_path, fault_proxy)
    world.create(harness.release_body("ranker", "1", strategy={"canary": {"steps": PAUSED_STEPS}}))
    world.wait_for_phase("ranker", "Succeeded")
    outage = fault_proxy.add(FaultRule(times=6, code=503, verb="list", plural="pods"))
    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})

    def condition(status: dict[str, Any]) -> dict[str, Any] | None:
        return next((c for c in status.get("conditions", []) if c["type"] == "ReconcileError"), None)

    failing = world.wait_for_status("ranker", lambda s: (condition(s) or {}).get("status") == "True")
    message = condition(failing)["message"]
    assert "503" in message
    assert "retrying in" in message
    done = world.wait_for_phase("ranker", "Paused", timeout=60)
    assert outage.times == 0
    assert condition(done)["status"] == "False"


def test_a_canary_deleted_by_hand_mid_analysis_gets_no_traffic_until_ready_and_its_analysis_restarts(
    world: harness.World, controller: harness.Controller
) -> None:
    world.create(harness.release_body("ranker", "1"))
    world.wait_for_phase("ranker", "Succeeded")
    # Model 2's pods take three seconds to load (KWOK delays their readiness).
    world.patch_release(
        "ranker", {"spec": {"model": {"version": "2"}, "serving": {"podAnnotations": {READY_AFTER: "3s"}}}}
    )
    analysing = world.wait_for_status("ranker", lambda s: s.get("reason") == "Analysing")
    first_start = analysing["analysis"][0]["startedAt"]
    canary = f"ranker-{analysing['canaryRevision']}"

    world.delete("deployments", canary)

    sheltered = world.wait_for_status("ranker", lambda s: s.get("reason") == "CanaryUnavailable", timeout=20)
    assert sheltered["analysis"] == []
    world.wait_until(
        lambda: (
            world.service("ranker")["metadata"]["annotations"].get("modelrelease.dev/canary-weight") == "0"
        ),
        timeout=10,
        what="production traffic back on stable",
    )
    assert canary in world.deployments() or world.wait_until(
        lambda: canary in world.deployments(), timeout=10, what="canary recreated"
    )
    # While the new pods load, nobody is routed to them.
    ready = world.wait_until(
        lambda: [
            p
            for p in world.objects("pods")
            if p["metadata"]["name"].startswith(canary)
            # A pod just created has no status until KWOK, playing its kubelet, writes one.
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        ],
        timeout=20,
        what="recreated canary Ready",
    )
    assert ready
    restarted = world.wait_for_status(
        "ranker", lambda s: s.get("reason") == "Analysing" and s.get("analysis"), timeout=20
    )
    assert restarted["analysis"][0]["startedAt"] > first_start
    weights = [
        w.object["metadata"]["annotations"].get("modelrelease.dev/canary-weight")
        for w in harness.successful(world, "patch", "services", "ranker")
    ]
    assert weights[-2:] == ["0", "25"]
    assert any(e["reason"] == "CanaryUnavailable" for e in world.events())


def _approval(name: str, revision: str, step: int, decision: str, **extra: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "Approval",
        "metadata": {"name": name},
        "spec": {
            "release": "ranker",
            "revision": revision,
            "step": step,
            "decision": decision,
            "by": "sre@example.com",
            "identity": "kubernetes:kubernetes-admin",  # the creator, as deploy/'s admission policy requires
            **extra,
        },
    }


def test_approvals_that_miss_the_gate_are_refused_or_reported_and_a_rejection_keeps_its_reason(
    world: harness.World, controller: harness.Controller
) -> None:
    steps = [{"setWeight": 25}, {"approval": {"slack": False}}, {"setWeight": 50}]
    world.create(harness.release_body("ranker", "1", strategy={"canary": {"steps": steps}}))
    world.wait_for_phase("ranker", "Succeeded")
    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
    waiting = world.wait_for_phase("ranker", "AwaitingApproval")
    revision, step = waiting["canaryRevision"], waiting["currentStepIndex"]

    with pytest.raises(KubeError, match=r'spec\.decision: Unsupported value: "maybe"'):
        world.create(_approval("maybe", revision, step, "maybe"))  # refused by the CRD's enum
    world.create(_approval("old-rev", "0123456789", step, "approve"))
    world.create(_approval("wrong-step", revision, step + 1, "approve"))

    world.wait_until(
        lambda: (
            {e["involvedObject"]["name"] for e in world.events() if e["reason"] == "ApprovalIgnored"}
            == {"old-rev", "wrong-step"}
        ),
        timeout=20,
        what="an ApprovalIgnored Event on each mismatched Approval",
    )
    assert all(
        e["involvedObject"]["kind"] == "Approval" for e in world.events() if e["reason"] == "ApprovalIgnored"
    )
    # Events go out just before the status write that records them.
    still = world.wait_for_status("ranker", lambda s: "ignored" in s.get("message", ""), timeout=10)
    assert still["phase"] == "AwaitingApproval"

    world.create(_approval("no", revision, step, "reject", reason="p99 looks off in the dashboard"))
    rolled = world.wait_for_phase("ranker", "RolledBack")
    assert rolled["approvals"][-1]["reason"] == "p99 looks off in the dashboard"
    assert rolled["lastRollback"]["message"].endswith(
        "rejected by sre@example.com: p99 looks off in the dashboard"
    )


@pytest.mark.parametrize("cluster_wide", [True, False], ids=["cluster-wide", "one-namespace"])
def test_two_controllers_started_the_same_way_coordinate_and_one_takes_over_after_a_kill(
    world: harness.World, tmp_path: Any, cluster_wide: bool
) -> None:
    """Two replicas without flags: one acts (peering created at startup, distinct random priorities);
    after kill -9 of the one acting, the other acts within the peering lifetime (5 s here; the default
    60 s is the failover time to expect in production). Cluster-wide, as deploy/ runs them, they
    coordinate through a ClusterKopfPeering; with --namespace, through a KopfPeering there (which
    deploy/'s RBAC did not allow until this ran on a real API server)."""
    flags = ("--peering-lifetime", "5")
    replicas = [
        harness.Controller(
            world, tmp_path / f"replica-{i}.log", *flags, standalone=False, cluster_wide=cluster_wide
        ).start()
        for i in range(2)
    ]

    def peerings() -> list[dict[str, Any]]:
        if cluster_wide:
            return world.kube.objects("clusterkopfpeerings")
        return world.objects("kopfpeerings")

    try:
        # Both replicas announce themselves in the peering object they created at startup.
        world.wait_until(
            lambda: [len(p.get("status") or {}) for p in peerings()] == [2],
            timeout=30,
            what="both replicas in the peering object",
        )
        assert [p["metadata"]["name"] for p in peerings()] == ["modelrelease"]
        world.create(harness.release_body("ranker", "1", strategy={"canary": {"steps": PAUSED_STEPS}}))
        world.wait_for_phase("ranker", "Succeeded", timeout=60)
        # Kopf pauses the lower-priority replica on its first peering event; a write already under way
        # in that first second may still land (safe: desired-state actions, RV-checked status writes).
        # From then on only one replica acts.
        settled = len(world.calls())
        world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
        world.wait_for_phase("ranker", "Paused", timeout=60)
        since = world.calls()[settled:]
        # Both replicas keep the peering object alive: every other write is acting. Each replica has a
        # token of its own, which the audit log names (Kopf's writes and ours share one agent string).
        acts = [
            c
            for c in since
            if c.is_write and c.user == harness.CONTROLLER_USER and c.plural != "kopfpeerings"
        ]
        writers = {c.credential for c in acts}
        assert len(writers) == 1, writers
        (leader,) = writers
        acting = next(r for r in replicas if r.credential == leader)
        acting.kill()
        killed_at = time.monotonic()
        _annotate(world, "ranker", "promote", "after-failover")
        world.wait_for_status("ranker", lambda s: s.get("stableModelVersion") == "2", timeout=90)
        failover = time.monotonic() - killed_at
    finally:
        for replica in replicas:
            replica.stop()
    acted = {w.credential for w in world.controller_writes() if w.plural != "kopfpeerings"}
    assert acted - {leader}, "the survivor never acted"
    assert failover < 5 * 4, f"failover took {failover:.0f} s"
    print(f"failover after kill -9 with --peering-lifetime 5: {failover:.1f} s")


def test_a_misspelt_command_annotation_gets_a_warning_event_once(
    world: harness.World, controller: harness.Controller
) -> None:
    world.create(harness.release_body("ranker", "1"))
    world.wait_for_phase("ranker", "Succeeded")
    _annotate(world, "ranker", "promot", "t1")
    world.wait_until(
        lambda: [e["message"] for e in world.events() if e["reason"] == "UnknownCommand"],
        timeout=10,
        what="an UnknownCommand Event",
    )
    (event,) = [e for e in world.events() if e["reason"] == "UnknownCommand"]
    assert "modelrelease.dev/command-promot is not a command" in event["message"]
    assert "promote-full" in event["message"]


def test_a_missing_route_blocks_the_new_rollout_without_calling_the_serving_release_failed(
    world: harness.World, controller: harness.Controller
) -> None:
    _serving_behind_route(world)
    world.delete("httproutes", "ranker-route")
    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
    blocked = world.wait_for_phase("ranker", "Blocked", timeout=30)
    assert (
        f"HTTPRoute {world.namespace}/ranker-route named in spec.trafficRouting does not exist"
        in blocked["message"]
    )
    assert blocked["stableModelVersion"] == "1"
    world.wait_until(
        lambda: any(e["reason"] == "NotFound" and "ranker-route" in e["message"] for e in world.events()),
        timeout=10,
        what="a Warning Event naming the missing route",
    )


def test_a_hostile_duration_is_refused_at_admission_or_ends_invalid_spec_and_the_release_still_deletes(
    world: harness.World, controller: harness.Controller
) -> None:
    overflow = harness.release_body(
        "ranker", strategy={"canary": {"steps": [{"pause": {"duration": "9999999999999h"}}]}}
    )
    with pytest.raises(KubeError) as refused:  # the CRD's pattern: a part has at most 7 digits
        world.create(overflow)
    assert "pause.duration" in str(refused.value)
    # Within the pattern, out of the field's range: the controller says so and does not crash-loop.
    world.create(harness.release_body("ranker", progressDeadline="0s"))
    status = world.wait_for_phase("ranker", "Failed")
    assert status["reason"] == "InvalidSpec"
    assert status["message"] == "spec.progressDeadline: 0s is out of range: longer than 0s and at most 24h"
    # The Event follows the status write that makes it news: wait for it, then it is said once.
    world.wait_until(
        lambda: [e for e in world.events() if e["reason"] == "InvalidSpec"] or None, timeout=10, what="Event"
    )
    said = [e for e in world.events() if e["reason"] == "InvalidSpec"]
    assert len(said) == 1
    _delete_release(world)
    world.wait_until(
        lambda: "ranker" not in [r["metadata"]["name"] for r in world.objects("modelreleases")],
        timeout=30,
        what="deleted",
    )


def test_a_serving_release_whose_spec_turns_invalid_is_blocked_with_ready_false_and_the_reason(
    world: harness.World, controller: harness.Controller
) -> None:
    """The engine halts it like any other phase change: conditions follow the phase (not Failed with
    Ready=True, as when the shell wrote the phase itself), and what serves is kept."""
    world.create(harness.release_body("ranker", "1"))
    world.wait_for_phase("ranker", "Succeeded")
    world.patch_release("ranker", {"spec": {"progressDeadline": "0s"}})
    blocked = world.wait_for_phase("ranker", "Blocked")
    assert blocked["reason"] == "InvalidSpec"
    assert blocked["stableModelVersion"] == "1"
    conditions = {c["type"]: (c["status"], c["reason"]) for c in blocked["conditions"]}
    assert conditions["Ready"] == ("False", "InvalidSpec")
    assert conditions["Degraded"] == ("True", "InvalidSpec")
    assert blocked["observedGeneration"] == 2
    world.patch_release("ranker", {"spec": {"progressDeadline": "10m"}})
    again = world.wait_for_phase("ranker", "Succeeded")
    assert {c["type"]: c["status"] for c in again["conditions"]}["Ready"] == "True"


def _someone_elses_spec() -> dict[str, Any]:
    """A Deployment as another tool would write it (a real API server wants a whole pod template)."""
    return {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "x"}},
        "template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "x", "image": "x"}]},
        },
    }


def _through(world: harness.World, tmp_path: Any, proxy: faultproxy.FaultProxy) -> None:
    """The controller for this test, reaching the API server through the fault proxy."""
    controller = harness.Controller(world, tmp_path / "controller.log", proxy=proxy).start()
    world.on_close(controller.stop)
