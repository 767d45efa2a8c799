"""The template's PR workflow, run as GitHub would run its check steps: on a PR branch of a clone
whose `origin/main` is the base, with the `modelrelease` this checkout installs."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
from typing import Any

import yaml

from tests import gitrepos

TEMPLATE = pathlib.Path(__file__).parents[2] / "gitops-repo-template"
WORKFLOW = TEMPLATE / ".github" / "workflows" / "validate.yaml"


def _step(step_id: str) -> str:
    steps: list[dict[str, Any]] = yaml.safe_load(WORKFLOW.read_text())["jobs"]["check"]["steps"]
    script: str = next(s for s in steps if s.get("id") == step_id)["run"]
    return script.replace("${{ github.base_ref }}", "main")


def test_the_pr_workflow_validates_and_comments_the_plan_of_the_changed_release_only(
    tmp_path: pathlib.Path,
) -> None:
    remote = gitrepos.BareRemote(tmp_path)
    author = gitrepos.Clone(remote.url, tmp_path / "main")
    author.copy_tree(TEMPLATE)
    author.commit_and_push("The release repository")
    checkout = tmp_path / "pr"
    subprocess.run(["git", "clone", "--quiet", remote.url, str(checkout)], check=True)
    release = checkout / "releases" / "ranker" / "release.yaml"
    release.write_text(release.read_text().replace('version: "3"', 'version: "4"'))
    outputs = tmp_path / "github-output"
    env = {
        **os.environ,
        "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(outputs),
    }
    bash = shutil.which("bash") or "/bin/bash"
    validated = subprocess.run(
        [bash, "-ec", _step("validate")], cwd=checkout, env=env, capture_output=True, text=True
    )
    assert validated.returncode == 0, validated.stderr
    planned = subprocess.run(
        [bash, "-ec", _step("plan")], cwd=checkout, env=env, capture_output=True, text=True
    )
    assert planned.returncode == 0, planned.stderr
    comment = (checkout / "plan.md").read_text()
    assert comment.startswith("<!-- modelrelease-plan -->")
    assert "1 release changed against `origin/main`" in comment
    assert "ModelRelease ranker (ranker version 4, canary)" in comment
    assert "embeddings" not in comment
    assert outputs.read_text() == "status=0\n"
