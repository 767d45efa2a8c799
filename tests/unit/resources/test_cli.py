"""The `modelrelease` command: validate, plan and crds, as a PR check would run them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import git
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
    assert cli.main(["validate", str(ROOT / "examples")]) == 0
    assert "ModelRelease embeddings: valid" in capsys.readouterr().out


def test_validate_exits_1_and_prints_every_problem_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "release.yaml"
    bad.write_text(RELEASE.replace("STEP", "150"))
    missing = tmp_path / "missing.yaml"
    assert cli.main(["validate", str(bad), str(missing)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert f"{bad}:7: ModelRelease fraud: spec.strategy.canary.steps[1].setWeight: 150 is above 100" in err
    assert f"{missing}: cannot read: No such file or directory" in err


def test_plan_prints_replicas_per_step_and_the_peak_gpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = tmp_path / "release.yaml"
    release.write_text(RELEASE.replace("STEP", "50"))
    assert cli.main(["plan", str(release)]) == 0
    out = capsys.readouterr().out
    assert "step 1 (setWeight 50)" in out
    assert "peak GPUs 6 = stable 4 + 2 extra; budget 4 + maxExtraGPUs 2 = 6: fits" in out


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
    assert cli.main(["plan", str(release), str(template), "--expected-rps", "100"]) == 0
    assert "(no early pass expected: at maxDuration the fixed-horizon test passes" in capsys.readouterr().out
    assert cli.main(["plan", str(release), str(template), "--expected-rps", "10"]) == 0
    assert "beyond maxDuration: expect Inconclusive" in capsys.readouterr().out


def test_plan_exits_1_with_the_reason_when_the_budget_cannot_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = tmp_path / "release.yaml"
    release.write_text(RELEASE.replace("STEP", "100"))
    assert cli.main(["plan", str(release)]) == 1
    assert "refused (GPUBudgetExceeded): step 1 (setWeight 100)" in capsys.readouterr().out


def test_crds_writes_one_file_per_kind_and_the_kustomization_that_lists_them(tmp_path: Path) -> None:
    assert cli.main(["crds", "--out", str(tmp_path)]) == 0
    crds = [
        "analysistemplates.modelrelease.dev.yaml",
        "approvals.modelrelease.dev.yaml",
        "gitsources.modelrelease.dev.yaml",
        "modelreleases.modelrelease.dev.yaml",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*crds, "kustomization.yaml"])
    assert yaml.safe_load((tmp_path / "kustomization.yaml").read_text())["resources"] == crds


TEMPLATE_REPO = ROOT / "gitops-repo-template"


def _repo_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(TEMPLATE_REPO, copy)
    return copy


def test_validate_passes_the_release_repository_template(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(TEMPLATE_REPO)]) == 0
    out = capsys.readouterr().out
    assert "ModelRelease ranker: valid" in out
    assert "ModelRelease embeddings: valid" in out
    assert "AnalysisTemplate inference-slo: valid" in out


def test_validate_names_the_file_line_and_column_of_broken_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _repo_copy(tmp_path)
    release = repo / "releases" / "ranker" / "release.yaml"
    release.write_text(release.read_text().replace("  strategy:\n", "  strategy:\n   - [broken\n", 1))
    assert cli.main(["validate", str(repo)]) == 1
    [problem, summary] = capsys.readouterr().err.splitlines()
    assert problem == (
        f"{release}:20:11: not valid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence at line 19, column 6)"
    )
    assert summary == "8 file(s), 3 resource(s): 1 problem(s)"


def test_validate_names_the_file_line_and_field_of_a_schema_error_and_keeps_checking_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _repo_copy(tmp_path)
    release = repo / "releases" / "ranker" / "release.yaml"
    release.write_text(release.read_text().replace("setWeight: 25", "setWeight: 250"))
    assert cli.main(["validate", str(repo)]) == 1
    captured = capsys.readouterr()
    assert (
        f"{release}:23: ModelRelease ranker: spec.strategy.canary.steps[2].setWeight: 250 is above 100"
        in captured.err
    )
    assert "ModelRelease embeddings: valid" in captured.out


def test_validate_checks_references_and_unique_names_across_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _repo_copy(tmp_path)
    (repo / "analysis-templates" / "inference-slo.yaml").unlink()
    twin = repo / "releases" / "ranker-copy" / "release.yaml"
    twin.parent.mkdir()
    twin.write_text((repo / "releases" / "embeddings" / "release.yaml").read_text())
    assert cli.main(["validate", str(repo), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    problems = {
        (Path(p["file"]).relative_to(repo).as_posix(), p["line"], p["path"]): p["message"]
        for p in report["problems"]
    }
    missing = problems[
        ("releases/ranker/release.yaml", 22, "spec.strategy.canary.steps[1].analysis.template")
    ]
    assert "AnalysisTemplate 'inference-slo' is not in the repository" in missing
    assert "modelrelease.dev/external-refs" in missing
    duplicate = problems[("releases/ranker-copy/release.yaml", 6, "metadata.name")]
    assert "ModelRelease 'embeddings' in namespace ml-serving is also defined at" in duplicate
    assert report["valid"] is False


def test_plan_prints_the_steps_and_gpu_figures_of_the_template_as_text_and_markdown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["plan", str(TEMPLATE_REPO)]) == 0
    text = capsys.readouterr().out
    assert "ModelRelease ranker (ranker version 3, canary)" in text
    assert "peak GPUs 24 = stable 16 + 8 extra; budget 16 + maxExtraGPUs 8 = 24: fits" in text
    assert "takes at least" in text
    assert cli.main(["plan", str(TEMPLATE_REPO), "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("<!-- modelrelease-plan -->\n## modelrelease plan")
    assert "| step 4 (setWeight 50) | 50% | 4 | 8 | 24 |" in markdown
    assert "### ModelRelease embeddings (embeddings version 12, blue-green)" in markdown


def test_plan_against_a_base_shows_only_the_releases_a_change_touches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _repo_copy(tmp_path)
    work = git.Repo.init(repo, initial_branch="main")
    work.git.config("user.name", "Ada")
    work.git.config("user.email", "ada@example.com")
    work.git.add("--all")
    work.git.commit("-m", "template")
    release = repo / "releases" / "ranker" / "release.yaml"
    release.write_text(release.read_text().replace('version: "3"', 'version: "4"'))
    assert cli.main(["plan", str(repo), "--base", "main", "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "1 release changed against `main`" in markdown
    assert "ranker version 4" in markdown
    assert "embeddings" not in markdown
    template = repo / "analysis-templates" / "inference-slo.yaml"
    template.write_text(template.read_text().replace("beta: 0.1", "beta: 0.05"))
    assert cli.main(["plan", str(repo), "--base", "main"]) == 0
    assert "ModelRelease embeddings" in capsys.readouterr().out  # uses the changed template
    assert cli.main(["plan", str(repo), "--base", "no-such-ref"]) == 2
    assert "no commit named 'no-such-ref'" in capsys.readouterr().err


def test_output_into_a_reader_that_stopped_ends_quietly_like_a_unix_tool(tmp_path: Path) -> None:
    (tmp_path / "release.yaml").write_text(RELEASE.replace("STEP", "50"))
    command = [str(Path(sys.executable).parent / "modelrelease"), "plan", str(tmp_path / "release.yaml")]
    # The reader (`| head -1` that already had its line) has gone before the command writes.
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None
    child.stdout.close()
    _, said = child.communicate(timeout=60)
    assert "Traceback" not in said.decode(), said.decode()
    assert child.returncode == 141


def test_validate_exits_1_on_an_api_version_one_letter_off_our_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "releases"
    folder.mkdir()
    (folder / "fraud.yaml").write_text(
        RELEASE.replace("STEP", "50").replace("modelrelease.dev/", "modelreleases.dev/")
    )
    assert cli.main(["validate", str(folder)]) == 1
    assert "group 'modelreleases.dev' is not modelrelease.dev" in capsys.readouterr().err


def _committed(tmp_path: Path, files: dict[str, str]) -> tuple[Path, git.Repo]:
    repo = tmp_path / "releases-repo"
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    work = git.Repo.init(repo, initial_branch="main")
    work.git.config("user.name", "Ada")
    work.git.config("user.email", "ada@example.com")
    work.git.add("--all")
    work.git.commit("-m", "base")
    return repo, work


def test_plan_against_a_base_sizes_the_budget_from_the_running_stable_as_the_controller_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = RELEASE.replace("STEP", "50").replace("httpRoute: fraud", "httpRoute: fraud-route")
    repo, _ = _committed(tmp_path, {"releases/fraud.yaml": body})
    # 4 → 6 replicas with a version bump: the stable that runs has 4 GPUs, so the budget is 4 + 2.
    changed = body.replace('version: "7"', 'version: "8"').replace("replicas: 4", "replicas: 6")
    (repo / "releases" / "fraud.yaml").write_text(changed)
    assert cli.main(["plan", str(repo), "--base", "main", "--format", "markdown"]) == 1
    markdown = capsys.readouterr().out
    assert "**Refused (GPUBudgetExceeded):**" in markdown
    assert "fits" not in markdown
    assert (
        "Included: its file changed. From → to: model version 7 → version 8; replicas 4 → 6; steps"
        in markdown
    )


def test_the_plan_comment_says_why_a_release_is_included_and_counts_an_invalid_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = (ROOT / "examples" / "analysis-template.yaml").read_text()
    release = RELEASE.replace("STEP", "50").replace(
        "strategy: {canary: {steps: [{setWeight: 10}, {setWeight: 50}]}}",
        "strategy: {canary: {steps: [{setWeight: 10}, {analysis: {template: latency-and-errors}}]}}",
    )
    repo, _ = _committed(
        tmp_path,
        {
            "releases/fraud.yaml": release,
            "releases/other.yaml": release.replace("name: fraud}", "name: other}"),
            "templates/latency.yaml": template,
        },
    )
    (repo / "templates" / "latency.yaml").write_text(template.replace("relative: 0.1}", "relative: 0.05}"))
    (repo / "releases" / "other.yaml").write_text(release.replace("setWeight: 10", "setWeight: 150"))
    assert cli.main(["plan", str(repo), "--base", "main", "--format", "markdown"]) == 1
    markdown = capsys.readouterr().out
    assert "1 release changed against `main`; **1 invalid file** (not planned)." in markdown
    assert "### Invalid manifests" in markdown
    assert "setWeight: 150 is above 100" in markdown
    assert "Included: AnalysisTemplate latency-and-errors changed." in markdown


def test_validate_refuses_a_workload_ref_to_a_missing_deployment_or_another_kind_with_file_field_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _repo_copy(tmp_path)
    chat = repo / "releases" / "chat"
    (chat / "deployment.yaml").unlink()
    assert cli.main(["validate", str(repo)]) == 1
    missing = capsys.readouterr().err
    assert (
        f"{chat / 'release.yaml'}:14: ModelRelease chat: spec.serving.workloadRef.name: "
        "Deployment 'vllm-chat' is not in the repository in namespace ml-serving" in missing
    )
    (chat / "statefulset.yaml").write_text(
        "apiVersion: apps/v1\nkind: StatefulSet\n"
        "metadata: {name: vllm-chat, namespace: ml-serving}\nspec: {}\n"
    )
    assert cli.main(["validate", str(repo)]) == 1
    other = capsys.readouterr().err
    assert (
        f"{chat / 'release.yaml'}:14: ModelRelease chat: spec.serving.workloadRef.name: 'vllm-chat' is a "
        f"StatefulSet ({chat / 'statefulset.yaml'}:1), not a Deployment" in other
    )
    release = chat / "release.yaml"
    release.write_text(
        release.read_text().replace("{kind: Deployment, name: vllm-chat}", "{kind: StatefulSet, name: x}")
    )
    assert cli.main(["validate", str(repo)]) == 1
    kind = capsys.readouterr().err
    assert (
        f"{release}:14: ModelRelease chat: spec.serving.workloadRef.kind: "
        "only a Deployment can be referenced (got kind 'StatefulSet')" in kind
    )


def test_validate_refuses_an_inline_template_field_beside_a_workload_ref(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _repo_copy(tmp_path)
    release = repo / "releases" / "chat" / "release.yaml"
    release.write_text(
        release.read_text().replace("    warmup: 3m\n", "    warmup: 3m\n    image: vllm:0.7\n")
    )
    assert cli.main(["validate", str(repo)]) == 1
    assert (
        "workloadRef takes the pod template from Deployment vllm-chat; remove image"
        in capsys.readouterr().err
    )


def test_plan_reads_an_adopted_deployments_gpus_and_shows_the_peak_at_the_autoscalers_maximum(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plan", str(TEMPLATE_REPO)]) == 0
    text = capsys.readouterr().out
    chat = text[text.index("ModelRelease chat") :].split("takes at least")[0]
    assert (
        "peak GPUs 4 = stable 2 + 2 extra; budget 2 + maxExtraGPUs 3 = 5: fits" in chat
    )  # at the minimum, 2
    assert "sized by HorizontalPodAutoscaler chat (2–6 replicas); at 6: peak GPUs 9, budget 9: fits" in chat
    assert "pod template: Deployment vllm-chat" in chat
    repo = _repo_copy(tmp_path)
    scaler = repo / "releases" / "chat" / "autoscaler.yaml"
    scaler.write_text(scaler.read_text().replace("maxReplicas: 6", "maxReplicas: 10"))
    assert cli.main(["plan", str(repo)]) == 0
    wider = capsys.readouterr().out
    assert (
        "at 10 it does not fit: promotion: the canary needs 10×1 GPUs while stable still serves 50%" in wider
    )
    assert "A rollout resized that far waits at that step" in wider


def test_plan_reads_a_keda_scaled_object_that_targets_the_release_with_its_default_maximum(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _repo_copy(tmp_path)
    (repo / "releases" / "chat" / "autoscaler.yaml").write_text(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n"
        "metadata: {name: chat-queue, namespace: ml-serving}\n"
        "spec:\n"
        "  scaleTargetRef: {apiVersion: modelrelease.dev/v1alpha1, kind: ModelRelease, name: chat}\n"
        "  minReplicaCount: 3\n"
        "  triggers: [{type: prometheus, metadata: {query: 'sum(vllm_num_requests_waiting)'}}]\n"
    )
    assert cli.main(["plan", str(repo)]) == 0
    text = capsys.readouterr().out
    assert "sized by ScaledObject chat-queue (3–100 replicas); at 100 it does not fit" in text
