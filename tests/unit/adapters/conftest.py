from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from controller.adapters import kubeapi
from tests.cluster import access, harness
from tests.controlplane.kube import KubeError

# What these modules write in the namespaces their paths name; cleared after each module, so the
# next module on the same control plane starts from an empty `default` and `ml`.
SHARED_NAMESPACES = ("default", "ml")
CLEARED = (
    "/apis/modelrelease.dev/v1alpha1/namespaces/{ns}/modelreleases",
    "/apis/modelrelease.dev/v1alpha1/namespaces/{ns}/approvals",
    "/apis/modelrelease.dev/v1alpha1/namespaces/{ns}/analysistemplates",
    "/apis/modelrelease.dev/v1alpha1/namespaces/{ns}/gitsources",
    "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes",
    "/apis/networking.istio.io/v1/namespaces/{ns}/virtualservices",
    "/apis/apps/v1/namespaces/{ns}/deployments",
    "/api/v1/namespaces/{ns}/configmaps",
    "/api/v1/namespaces/{ns}/events",
)


@pytest.fixture(scope="module")
def api(real_cluster: harness.Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[kubeapi.KubeApi]:
    """The real client, as an administrator, against this process's real control plane."""
    kube = real_cluster.kube
    for namespace in SHARED_NAMESPACES:
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    path: pathlib.Path = tmp_path_factory.mktemp("kube") / "config"
    real_cluster.plane.write_kubeconfig(path)
    yield kubeapi.KubeApi.from_kubeconfig(str(path), timeout=5)
    for namespace in SHARED_NAMESPACES:
        for collection in CLEARED:
            kube.call("DELETE", collection.format(ns=namespace))
        for service in kube.call("GET", f"/api/v1/namespaces/{namespace}/services")["items"]:
            if service["metadata"]["name"] != "kubernetes":  # the API server's own
                try:
                    kube.call(
                        "DELETE", f"/api/v1/namespaces/{namespace}/services/{service['metadata']['name']}"
                    )
                except KubeError as error:
                    if error.code != 404:
                        raise


@pytest.fixture(scope="module")
def controller_api(
    real_cluster: harness.Cluster, api: kubeapi.KubeApi, tmp_path_factory: pytest.TempPathFactory
) -> kubeapi.KubeApi:
    """The real client as the controller runs in production: deploy/'s ServiceAccount, its RBAC and
    its admission policy (only it may create an Approval on a Slack user's behalf)."""
    token = real_cluster.token(access.ACCOUNT_NAMESPACE, access.ACCOUNT_NAME)
    path = tmp_path_factory.mktemp("kube") / "controller"
    real_cluster.plane.write_kubeconfig(path, token=token)
    return kubeapi.KubeApi.from_kubeconfig(str(path), timeout=5)
