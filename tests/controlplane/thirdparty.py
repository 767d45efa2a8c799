"""Other projects' CRDs, from their own Go modules (the module proxy serves the YAML with the code).

The control plane installs them as those projects ship them, so every HTTPRoute and VirtualService
the controller writes passes their real structural schemas and CEL rules.
"""

from __future__ import annotations

import functools
import json
import pathlib
import subprocess
from typing import Any

import yaml

GATEWAY_API = ("sigs.k8s.io/gateway-api", "v1.6.3")
ISTIO_API = ("istio.io/api", "v1.32.0")
# Gateway API's standard channel: HTTPRoute (with its mirror and header-match rules), Gateway,
# GatewayClass, ReferenceGrant. The other route kinds would only slow the start.
GATEWAY_API_FILES = (
    "gateway.networking.k8s.io_gatewayclasses.yaml",
    "gateway.networking.k8s.io_gateways.yaml",
    "gateway.networking.k8s.io_httproutes.yaml",
    "gateway.networking.k8s.io_referencegrants.yaml",
)
ISTIO_GROUP = "networking.istio.io"  # the ~20 other Istio CRDs are security and telemetry: not ours


@functools.cache
def module_dir(module: str, version: str) -> pathlib.Path:
    """Where the Go module cache holds MODULE@VERSION, downloading it once from the module proxy."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"], capture_output=True, text=True, check=False
    )
    answer = json.loads(out.stdout or "{}")
    if out.returncode != 0 or "Dir" not in answer:
        raise RuntimeError(f"go mod download {module}@{version} failed: {answer.get('Error') or out.stderr}")
    return pathlib.Path(answer["Dir"])


def gateway_api_crds() -> list[dict[str, Any]]:
    folder = module_dir(*GATEWAY_API) / "config" / "crd" / "standard"
    return [doc for name in GATEWAY_API_FILES for doc in crds_in(folder / name)]


def istio_crds() -> list[dict[str, Any]]:
    path = module_dir(*ISTIO_API) / "kubernetes" / "customresourcedefinitions.gen.yaml"
    return [doc for doc in crds_in(path) if doc["spec"]["group"] == ISTIO_GROUP]


def crds_in(path: pathlib.Path) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions of one YAML file."""
    return [
        doc
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc and doc.get("kind") == "CustomResourceDefinition"
    ]
