"""The InvalidSpec message a release shows (and Argo CD's health repeats): field paths as a manifest
spells them, and a rule across fields named `spec`, never `spec.`."""

from __future__ import annotations

import pydantic
import pytest

from controller.resources import modelrelease
from controller.runtime import reconciler

SPEC = {
    "model": {"name": "fraud", "version": "7"},
    "serving": {"image": "triton", "replicas": 2},
    "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
}


def _message(spec: dict[str, object]) -> str:
    with pytest.raises(pydantic.ValidationError) as caught:
        modelrelease.ModelReleaseSpec.model_validate(spec)
    return reconciler.build_invalid_spec_message(caught.value)


def test_a_field_problem_names_its_path_under_spec() -> None:
    spec = {**SPEC, "strategy": {"canary": {"steps": [{"setWeight": 150}]}}}
    assert _message(spec) == "spec.strategy.canary.steps[0].setWeight: 150 is above 100"


def test_a_rule_across_fields_names_spec_itself() -> None:
    spec = {**SPEC, "gpuBudget": {"maxExtraGPUs": 2}}  # a GPU budget, and no GPU in the pod
    message = _message(spec)
    assert message.startswith("spec: ")
