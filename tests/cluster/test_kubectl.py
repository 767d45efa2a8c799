"""The commands a newcomer types first, with the real kubectl against the real API server: our CRDs'
printer columns, short names, a watch, scale, and the schema refusing a bad value."""

from __future__ import annotations

import pathlib
import subprocess
import sys

from tests.cluster import harness

KUBECTL = pathlib.Path(sys.executable).parent / "kubectl"


def _kubectl(kubeconfig: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _cells(header: str, row: str) -> dict[str, str]:
    """A kubectl table row by column (cells may be empty, so split at the header's column starts)."""
    names = header.split()
    starts = [header.index(name) for name in names]
    ends = [*starts[1:], None]
    return {name: row[start:end].strip() for name, start, end in zip(names, starts, ends, strict=True)}


def test_kubectl_get_mrel_shows_the_verdict_of_the_last_analysis(
    world: harness.World, controller: harness.Controller, kubeconfig: pathlib.Path
) -> None:
    world.script_analysis({"default": "Pass"})
    world.create(harness.release_body("ranker", "1"))
    world.wait_for_phase("ranker", "Succeeded")
    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
    world.wait_for_status("ranker", lambda s: s.get("stableModelVersion") == "2")
    shown = _kubectl(kubeconfig, "get", "mrel", "ranker")
    assert shown.returncode == 0, shown.stderr
    header, row = shown.stdout.splitlines()
    assert _cells(header, row)["VERDICT"] == "Pass"


def test_kubectl_get_mrel_watch_keeps_printing_every_column(
    world: harness.World, controller: harness.Controller, kubeconfig: pathlib.Path
) -> None:
    world.create(harness.release_body("ranker", "1"))
    world.wait_for_phase("ranker", "Succeeded")
    with subprocess.Popen(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "get", "mrel", "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as watching:
        try:
            assert watching.stdout is not None
            header = watching.stdout.readline()
            first = _cells(header, watching.stdout.readline())
            world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
            changed = _cells(header, watching.stdout.readline())  # blocks until the watch event arrives
        finally:
            watching.kill()
    assert first["PHASE"] == "Succeeded"
    assert first["STABLE"] == "1"
    assert changed["NAME"] == "ranker"
    assert changed["STABLE"] == "1"  # every column, not only NAME and AGE


def test_short_names_scale_and_a_value_outside_the_schema_is_refused_by_the_server(
    world: harness.World, kubeconfig: pathlib.Path
) -> None:
    world.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "registry.example.com/web:1"}]},
                },
            },
        }
    )
    scaled = _kubectl(kubeconfig, "scale", "deploy", "web", "--replicas=3")
    assert scaled.returncode == 0, scaled.stderr
    assert world.deployments()["web"]["spec"]["replicas"] == 3
    listed = _kubectl(kubeconfig, "get", "mrel,mat,deploy")
    assert listed.returncode == 0, listed.stderr
    assert "deployment.apps/web" in listed.stdout
    bad = _kubectl(kubeconfig, "apply", "-f", str(harness.ROOT / "tests/cluster/data/approval-maybe.yaml"))
    assert bad.returncode != 0
    assert 'spec.decision: Unsupported value: "maybe"' in bad.stderr
