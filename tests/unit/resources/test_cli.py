"""The `modelrelease` command: validate, plan and crds, as a PR check would run them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from analysis import reference
from controller.cli import main as cli

ROOT = Path(__file__).parents[3]
RELEASE = """\
apiVersion: modelrelease.dev/v1alpha1
kind: ModelRelease
metadata: {name: fraud}
spec:
  model: {name: fraud, version: "7"}
  serving: {image: triton, replicas: 4, resources: {limits: {nvidia.com/gpu: 1}}}
  strategy: {canary: {steps: [{setWeight: 10}, {setWeight: STEP}]}}
  trafficRouting: {gatewayAPI: {httpRoute: fraud}}
  gpuBudget: {maxExtraGPUs: 2}
"""


def test_validate_exits_0_and_names_each_valid_resource(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(ROOT / "examples" / "blue-green.yaml")]) == 0
    assert "ModelRelease embeddings: valid" in capsys.readouterr().out


def test_validate_exits_1_and_prints_every_problem_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "release.yaml"
    bad.write_text(RELEASE.replace("STEP", "150"))
    missing = tmp_path / "missing.yaml"
    assert cli.main(["validate", str(bad), str(missing)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert f"{bad}:7: spec.strategy.canary.steps[1].setWeight: 150 is above 100" in err
    assert f"{missing}: cannot read: No such file or directory" in err


def test_plan_prints_replicas_per_step_and_the_peak_gpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = tmp_path / "release.yaml"
    release.write_text(RELEASE.replace("STEP", "50"))
    assert cli.main(["plan", str(release)]) == 0
    out = capsys.readouterr().out
    assert "step 1 (setWeight 50)" in out
    assert "peak GPUs: 6 (budget 6)" in out


def test_plan_with_an_expected_request_rate_says_how_long_each_analysis_step_should_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = tmp_path / "release.yaml"
    steps = "[{setWeight: 10}, {analysis: {template: inference-slo, maxDuration: 1h}}, {setWeight: 50}]"
    release.write_text(RELEASE.replace("[{setWeight: 10}, {setWeight: STEP}]", steps))
    template = tmp_path / "template.yaml"
    template.write_text(yaml.safe_dump(reference.reference_manifest()))
    assert cli.main(["plan", str(release), str(template), "--expected-rps", "1000"]) == 0
    fast = capsys.readouterr().out
    assert "step 1 (analysis inference-slo): expected ~" in fast
    assert "to pass at 1000 requests/s and 10% canary" in fast
    assert "beyond maxDuration" not in fast
    assert cli.main(["plan", str(release), str(template), "--expected-rps", "10"]) == 0
    assert "beyond maxDuration: expect Inconclusive" in capsys.readouterr().out


def test_plan_exits_1_with_the_reason_when_the_budget_cannot_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = tmp_path / "release.yaml"
    release.write_text(RELEASE.replace("STEP", "100"))
    assert cli.main(["plan", str(release)]) == 1
    assert "refused (GPUBudgetExceeded): step 1 (setWeight 100)" in capsys.readouterr().out


def test_crds_writes_one_file_per_kind(tmp_path: Path) -> None:
    assert cli.main(["crds", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "analysistemplates.modelrelease.dev.yaml",
        "approvals.modelrelease.dev.yaml",
        "gitsources.modelrelease.dev.yaml",
        "modelreleases.modelrelease.dev.yaml",
    ]
