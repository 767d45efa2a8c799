"""The Argo CD health check and actions, run as Argo CD runs them, over their tests in Argo CD's format.

Each test runs twice: with the Lua standard libraries (built-in customizations) and without them
(scripts installed through argocd-cm without useOpenLibs), on Lua 5.1 like Argo CD's gopher-lua.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.gitops import argocd_lua

ROOT = Path(__file__).parents[3] / "gitops-repo-template" / "argocd"
CUSTOMIZATION = ROOT / "resource_customizations" / "modelrelease.dev" / "ModelRelease"
ACTIONS = CUSTOMIZATION / "actions"
LIBRARIES = pytest.mark.parametrize("open_libs", [True, False], ids=["with-stdlib", "without-stdlib"])


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _cases(folder: Path, file: str, key: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = _load(folder / file)[key]
    return cases


@LIBRARIES
@pytest.mark.parametrize(
    "case", _cases(CUSTOMIZATION, "health_test.yaml", "tests"), ids=lambda c: Path(c["inputPath"]).stem
)
def test_the_health_check_gives_the_status_and_message_its_test_expects(
    case: dict[str, Any], open_libs: bool
) -> None:
    obj = _load(CUSTOMIZATION / case["inputPath"])
    health = argocd_lua.run((CUSTOMIZATION / "health.lua").read_text(), obj, open_libs=open_libs)
    assert health == case["healthStatus"]


def test_the_health_tests_cover_every_state_the_issue_names() -> None:
    statuses = {c["healthStatus"]["status"] for c in _cases(CUSTOMIZATION, "health_test.yaml", "tests")}
    assert statuses == {"Healthy", "Progressing", "Suspended", "Degraded"}


@LIBRARIES
@pytest.mark.parametrize(
    "case", _cases(ACTIONS, "action_test.yaml", "discoveryTests"), ids=lambda c: Path(c["inputPath"]).stem
)
def test_discovery_offers_each_action_enabled_only_where_the_controller_acts_on_it(
    case: dict[str, Any], open_libs: bool
) -> None:
    obj = _load(ACTIONS / case["inputPath"])
    found = argocd_lua.run((ACTIONS / "discovery.lua").read_text(), obj, open_libs=open_libs)
    offered = {name: bool(action.get("disabled", False)) for name, action in found.items()}
    assert offered == {item["name"]: item["disabled"] for item in case["result"]}


@LIBRARIES
@pytest.mark.parametrize(
    "case", _cases(ACTIONS, "action_test.yaml", "actionTests"), ids=lambda c: c["action"]
)
def test_each_action_sets_the_command_annotation_the_kubectl_plugin_sets(
    case: dict[str, Any], open_libs: bool
) -> None:
    obj = _load(ACTIONS / case["inputPath"])
    script = (ACTIONS / case["action"] / "action.lua").read_text()
    assert argocd_lua.run(script, obj, open_libs=open_libs) == _load(ACTIONS / case["expectedOutputPath"])


def test_a_script_that_needs_the_string_library_fails_without_the_standard_libraries() -> None:
    """The harness really removes what Argo CD removes, or the test above could not fail."""
    script = 'return {status = "Healthy", message = string.upper("x")}'
    assert argocd_lua.run(script, {}, open_libs=True)["message"] == "X"
    with pytest.raises(Exception, match="string"):
        argocd_lua.run(script, {}, open_libs=False)
    with pytest.raises(Exception, match="index a string"):
        argocd_lua.run('return ("x"):upper()', {}, open_libs=False)


def test_the_argocd_cm_snippet_installs_exactly_the_scripts_in_the_folder() -> None:
    data = _load(ROOT / "argocd-cm.yaml")["data"]
    assert (
        data["resource.customizations.health.modelrelease.dev_ModelRelease"]
        == (CUSTOMIZATION / "health.lua").read_text()
    )
    installed = yaml.safe_load(data["resource.customizations.actions.modelrelease.dev_ModelRelease"])
    assert installed["discovery.lua"] == (ACTIONS / "discovery.lua").read_text()
    folders = sorted(p.name for p in ACTIONS.iterdir() if (p / "action.lua").is_file())
    assert sorted(d["name"] for d in installed["definitions"]) == folders
    for definition in installed["definitions"]:
        assert definition["action.lua"] == (ACTIONS / definition["name"] / "action.lua").read_text()
