"""Deterministic names and hashes, so that replaying a decision addresses the same objects."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from controller.resources import modelrelease

REVISION_LENGTH = 10
_MAX_NAME = 63


def _digest(value: Any, length: int) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def build_revision(serving: modelrelease.Serving, model_name: str, model_version: str) -> str:
    """Hash of the pod template and the resolved model; replicas are left out so scaling
    stable in place never starts a rollout."""
    template = serving.model_dump(mode="json", by_alias=True, exclude={"replicas"})
    return _digest({"serving": template, "model": model_name, "version": model_version}, REVISION_LENGTH)


def build_steps_hash(strategy: modelrelease.Strategy) -> str:
    """Hash of the steps only: editing delays does not reset progress, editing steps does."""
    if strategy.canary is not None:
        steps: Any = [s.model_dump(mode="json", by_alias=True) for s in strategy.canary.steps]
    else:
        assert strategy.blue_green is not None
        steps = strategy.blue_green.model_dump(mode="json", by_alias=True, exclude={"scale_down_delay"})
    return _digest(steps, 8)


def build_model_reference(model: modelrelease.ModelRef) -> str:
    return _digest(model.model_dump(mode="json", by_alias=True, include={"name", "version", "alias"}), 8)


def workload_name(release: str, revision: str) -> str:
    """`<release>-<revision>`, the Deployment of one revision; it keeps its name when promoted."""
    return f"{release[: _MAX_NAME - REVISION_LENGTH - 1]}-{revision}"


def analysis_run_name(release: str, revision: str, attempt: int, step_index: int) -> str:
    return f"{workload_name(release, revision)}-a{attempt}-s{step_index}"


def notification_key(revision: str, attempt: int, event: str) -> str:
    return f"{revision}.{attempt}/{event}"
