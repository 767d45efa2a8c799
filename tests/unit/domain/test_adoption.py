"""A release that adopts a Deployment (`serving.workloadRef`): the referenced pod template is the
release's template — its revision and its GPUs — and the Deployment is scaled to zero once the release
serves, and never before."""

from __future__ import annotations

import copy
from typing import Any

from controller.domain import actions, naming
from controller.resources import modelrelease, releasestatus
from tests.unit.domain import builders
from tests.unit.domain import world as w

Phase = releasestatus.Phase
TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "vllm"}},
    "spec": {
        "containers": [
            {"name": "vllm", "image": "vllm:0.6", "resources": {"limits": {"nvidia.com/gpu": "2"}}},
            {"name": "shipper", "image": "fluent-bit:3", "resources": {"requests": {"nvidia.com/gpu": 1}}},
        ]
    },
}


def adopting(template: dict[str, Any], replicas: int, version: str = "6") -> modelrelease.ModelReleaseSpec:
    """What the shell hands the engine: the spec with the referenced Deployment read in."""
    spec = builders.release_spec(version=version, max_extra_gpus=6, router={"replicas": {}})
    serving = modelrelease.Serving.model_validate(
        {"workloadRef": {"name": "vllm-ranker"}, "replicas": 4, "warmup": "60s"}
    )
    return spec.model_copy(update={"serving": serving.adopting(template, replicas)})


def test_the_adopted_template_is_the_revision_and_its_containers_are_the_gpus_per_replica() -> None:
    spec = adopting(TEMPLATE, 3)
    revision = naming.build_revision(spec.serving, "fraud", "6")
    assert spec.gpus_per_replica == 3  # 2 (limit) + 1 (request) across both containers
    assert naming.build_revision(adopting(TEMPLATE, 0).serving, "fraud", "6") == revision, "its size is not"
    edited = copy.deepcopy(TEMPLATE)
    edited["spec"]["containers"][0]["image"] = "vllm:0.7"
    assert naming.build_revision(adopting(edited, 3).serving, "fraud", "6") != revision, "its template is"


def test_the_adopted_deployment_is_scaled_to_zero_once_the_release_serves_and_not_before() -> None:
    world = w.World(model_version="6")
    run = w.Run(adopting(TEMPLATE, 3), world)
    scaled: list[tuple[Phase, str | None]] = []

    def adopted_scaled(r: w.Run) -> bool:
        for action in r.decisions[-1].actions:
            if isinstance(action, actions.ScaleWorkload) and action.name == "vllm-ranker":
                scaled.append((r.status.phase, r.status.stable_revision))
                assert action.replicas == 0
                return True
        return False

    run.until(adopted_scaled)
    assert scaled == [(Phase.SUCCEEDED, run.status.stable_revision)]
    assert run.status.stable_revision is not None
    said = [e for d in run.decisions for e in d.events if e.reason == "AdoptedScaledDown"]
    assert [e.message for e in said] == [
        "Deployment vllm-ranker scaled from 3 to 0: the release serves its template"
    ]
    assert run.spec.serving.adopted is not None
    assert run.spec.serving.adopted.replicas == 0  # what the shell read next
    before = len(run.decisions)
    run.settle()
    again = [a for d in run.decisions[before:] for a in d.actions if isinstance(a, actions.ScaleWorkload)]
    assert not again, "scaled once: at zero it is left alone"
