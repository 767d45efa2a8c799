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
    if serving.adopted is not None:  # the referenced Deployment's template is the release's pod template
        template["adoptedTemplate"] = serving.adopted.template
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


def build_bounded_name(base: str, suffix: str = "", *, rewritten_from: str | None = None) -> str:
    """`base + suffix` when it fits in 63 characters (a label value, a DNS label); otherwise `base`
    cut short with a hash of the whole original name, so two long names that share a prefix never
    map to one object. `rewritten_from` is the name `base` was derived from, when characters had
    to be replaced: such a name is always hashed, so `a.b` and `a-b` stay apart."""
    original = rewritten_from if rewritten_from is not None else base
    if base == original and len(base) + len(suffix) <= _MAX_NAME:
        return base + suffix
    digest = _digest(original, _HASH_LENGTH)
    keep = _MAX_NAME - len(suffix) - _HASH_LENGTH - 1
    return f"{base[:keep].rstrip('-.')}-{digest}{suffix}"


_HASH_LENGTH = 6


def workload_name(release: str, revision: str) -> str:
    """`<release>-<revision>`, the Deployment of one revision; it keeps its name when promoted."""
    return build_bounded_name(release, f"-{revision}")


def release_label(release: str) -> str:
    """The release's name as a label value (at most 63 characters, unique per release)."""
    return build_bounded_name(release)


def service_name(release: str, suffix: str = "") -> str:
    """A Service of the release: a DNS-1035 label (letters, digits, '-', a letter first, ≤ 63)."""
    safe = release.replace(".", "-")
    if not safe[:1].isalpha():
        safe = f"mr-{safe}"
    return build_bounded_name(safe, suffix, rewritten_from=release)


def analysis_run_name(release: str, revision: str, attempt: int, step_index: int) -> str:
    return f"{workload_name(release, revision)}-a{attempt}-s{step_index}"


def background_run_name(release: str, revision: str, attempt: int) -> str:
    return f"{workload_name(release, revision)}-a{attempt}-bg"


def build_idempotency_key(revision: str, attempt: int, event: str) -> str:
    """The key of a one-shot message or write (notification, approval request, warning, Git write-back)
    of one attempt of one revision: recorded in status once done, and carried by the action so an
    adapter can deduplicate a repeat after a crash."""
    return f"{revision}.{attempt}/{event}"
