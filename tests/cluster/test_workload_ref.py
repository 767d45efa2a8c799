"""A release that adopts an existing Deployment (`spec.serving.workloadRef`), on the real control plane:
the Helm-rendered model server's pod template served by the release's own Deployments, the model
injected; the referenced Deployment scaled to zero and otherwise untouched through deploy, a rollout
started by an edit of its template, a promoted model and a rolled-back one; and handed back its
size when the release is deleted."""

from __future__ import annotations

import copy
import pathlib
from typing import Any

from tests.cluster import harness

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"  # the deployment controller's own bookkeeping


def helm_rendered(image: str = "vllm/vllm-openai:v0.6.3") -> dict[str, Any]:
    """What a vLLM chart renders: more than `serving` can say inline (a volume, a sidecar, probes)."""
    labels = {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "ranker"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "vllm-ranker", "labels": {**labels, "helm.sh/chart": "vllm-0.3.1"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": {"prometheus.io/scrape": "true"}},
                "spec": {
                    "containers": [
                        {
                            "name": "vllm",
                            "image": image,
                            "args": ["--model", "$(MODEL_URI)", "--gpu-memory-utilization", "0.9"],
                            "env": [
                                {"name": "HF_HOME", "value": "/cache"},
                                {"name": "MODEL_URI", "value": "unset"},
                            ],
                            "ports": [{"name": "http", "containerPort": 8000}],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                            "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}},
                            "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
                        },
                        {"name": "log-shipper", "image": "fluent/fluent-bit:3.1"},
                    ],
                    "volumes": [{"name": "cache", "emptyDir": {}}],
                },
            },
        },
    }


def adopting_release(version: str) -> dict[str, Any]:
    body = harness.release_body("ranker", version)  # setWeight 25, analysis, setWeight 50; 2 extra GPUs
    body["spec"]["serving"] = {"workloadRef": {"kind": "Deployment", "name": "vllm-ranker"}, "replicas": 3}
    return body


def untouched_but_replicas(deployment: dict[str, Any]) -> dict[str, Any]:
    """What a user's Deployment says apart from its size and the deployment controller's annotation."""
    annotations = {
        k: v for k, v in (deployment["metadata"].get("annotations") or {}).items() if k != REVISION_ANNOTATION
    }
    spec = {k: v for k, v in deployment["spec"].items() if k != "replicas"}
    return {"labels": deployment["metadata"].get("labels"), "annotations": annotations, "spec": spec}


def includes(actual: Any, expected: Any) -> None:
    """`actual` says everything `expected` says (the API server adds its defaults: probe periods, …)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), (actual, expected)
        for key, value in expected.items():
            assert key in actual, f"{key} missing from {actual}"
            includes(actual[key], value)
    elif isinstance(expected, list):
        assert isinstance(actual, list), (actual, expected)
        assert len(actual) == len(expected), (actual, expected)
        for got, want in zip(actual, expected, strict=True):
            includes(got, want)
    else:
        assert actual == expected, (actual, expected)


def argo_cd_health(deployment: dict[str, Any]) -> str:
    """Argo CD's built-in Deployment health (gitops-engine pkg/health/health_deployment.go), for
    what the real deployment controller writes: Healthy once the status has caught up with spec."""
    spec, status = deployment["spec"], deployment.get("status") or {}
    if spec.get("paused"):
        return "Suspended"
    if deployment["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return "Progressing"
    progressing = next((c for c in status.get("conditions") or [] if c["type"] == "Progressing"), {})
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return "Degraded"
    updated = status.get("updatedReplicas", 0)
    if updated < spec.get("replicas", 1) or status.get("replicas", 0) > updated:
        return "Progressing"
    return "Progressing" if status.get("availableReplicas", 0) < updated else "Healthy"


def edit_image(world: harness.World, image: str) -> None:
    """What a chart upgrade does to the adopted Deployment: a new image in its template."""
    template = {"spec": {"containers": [{"name": "vllm", "image": image}]}}
    patch = {"spec": {"template": template}}
    world.patch("deployments", "vllm-ranker", patch, content_type="application/strategic-merge-patch+json")


def ours(world: harness.World) -> dict[str, dict[str, Any]]:
    return {name: d for name, d in world.deployments().items() if name != "vllm-ranker"}


def test_an_adopting_release_deploys_rolls_out_and_back_leaving_the_deployment_at_zero_and_unchanged(
    world: harness.World, controller: harness.Controller
) -> None:
    world.script_analysis({"2": "Pass", "3": "Fail"})
    world.create(helm_rendered())
    before = untouched_but_replicas(world.get("deployments", "vllm-ranker"))
    world.create(adopting_release("1"))
    first = world.wait_for_phase("ranker", "Succeeded")
    referenced = lambda: world.get("deployments", "vllm-ranker")  # noqa: E731
    world.wait_until(
        lambda: referenced()["spec"]["replicas"] == 0, timeout=30, what="the adopted Deployment at 0"
    )

    (serving,) = ours(world).values()
    assert serving["spec"]["replicas"] == 3
    pod = serving["spec"]["template"]
    chart_pod = helm_rendered()["spec"]["template"]
    vllm = pod["spec"]["containers"][0]
    assert {e["name"]: e["value"] for e in vllm["env"]} == {
        "HF_HOME": "/cache",
        "MODEL_URI": "models:/ranker/1",
        "MODEL_NAME": "ranker",
        "MODEL_VERSION": "1",
    }, "the model is injected into the first container, replacing the chart's placeholder"
    includes(vllm, {k: v for k, v in chart_pod["spec"]["containers"][0].items() if k != "env"})
    includes(pod["spec"]["containers"][1], chart_pod["spec"]["containers"][1])
    assert pod["spec"]["containers"][1]["name"] == "log-shipper"
    assert pod["spec"]["volumes"][0]["name"] == "cache"
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "vllm"
    assert pod["metadata"]["labels"]["modelrelease.dev/revision"] == first["stableRevision"]
    events = {e["reason"] for e in world.events()}
    assert "AdoptedScaledDown" in events

    # An edit of the referenced Deployment's template is a new revision: a rollout, like a spec edit.
    world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
    promoted = world.wait_for_status(
        "ranker", lambda s: s.get("phase") == "Succeeded" and s.get("stableModelVersion") == "2"
    )
    edit_image(world, "vllm/vllm-openai:v0.6.4")
    edited = world.wait_for_status(
        "ranker",
        lambda s: (
            s.get("phase") == "Succeeded"
            and s.get("stableRevision") not in (promoted["stableRevision"], None)
        ),
        timeout=90,
        what="the template edit rolled out",
    )
    assert [r["verdict"] for r in edited["analysis"]] == ["Pass"]
    world.wait_until(lambda: len(ours(world)) == 1, timeout=30, what="the previous stable retired")
    (serving,) = ours(world).values()
    assert serving["spec"]["template"]["spec"]["containers"][0]["image"] == "vllm/vllm-openai:v0.6.4"

    world.patch_release("ranker", {"spec": {"model": {"version": "3"}}})
    rolled = world.wait_for_phase("ranker", "RolledBack")
    assert rolled["stableRevision"] == edited["stableRevision"]
    world.wait_until(lambda: len(ours(world)) == 1, timeout=30, what="the rolled-back canary removed")

    def healthy() -> dict[str, Any] | None:
        found = referenced()
        return found if argo_cd_health(found) == "Healthy" else None

    adopted = world.wait_until(
        healthy,
        timeout=30,
        what="Argo CD's health of the adopted Deployment at zero: Healthy",
    )
    assert adopted["spec"]["replicas"] == 0
    assert (adopted["status"].get("replicas", 0), adopted["status"].get("readyReplicas", 0)) == (0, 0)
    after = untouched_but_replicas(adopted)
    after["spec"]["template"]["spec"]["containers"][0]["image"] = (
        "vllm/vllm-openai:v0.6.3"  # the test's own edit
    )
    assert after == before
    writes = [w for w in world.controller_writes() if w.plural == "deployments" and w.name == "vllm-ranker"]
    assert writes, "the controller scaled it"
    assert all(w.verb == "patch" and set(w.object["spec"]) >= {"replicas"} for w in writes)

    # Deleted, the release hands serving back: the Deployment at the release's size, ours gone.
    world.delete("modelreleases", "ranker")
    world.wait_until(
        lambda: referenced()["spec"]["replicas"] == 3, timeout=30, what="the Deployment handed back"
    )
    world.wait_until(lambda: not ours(world), timeout=30, what="the release's Deployments deleted")


def test_a_release_whose_workload_ref_names_no_deployment_is_blocked_and_starts_once_it_exists(
    world: harness.World, controller: harness.Controller
) -> None:
    world.create(adopting_release("1"))
    blocked = world.wait_for_status("ranker", lambda s: "vllm-ranker" in s.get("message", ""), timeout=30)
    assert "spec.serving.workloadRef: Deployment" in blocked["message"]
    assert "does not exist" in blocked["message"]
    assert not world.deployments()
    world.create(copy.deepcopy(helm_rendered()))
    world.wait_for_phase("ranker", "Succeeded", timeout=60)

    # A typo naming a release's own Deployment is refused: adopting it would scale serving to zero.
    (serving,) = ours(world)
    mistaken = adopting_release("1")
    mistaken["metadata"]["name"] = "mistaken"
    mistaken["spec"]["serving"]["workloadRef"]["name"] = serving
    world.create(mistaken)
    refused = world.wait_for_status(
        "mistaken", lambda s: "modelrelease runs" in s.get("message", ""), timeout=30
    )
    assert (
        f"spec.serving.workloadRef: Deployment {world.namespace}/{serving} is one modelrelease runs"
        in (refused["message"])
    )
    assert world.get("deployments", serving)["spec"]["replicas"] == 3


def at_rest(world: harness.World) -> bool:
    """The adopted Deployment's pods are gone, and the controller looked at the pods after the last
    one went: nothing is left to wake it but a change (or its poll)."""
    if (world.get("deployments", "vllm-ranker").get("status") or {}).get("replicas", 0) != 0:
        return False
    calls = world.calls()
    gone = [
        c.seq
        for c in calls
        if c.verb == "delete" and c.plural == "pods" and c.name.startswith("vllm-ranker-")
    ]
    looked = [
        c.seq for c in calls if c.user == harness.CONTROLLER_USER and c.verb == "list" and c.plural == "pods"
    ]
    return bool(gone) and bool(looked) and looked[-1] > gone[-1]


def test_an_edit_of_the_adopted_template_wakes_the_controller_without_waiting_for_its_poll(
    world: harness.World, tmp_path: pathlib.Path
) -> None:
    """The controller looks again at least every 5 minutes here: a rollout that starts within 20 s of
    the edit was started by the watch on the adopted Deployment (an index of the releases adopting it)."""
    controller = harness.Controller(world, tmp_path / "controller.log", "--poll-interval", "300").start()
    world.on_close(controller.stop)
    world.create(helm_rendered())
    world.create(adopting_release("1"))
    first = world.wait_for_phase("ranker", "Succeeded")
    world.wait_until(lambda: at_rest(world), timeout=30, what="the controller at rest after the adoption")
    edit_image(world, "vllm/vllm-openai:v0.6.4")
    started = world.wait_for_status(
        "ranker",
        lambda s: s.get("canaryRevision") not in (None, first["stableRevision"]),
        timeout=20,
        what="a rollout of the edited template",
    )
    assert started["canaryModelVersion"] == "1"
