"""The CRDs are generated from the models, are structural, and accept every example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from controller import crdgen
from controller.cli import main as cli
from controller.resources import kinds

ROOT = Path(__file__).parents[3]
CRD_DIR = ROOT / "crds"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def _crd_schema(kind: str) -> dict[str, Any]:
    name = kinds.BY_KIND[kind].plural
    crd = yaml.safe_load((CRD_DIR / f"{name}.modelrelease.dev.yaml").read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_the_committed_crds_match_the_models() -> None:
    assert crdgen.diff_crds(CRD_DIR) == []


def test_crds_check_fails_when_a_committed_crd_drifts_from_the_models(tmp_path: Path) -> None:
    crdgen.write_crds(tmp_path)
    assert cli.main(["crds", "--check", "--out", str(tmp_path)]) == 0
    target = tmp_path / "modelreleases.modelrelease.dev.yaml"
    target.write_text(target.read_text().replace("maximum: 1000", "maximum: 999"))
    assert cli.main(["crds", "--check", "--out", str(tmp_path)]) == 1


def test_crds_check_fails_when_a_crd_file_is_missing_or_unexpected(tmp_path: Path) -> None:
    crdgen.write_crds(tmp_path)
    (tmp_path / "approvals.modelrelease.dev.yaml").unlink()
    (tmp_path / "stale.yaml").write_text("kind: Old\n")
    problems = crdgen.diff_crds(tmp_path)
    assert any("approvals" in p for p in problems)
    assert any("stale.yaml: no model generates this file" in p for p in problems)


def test_the_crds_pass_kubernetes_validate_strict() -> None:
    files = sorted(str(p) for p in CRD_DIR.glob("*.modelrelease.dev.yaml"))
    assert len(files) == len(kinds.KINDS)
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", *files], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _walk(node: dict[str, Any], path: str) -> list[str]:
    problems = []
    typeless_ok = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    if "type" not in node and not typeless_ok:
        problems.append(f"{path}: no type")
    for banned in ("$ref", "anyOf", "oneOf", "allOf", "not", "const", "title", "default"):
        if banned in node:
            problems.append(f"{path}: has {banned}")
    if node.get("additionalProperties") is False:
        problems.append(f"{path}: additionalProperties: false")
    for name, sub in node.get("properties", {}).items():
        problems.extend(_walk(sub, f"{path}.{name}"))
    if isinstance(node.get("items"), dict):
        problems.extend(_walk(node["items"], f"{path}[]"))
    if isinstance(node.get("additionalProperties"), dict):
        problems.extend(_walk(node["additionalProperties"], f"{path}{{}}"))
    return problems


@pytest.mark.parametrize("kind", [k.kind for k in kinds.KINDS])
def test_every_crd_schema_is_structural(kind: str) -> None:
    assert _walk(_crd_schema(kind), kind) == []


def test_the_modelrelease_crd_has_status_and_scale_subresources_short_name_and_printer_columns() -> None:
    crd = yaml.safe_load((CRD_DIR / "modelreleases.modelrelease.dev.yaml").read_text())
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.serving.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    assert crd["spec"]["names"]["shortNames"] == ["mrel"]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Phase", "Step", "Weight", "Stable", "Canary", "Replicas", "Verdict", "Age"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates_against_its_crd_schema(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        if document["apiVersion"].startswith("modelrelease.dev/"):  # examples ship the routes they need too
            jsonschema.Draft4Validator(_crd_schema(document["kind"])).validate(document)


def test_the_crd_schema_rejects_what_the_models_reject() -> None:
    document = next(yaml.safe_load_all((ROOT / "examples" / "canary-istio.yaml").read_text()))
    document["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = 120
    document["spec"]["serving"]["replicas"] = 0
    errors = list(jsonschema.Draft4Validator(_crd_schema("ModelRelease")).iter_errors(document))
    assert sorted(e.json_path for e in errors) == [
        "$.spec.serving.replicas",
        "$.spec.strategy.canary.steps[0].setWeight",
    ]


def test_a_union_with_no_structural_form_is_refused_by_the_generator() -> None:
    from pydantic import BaseModel

    class Bad(BaseModel):
        value: int | list[str]

    with pytest.raises(crdgen.SchemaTranslationError, match="not structural"):
        crdgen.build_structural_schema(Bad)
