"""Reading an adopted Deployment into the spec: what the engine gets, and the clear errors before it."""

from __future__ import annotations

from typing import Any, cast

import pytest

from controller import errors, ports
from controller.resources import modelrelease
from controller.runtime import adoption

TEMPLATE = {
    "spec": {
        "containers": [{"name": "vllm", "image": "vllm:0.6", "resources": {"limits": {"nvidia.com/gpu": 2}}}]
    }
}


class Workloads:
    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template

    def fetch_referenced(self, namespace: str, name: str) -> tuple[dict[str, Any], int]:
        return self.template, 3


class Io:
    def __init__(self, template: dict[str, Any]) -> None:
        self.workloads = Workloads(template)


def spec(**ref: str) -> modelrelease.ModelReleaseSpec:
    return modelrelease.ModelReleaseSpec.model_validate(
        {
            "model": {"name": "chat", "version": "5"},
            "serving": {"workloadRef": {"name": "vllm-chat", **ref}, "replicas": 2},
            "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
            "gpuBudget": {"maxExtraGPUs": 2},
        }
    )


def read(template: dict[str, Any], **ref: str) -> modelrelease.ModelReleaseSpec:
    return adoption.adopt(cast(ports.Ports, Io(template)), "ml", spec(**ref))


def test_the_referenced_template_and_size_are_read_into_the_spec_the_engine_gets() -> None:
    adopted = read(TEMPLATE)
    assert adopted.serving.adopted == modelrelease.Adopted(template=TEMPLATE, replicas=3)
    assert adopted.gpus_per_replica == 2
    assert adopted.serving.replicas == 2, "the release's size stays the release's"


def test_a_container_the_deployment_lacks_is_refused_naming_the_ones_it_has() -> None:
    with pytest.raises(errors.InvalidError) as refused:
        read(TEMPLATE, container="server")
    assert str(refused.value) == (
        "spec.serving.workloadRef.container: Deployment ml/vllm-chat has no container 'server'; it has vllm"
    )


def test_a_template_without_the_budgets_gpus_is_refused() -> None:
    cpu_only = {"spec": {"containers": [{"name": "vllm", "image": "vllm:0.6"}]}}
    with pytest.raises(errors.InvalidError, match="asks for none of it"):
        read(cpu_only)
