"""Spec builders for engine tests: a realistic release with one knob per test concern."""

from __future__ import annotations

from typing import Any

from controller.resources import modelrelease

DEFAULT_STEPS: list[dict[str, Any]] = [
    {"setWeight": 25},
    {"analysis": {"template": "latency-and-errors", "maxDuration": "15m"}},
    {"setWeight": 50},
    {"setWeight": 100},
]


def release_spec(
    *,
    version: str = "7",
    image: str = "registry.example.com/triton:24.08",
    replicas: int = 4,
    gpus: int = 1,
    max_extra_gpus: int | None = 2,
    steps: list[dict[str, Any]] | None = None,
    blue_green: dict[str, Any] | None = None,
    router: dict[str, Any] | None = None,
    slack: bool = True,
    write_back: bool = False,
    warmup: str = "60s",
    deadline: str = "10m",
    require_tags: dict[str, str] | None = None,
    background: dict[str, Any] | None = None,
    follow: dict[str, Any] | None = None,
) -> modelrelease.ModelReleaseSpec:
    canary: dict[str, Any] = {"steps": steps or DEFAULT_STEPS}
    if background is not None:
        canary["analysis"] = background
    strategy: dict[str, Any] = {"blueGreen": blue_green} if blue_green is not None else {"canary": canary}
    doc: dict[str, Any] = {
        "model": {"name": "fraud", "version": version, "requireTags": require_tags or {}},
        "serving": {
            "image": image,
            "replicas": replicas,
            "resources": {"limits": {"nvidia.com/gpu": gpus}} if gpus else {},
            "warmup": warmup,
        },
        "strategy": strategy,
        "trafficRouting": router or {"gatewayAPI": {"httpRoute": "fraud-route"}},
        "notifications": {"slack": {"channel": "#ml-releases"}} if slack else {},
        "gitWriteBack": {"enabled": write_back},
        "progressDeadline": deadline,
    }
    if follow is not None:
        doc["model"]["follow"] = follow
    if max_extra_gpus is not None:
        doc["gpuBudget"] = {"maxExtraGPUs": max_extra_gpus}
    return modelrelease.ModelReleaseSpec.model_validate(doc)
