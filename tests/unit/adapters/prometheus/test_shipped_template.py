"""The AnalysisTemplate we ship selects each arm by labels the controller's pods really carry.

A Kubernetes service discovery gives a scraped pod its namespace and, by relabelling, its pod
labels (`modelrelease.dev/revision` → `revision`); nothing else. A selector on any other label
matches no real pod, and every analysis ends Inconclusive on no data — which the shipped template
did with `track` until the side-by-side benchmark (issue 28) ran it on the fleet.
"""

from __future__ import annotations

import pathlib
import re

import yaml

from analysis import reference
from controller import ports
from controller.adapters import workloads
from controller.domain import actions
from tests.unit.domain.builders import release_spec

ROOT = pathlib.Path(__file__).resolve().parents[4]
SHIPPED = ROOT / "gitops-repo-template" / "analysis-templates" / "inference-slo.yaml"
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!=|!~|=)\s*\"")


def _target_labels_of_a_canary_pod() -> set[str]:
    spec = release_spec()
    action = actions.CreateWorkload(
        name="fraud-abc123",
        revision="abc123",
        track=actions.Track.CANARY,
        replicas=1,
        model_name="fraud",
        model_version="7",
        model_uri="models:/fraud/7",
        serving=spec.serving,
        gpus_per_replica=1,
    )
    deployment = workloads.build_deployment(ports.ReleaseRef("ml", "fraud", "uid-1", spec), action)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    return {"namespace", *(key.split("/")[-1] for key in pod_labels)}


def _selected_labels(template: dict[str, object]) -> set[str]:
    text = yaml.safe_dump(template["spec"])
    return {label for label in MATCHER.findall(text) if label != "le"}


def test_the_shipped_template_selects_only_labels_a_canary_pod_carries() -> None:
    carried = _target_labels_of_a_canary_pod()
    selected = _selected_labels(yaml.safe_load(SHIPPED.read_text()))
    assert selected, "the template selects by no label at all"
    assert selected <= carried, f"selects by {sorted(selected - carried)}, which no pod carries"


def test_the_reference_template_selects_only_labels_a_canary_pod_carries() -> None:
    selected = _selected_labels(reference.reference_manifest())
    assert selected <= _target_labels_of_a_canary_pod(), sorted(selected)
