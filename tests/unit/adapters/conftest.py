from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller.adapters import kubeapi
from controller.sandbox import cluster
from tests.integration import harness


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kubeapi.KubeApi]:
    """The real client against one emulated API server per test module, CRDs installed."""
    with cluster.SandboxCluster(seed=5) as sandbox:
        sandbox.install_crds(sorted((harness.ROOT / "crds").glob("*.yaml")))
        path = sandbox.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
        yield kubeapi.KubeApi.from_kubeconfig(str(path), timeout=5)
