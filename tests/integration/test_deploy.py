"""deploy/: what `kubectl apply -k deploy/` installs renders, validates strictly, and is hardened;
its RBAC has no wildcard (that every call is allowed and every rule used is checked on the whole
integration suite: tests/integration/access.py). deploy/monitoring/'s alerts pass promtool."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
from typing import Any

import yaml

from controller.cli import main
from tests.cluster import access

ROOT = access.ROOT
BIN = pathlib.Path(sys.executable).parent


def _render(folder: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(access.KUBECTL), "kustomize", str(ROOT / folder)], capture_output=True, text=True, check=True
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def _validate(documents: list[dict[str, Any]], tmp_path: pathlib.Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", str(path)], capture_output=True, text=True
    )


def _one(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_deploy_renders_and_every_object_validates_strictly_against_kubernetes(
    tmp_path: pathlib.Path,
) -> None:
    documents = _render("deploy")
    kinds = sorted({d["kind"] for d in documents})
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "CustomResourceDefinition",
        "Deployment",
        "Namespace",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    checked = _validate(documents, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The check is strict: a misspelt field in the Deployment is refused.
    deployment = _one(documents, "Deployment", "modelrelease-controller")
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    refused = _validate(documents, tmp_path)
    assert refused.returncode != 0
    assert "readOnlyRootFileSystem" in refused.stdout + refused.stderr


def test_the_approval_identity_policy_names_the_controllers_own_service_account() -> None:
    # The controller may write slack:<user ID> identities for Slack presses; everyone else only their own.
    documents = _render("deploy")
    [account] = [d for d in documents if d["kind"] == "ServiceAccount"]
    user = f"system:serviceaccount:{account['metadata']['namespace']}:{account['metadata']['name']}"
    policy = _one(documents, "ValidatingAdmissionPolicy", "modelrelease-approval-identity")
    [via_controller] = [v for v in policy["spec"]["variables"] if v["name"] == "viaController"]
    assert f"'{user}'" in via_controller["expression"]
    binding = _one(documents, "ValidatingAdmissionPolicyBinding", "modelrelease-approval-identity")
    assert binding["spec"] == {"policyName": "modelrelease-approval-identity", "validationActions": ["Deny"]}


def test_no_rbac_rule_in_deploy_uses_a_wildcard_and_approvers_get_their_own_role() -> None:
    documents = _render("deploy")
    assert access.wildcards(documents) == []
    approver = _one(documents, "ClusterRole", "modelrelease-approver")
    assert any("approvals" in r["resources"] and "create" in r["verbs"] for r in approver["rules"])
    # Nothing binds it: an administrator binds it to the people who approve.
    bindings = [d for d in documents if d["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    assert all(b["roleRef"]["name"] != "modelrelease-approver" for b in bindings)
    controller = access.controller_rules(documents)
    assert not any(r["resources"] == ["approvals"] and r.get("resourceNames") for r in controller)
    # No Secret is readable cluster-wide: the secret reader is bound per namespace by an administrator.
    assert not any("secrets" in r["resources"] for r in controller)
    assert all(b["roleRef"]["name"] != "modelrelease-secret-reader" for b in bindings)


def test_the_controller_runs_hardened_in_two_coordinated_replicas_with_probes_on_kopfs_health_endpoint() -> (
    None
):
    documents = _render("deploy")
    deployment = _one(documents, "Deployment", "modelrelease-controller")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    budget = _one(documents, "PodDisruptionBudget", "modelrelease-controller")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"] == deployment["spec"]["selector"], "the budget covers the replicas"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert container["resources"]["limits"]
    args = main.build_parser().parse_args(container["args"])  # the args are real `modelrelease run` options
    assert args.standalone is False, "two replicas coordinate through peering"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert set(ports) == {"metrics", "health", "webhooks"}, "one port for every inbound callback"
    assert args.health_port == ports["health"]
    assert args.metrics_port == ports["metrics"]
    assert args.webhook_port == ports["webhooks"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    assert {args.git_cache_dir, "/tmp"} <= mounted, "writable places on a read-only root"
    services = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Service"}
    for service in services.values():
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports
    assert {p["targetPort"] for s in services.values() for p in s["spec"]["ports"]} == set(ports) - {"health"}


def test_every_key_of_the_configmap_is_a_run_option_and_secrets_are_files_never_values() -> None:
    documents = _render("deploy")
    config = _one(documents, "ConfigMap", "modelrelease-config")
    run = main.build_parser()._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    options = {main.ENV_PREFIX + a.dest.upper() for a in run._actions if a.option_strings}
    commented = re.findall(r"#\s*(MODELRELEASE_[A-Z_]+):", (ROOT / "deploy/base/configmap.yaml").read_text())
    for key in [*config["data"], *commented]:
        assert key in options, f"{key} is not a `modelrelease run` option"
    assert not any(k.endswith(("TOKEN", "SECRET")) for k in [*config["data"], *commented])
    deployment = _one(documents, "Deployment", "modelrelease-controller")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"configMapRef": {"name": "modelrelease-config"}}]


def test_monitoring_adds_a_service_monitor_on_the_metrics_port_alerts_promtool_accepts_and_the_dashboard(
    tmp_path: pathlib.Path,
) -> None:
    documents = _render("deploy/monitoring")
    monitor = _one(documents, "ServiceMonitor", "modelrelease-controller")
    metrics = _one(documents, "Service", "modelrelease-controller-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in metrics["spec"]["ports"]}
    rules = _one(documents, "PrometheusRule", "modelrelease")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rules["spec"]["groups"]}))
    checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    alerts = {r["alert"] for g in rules["spec"]["groups"] for r in g["rules"]}
    assert {"ModelReleaseRolloutStuck", "ModelReleaseRolledBack", "ModelReleaseDeliveryFailing"} <= alerts
    dashboard = _one(documents, "ConfigMap", "modelrelease-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert "modelrelease.json" in dashboard["data"]


def test_the_image_is_built_in_two_stages_from_a_pinned_base_and_runs_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base[1])
    assert len(re.findall(r"^FROM ", dockerfile, re.MULTILINE)) == 2
    [user] = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert user.split(":")[0].isdigit()
    assert int(user.split(":")[0]) != 0
    documents = _render("deploy")
    deployment = _one(documents, "Deployment", "modelrelease-controller")
    run_as = deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert int(user.split(":")[0]) == run_as
