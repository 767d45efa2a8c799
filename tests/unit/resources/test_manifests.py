"""Manifest validation: every bad input gets an error that names the file, line, field and problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from analysis import schema
from controller import manifests
from controller.resources import kinds

EXAMPLES = sorted((Path(__file__).parents[3] / "examples").glob("*.yaml"))

VALID_RELEASE = """\
apiVersion: modelrelease.dev/v1alpha1
kind: ModelRelease
metadata: {name: fraud}
spec:
  model: {name: fraud, version: "7"}
  serving:
    image: triton
    replicas: 2
    resources: {limits: {nvidia.com/gpu: 1}}
  strategy:
    canary:
      steps:
        - setWeight: 10
        - analysis: {template: lat}
        - setWeight: 50
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(manifests.ManifestError) as caught:
        manifests.load_text(text, "release.yaml")
    return [str(p) for p in caught.value.problems]


def test_every_example_manifest_loads() -> None:
    assert EXAMPLES, "no examples found"
    for path in EXAMPLES:
        assert manifests.load_file(path), path


def test_a_valid_release_loads_with_defaults_filled_in() -> None:
    [loaded] = manifests.load_text(VALID_RELEASE, "release.yaml")
    release = loaded.resource
    assert isinstance(release, kinds.ModelRelease)
    assert release.spec.traffic_routing.by_replicas
    assert release.spec.progress_deadline.total_seconds() == 600
    assert release.spec.strategy.canary is not None
    assert release.spec.strategy.canary.steps[1].analysis is not None
    assert release.spec.strategy.canary.steps[1].analysis.max_duration.total_seconds() == 900


def test_a_weight_above_100_names_the_step_path_the_value_and_the_line() -> None:
    text = VALID_RELEASE.replace("setWeight: 50", "setWeight: 120")
    assert _errors(text) == [
        "release.yaml:15: ModelRelease fraud: spec.strategy.canary.steps[2].setWeight: 120 is above 100"
    ]


def test_an_unknown_field_is_named_with_its_line() -> None:
    text = VALID_RELEASE.replace("    replicas: 2\n", "    replicas: 2\n    replicaz: 3\n")
    assert _errors(text) == [
        "release.yaml:9: ModelRelease fraud: spec.serving.replicaz: "
        "unknown field (check its spelling and indentation)"
    ]


def test_all_problems_of_a_file_are_reported_not_only_the_first() -> None:
    text = VALID_RELEASE.replace("setWeight: 50", "setWeight: -5").replace("replicas: 2", "replicas: 0")
    errors = _errors(text)
    assert len(errors) == 2
    assert any("spec.serving.replicas: 0 is below 1" in e for e in errors)
    assert any("spec.strategy.canary.steps[2].setWeight: -5 is below 0" in e for e in errors)


def test_a_step_with_two_kinds_says_which_it_got() -> None:
    text = VALID_RELEASE.replace("- setWeight: 10", "- {setWeight: 10, pause: {}}")
    [error] = _errors(text)
    assert "spec.strategy.canary.steps[0]: a step has exactly one of" in error
    assert "(got setWeight, pause)" in error


def test_both_version_and_alias_is_refused() -> None:
    text = VALID_RELEASE.replace('version: "7"', 'version: "7", alias: champion')
    [error] = _errors(text)
    assert error.endswith("spec.model: give exactly one of 'version' or 'alias'")


def test_both_strategies_at_once_is_refused() -> None:
    text = VALID_RELEASE.replace("    canary:\n", "    blueGreen: {}\n    canary:\n")
    assert any("spec.strategy: give exactly one of 'canary' or 'blueGreen'" in e for e in _errors(text))


def test_a_bad_duration_says_how_to_write_one() -> None:
    text = VALID_RELEASE.replace("{template: lat}", "{template: lat, maxDuration: soon}")
    [error] = _errors(text)
    assert "steps[1].analysis.maxDuration: 'soon' is not a duration; write it like '90s'" in error


def test_a_fractional_gpu_is_refused() -> None:
    text = VALID_RELEASE.replace("nvidia.com/gpu: 1", "nvidia.com/gpu: 500m")
    [error] = _errors(text)
    assert "nvidia.com/gpu: '500m' is not a whole number of accelerators" in error


def test_a_gpu_budget_without_gpus_in_the_pod_is_refused() -> None:
    text = (
        VALID_RELEASE.replace(", resources: {limits: {nvidia.com/gpu: 1}}", "").replace(
            "    resources: {limits: {nvidia.com/gpu: 1}}\n", ""
        )
        + "  gpuBudget: {maxExtraGPUs: 2}\n"
    )
    [error] = _errors(text)
    assert "gpuBudget counts 'nvidia.com/gpu' but serving.resources asks for none of it" in error


def test_an_unknown_kind_lists_the_known_ones() -> None:
    [error] = _errors("apiVersion: modelrelease.dev/v1alpha1\nkind: ModelReleas\nmetadata: {name: x}\n")
    assert error.startswith("release.yaml:1: expected apiVersion modelrelease.dev/v1alpha1 and a kind of")
    assert "ModelRelease, AnalysisTemplate, GitSource, Approval" in error


def test_resources_of_other_api_groups_beside_a_release_are_skipped() -> None:
    route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n---\n"
    [loaded] = manifests.load_text(route + VALID_RELEASE, "release.yaml")
    assert loaded.line == 5


def test_a_file_with_no_resource_of_ours_says_what_it_found() -> None:
    [error] = _errors("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n")
    assert error == (
        "release.yaml:1: no modelrelease.dev/v1alpha1 resource (ModelRelease, AnalysisTemplate, GitSource, "
        "Approval) here; found only Pod x"
    )


def test_broken_yaml_points_at_the_line() -> None:
    [error] = _errors("apiVersion: x\nkind: [unclosed\n")
    assert error.startswith("release.yaml:3:1: not valid YAML")


def test_problems_in_every_document_of_a_multi_document_file_are_reported() -> None:
    bad = VALID_RELEASE.replace("setWeight: 50", "setWeight: 101")
    errors = _errors(bad + "---\n" + bad)
    assert [e.split(":")[1] for e in errors] == ["15", "31"]


def test_an_analysis_template_with_an_unknown_variable_is_refused() -> None:
    text = """\
apiVersion: modelrelease.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: t}
spec:
  metrics:
    - name: errors
      kind: errorRate
      errorRate: {requests: 'sum(x{pod="{{pod}}"})', errors: 'sum(y)'}
"""
    [error] = _errors(text)
    assert "spec.metrics[0]: unknown template variable {{pod}}" in error


def test_a_metric_kind_needs_its_own_queries_block() -> None:
    text = """\
apiVersion: modelrelease.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: t}
spec:
  metrics:
    - name: p99
      kind: latency
      errorRate: {requests: 'a', errors: 'b'}
"""
    [error] = _errors(text)
    assert "kind latency needs its queries under 'latency'" in error


def test_a_duration_round_trips_in_its_shortest_spelling() -> None:
    [loaded] = manifests.load_text(
        VALID_RELEASE.replace("{template: lat}", "{template: lat, maxDuration: 90m}"), "r"
    )
    release = loaded.resource
    assert isinstance(release, kinds.ModelRelease)
    dumped = release.spec.to_manifest()
    assert dumped["strategy"]["canary"]["steps"][1]["analysis"]["maxDuration"] == "1h30m"


@pytest.mark.parametrize("api_version", ["modelreleases.dev/v1alpha1", "modelrelase.dev/v1alpha1"])
def test_a_near_miss_of_our_group_is_an_error_naming_the_group_it_expected(api_version: str) -> None:
    text = VALID_RELEASE.replace("modelrelease.dev/v1alpha1", api_version)
    [error] = _errors(text)
    group = api_version.split("/")[0]
    assert error == (
        f"release.yaml:1: apiVersion: group {group!r} is not modelrelease.dev, the group of ModelRelease; "
        "write apiVersion: modelrelease.dev/v1alpha1"
    )


def test_a_kind_of_ours_under_another_group_is_an_error_even_in_a_folder() -> None:
    text = VALID_RELEASE.replace("modelrelease.dev/v1alpha1", "ml.example.com/v1")
    with pytest.raises(manifests.ManifestError) as caught:
        manifests.read_text(text, "releases/fraud.yaml", in_folder=True)
    [problem] = caught.value.problems
    assert "group 'ml.example.com' is not modelrelease.dev" in problem.message


def test_a_group_far_from_ours_with_a_kind_of_its_own_is_another_tools_resource() -> None:
    loaded = manifests.read_text(
        "apiVersion: modelregistry.io/v1\nkind: Model\nmetadata: {name: m}\n", "m.yaml", in_folder=True
    )
    assert [f.kind for f in loaded.foreign] == ["Model"]


@pytest.mark.parametrize(
    ("replace", "path", "said"),
    [
        ("- setWeight: 50", "spec.strategy.canary.steps[2].pause.duration", "longer than 3650 days"),
        ("image: triton", "spec.serving.warmup", "longer than 3650 days"),
        ("replicas: 2", "spec.progressDeadline", "out of range: longer than 0s and at most 24h"),
        ("analysis: {template: lat}", "spec.strategy.canary.steps[1].analysis.maxDuration", "longer than"),
        ("- setWeight: 10", "spec.strategy.canary.steps[0].analysis.maxDuration", "at most 168h"),
    ],
    ids=[
        "pause 9999999999999h",
        "warmup 999999999s",
        "progressDeadline 0s",
        "maxDuration 100000h",
        "maxDuration 8d",
    ],
)
def test_a_hostile_duration_is_a_validation_error_naming_its_field_and_range(
    replace: str, path: str, said: str
) -> None:
    hostile = {
        "- setWeight: 50": "- pause: {duration: 9999999999999h}",
        "image: triton": "image: triton\n    warmup: 999999999s",
        "replicas: 2": "replicas: 2\n  progressDeadline: 0s",
        "analysis: {template: lat}": "analysis: {template: lat, maxDuration: 100000h}",
        "- setWeight: 10": "- analysis: {template: lat, maxDuration: 8d}",
    }[replace]
    text = VALID_RELEASE.replace(replace, hostile)
    if replace == "replicas: 2":  # progressDeadline belongs to spec, not serving
        text = VALID_RELEASE.replace("  strategy:", "  progressDeadline: 0s\n  strategy:")
    [error] = _errors(text)
    assert f"ModelRelease fraud: {path}: " in error
    assert said in error


def test_every_duration_field_in_the_crds_has_a_bounded_pattern_and_length() -> None:
    def durations(node: object, where: str = "") -> list[tuple[str, dict[str, object]]]:
        found = []
        if isinstance(node, dict):
            if node.get("pattern") == schema.DURATION_PATTERN:
                found.append((where, node))
            for key, value in node.items():
                found += durations(value, f"{where}.{key}")
        elif isinstance(node, list):
            for item in node:
                found += durations(item, where)
        return found

    crds = Path(__file__).parents[3] / "crds"
    fields = [f for crd in crds.glob("*.yaml") for f in durations(yaml.safe_load(crd.read_text()))]
    assert len(fields) >= 10
    assert all(node["maxLength"] == schema.DURATION_MAX_LENGTH for _, node in fields)
    assert re.fullmatch(schema.DURATION_PATTERN, "9999999999999h") is None
    assert re.fullmatch(schema.DURATION_PATTERN, "1h30m") is not None
