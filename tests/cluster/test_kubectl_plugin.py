"""`kubectl modelrelease …` through the real kubectl (which finds the plugin on PATH), on a real cluster."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile
import threading

from tests.cluster import harness

BIN = pathlib.Path(sys.executable).parent
KUBECTL = BIN / "kubectl"


def plugin(kubeconfig: pathlib.Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`kubectl modelrelease ARGS --kubeconfig …`: kubectl hands a plugin only what follows its name."""
    return subprocess.run(
        [str(KUBECTL), "modelrelease", *args, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )


def _rolling_out(world: harness.World, analysis: str = "Running", **spec: object) -> None:
    """Release ranker serving model 1, then model 2 rolling out with the step analysis scripted."""
    world.script_analysis({"default": analysis})
    world.create(harness.release_body("ranker", "1", **spec))
    world.wait_for_phase("ranker", "Succeeded")
    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})


def test_list_and_status_show_phase_step_weight_versions_and_the_running_analysis(
    world: harness.World, controller: harness.Controller, kubeconfig: pathlib.Path
) -> None:
    _rolling_out(world)
    world.wait_for_status("ranker", lambda s: s.get("currentStepIndex") == 1 and bool(s.get("analysis")))
    listed = plugin(kubeconfig, "list")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY", "VERDICT", "AGE"]
    assert row.split()[:7] == ["ranker", "Progressing", "1", "25%", "1", "2", "Running"]
    everywhere = plugin(kubeconfig, "list", "-A")
    # Other tests' namespaces may still be going away: find this one's row among them.
    assert [world.namespace, "ranker"] in [row.split()[:2] for row in everywhere.stdout.splitlines()[1:]]
    status = plugin(kubeconfig, "status", "ranker", "-n", world.namespace)
    assert status.returncode == 0, status.stderr
    text = status.stdout
    assert f"ModelRelease {world.namespace}/ranker: Progressing" in text
    assert "stable: model 1" in text
    assert "canary: model 2" in text
    lines = text.splitlines()
    assert any(line.strip().startswith("✓") and "setWeight 25" in line for line in lines)
    assert any(line.strip().startswith("▶") and "analysis quality" in line for line in lines)
    assert any(line.strip().startswith("·") and "setWeight 50" in line for line in lines)
    assert "analysis ranker-" in text
    assert "AnalysisStarted" in text  # the last events


def test_promote_moves_past_the_analysis_abort_rolls_back_and_retry_starts_again(
    world: harness.World, controller: harness.Controller, kubeconfig: pathlib.Path
) -> None:
    # A pause after the last weight holds the rollout for the abort (else it may be promoted first).
    steps = [
        {"setWeight": 25},
        {"analysis": {"template": "quality", "maxDuration": "10m"}},
        {"setWeight": 50},
    ]
    _rolling_out(world, strategy={"canary": {"steps": [*steps, {"pause": {}}]}})
    world.wait_for_status("ranker", lambda s: s.get("currentStepIndex") == 1 and bool(s.get("analysis")))
    promoted = plugin(kubeconfig, "promote", "ranker")
    assert promoted.returncode == 0, promoted.stderr
    assert "promote requested" in promoted.stdout
    world.wait_for_status("ranker", lambda s: (s.get("currentStepIndex") or 0) >= 2, what="past the analysis")
    assert plugin(kubeconfig, "abort", "ranker").returncode == 0
    world.wait_for_phase("ranker", "RolledBack")
    assert plugin(kubeconfig, "retry", "ranker").returncode == 0
    world.wait_for_status("ranker", lambda s: s.get("phase") != "RolledBack", what="a new attempt")


def test_approve_and_reject_create_approvals_that_decide_the_gate(
    world: harness.World, controller: harness.Controller, kubeconfig: pathlib.Path
) -> None:
    steps = {"canary": {"steps": [{"setWeight": 25}, {"approval": {"slack": False}}, {"setWeight": 50}]}}
    _rolling_out(world, "Pass", strategy=steps)
    world.wait_for_status("ranker", lambda s: s.get("phase") == "AwaitingApproval", what="the approval gate")
    approved = plugin(kubeconfig, "approve", "ranker", "--reason", "dashboards look fine")
    assert approved.returncode == 0, approved.stderr
    assert "approve step 1 of ranker" in approved.stdout
    world.wait_for_phase("ranker", "Succeeded")
    approvals = world.objects("approvals")
    assert [a["spec"]["decision"] for a in approvals] == ["approve"]
    assert approvals[0]["spec"]["reason"] == "dashboards look fine"
    # Counted toward a quorum as the user the API server knows (deploy/'s admission policy checks it).
    assert approvals[0]["spec"]["identity"] == f"kubernetes:{approvals[0]['spec']['by']}"

    world.patch_release("ranker", {"spec": {"model": {"version": "3"}}})
    world.wait_for_status("ranker", lambda s: s.get("phase") == "AwaitingApproval", what="the next gate")
    rejected = plugin(kubeconfig, "reject", "ranker", "--step", "1")
    assert rejected.returncode == 0, rejected.stderr
    world.wait_for_phase("ranker", "RolledBack")

    history = plugin(kubeconfig, "history", "ranker")
    assert history.returncode == 0, history.stderr
    header, *rows = history.stdout.splitlines()
    assert header.split()[:6] == ["REVISION", "MODEL", "FROM", "ATTEMPT", "OUTCOME", "REASON"]
    assert [row.split()[1:6] for row in rows] == [
        ["2", "1", "1", "Promoted", "Promoted"],
        ["3", "2", "1", "RolledBack", "ApprovalRejected"],
    ]


def test_status_watch_redraws_as_the_rollout_moves_and_exits_when_it_settles(
    world: harness.World, controller: harness.Controller, kubeconfig: pathlib.Path
) -> None:
    # The analysis holds the rollout until the watch has drawn its first view; only then may it pass,
    # so the watch sees the release move whatever the machine's speed.
    _rolling_out(world, "Running")
    world.wait_for_status("ranker", lambda s: s.get("currentStepIndex") == 1 and bool(s.get("analysis")))
    with (
        tempfile.TemporaryFile("w+") as errors,
        subprocess.Popen(
            [str(KUBECTL), "modelrelease", "status", "ranker", "-w", "--kubeconfig", str(kubeconfig)],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        ) as watching,
    ):
        assert watching.stdout is not None
        # A watch that never settles is killed after 90 s, so a hang fails the test, not the suite.
        deadline = threading.Timer(90, watching.kill)
        deadline.start()
        try:
            first = watching.stdout.readline()  # blocks until the first view is printed
            world.script_analysis({"default": "Pass"})
            rest = watching.stdout.read()  # to the end: the watch exits when the release settles
            watching.wait()
        finally:
            deadline.cancel()
        errors.seek(0)
        assert watching.returncode == 0, errors.read()
    assert first == "---\n", first
    views = (first + rest).split("---\n")[1:]
    assert f"ModelRelease {world.namespace}/ranker: Progressing" in views[0]
    assert len(views) >= 2, "it redrew at least once before the rollout settled"
    assert f"ModelRelease {world.namespace}/ranker: Succeeded" in views[-1]


def test_errors_are_one_line_that_says_what_to_do(
    world: harness.World, kubeconfig: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    unknown = plugin(kubeconfig, "status", "nothing-here")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [
        f"error: ModelRelease nothing-here: not found in namespace {world.namespace} "
        f"(`kubectl modelrelease list -n {world.namespace}` shows the releases there)"
    ]
    missing = tmp_path / "no-such-kubeconfig"
    nowhere = plugin(missing, "list")
    assert nowhere.returncode == 1
    assert len(nowhere.stderr.strip().splitlines()) == 1
    assert "pass --kubeconfig or --context" in nowhere.stderr
    assert "Traceback" not in unknown.stderr + nowhere.stderr
