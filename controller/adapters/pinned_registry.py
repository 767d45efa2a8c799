"""The registry of an install without MLflow: a pinned `spec.model.version` is taken as given.

Aliases and required tags need a real registry, so they fail with a message saying so. With
`--registry mlflow` the MLflow wing (`adapters/mlflow/mlflow_registry.py`) is used instead.
"""

from __future__ import annotations

from controller import errors
from controller.domain import actions, observations
from controller.resources import modelrelease, releasestatus


class PinnedVersionRegistry:
    def fetch_version(self, model: modelrelease.ModelRef) -> observations.RegistryVersion:
        if model.version is None:
            raise errors.PermanentError(
                f"alias {model.alias!r} needs a model registry; none is configured (pin spec.model.version)"
            )
        if model.require_tags:
            raise errors.PermanentError("spec.model.requireTags needs a model registry; none is configured")
        return observations.RegistryVersion(
            version=model.version, uri=f"models:/{model.name}/{model.version}"
        )

    def fetch_settled(self, write: releasestatus.RegistryWrite) -> observations.RegistrySettled:
        """Nothing to write to: settled at once, said once (so it is not asked for every minute)."""
        if write.run is not None:
            what = f"rollout {write.run.record.revision} of {write.run.release} not logged as a run"
        elif write.alias is not None:
            what = f"alias {write.alias!r} of {write.model_name} not moved to version {write.version}"
        else:
            what = f"{write.model_name} version {write.version} not tagged rolled back"
        return observations.RegistrySettled(message=f"no model registry configured: {what}", skipped=True)

    def fetch_alias(self, model_name: str, alias: str) -> str | None:
        raise errors.PermanentError(
            f"following alias {alias!r} of {model_name} needs a model registry; none is configured"
        )

    def apply_promotion(self, action: actions.PromoteModel) -> None:
        raise errors.PermanentError(
            f"no model registry configured: alias {action.alias!r} of {action.model_name} "
            f"not moved to version {action.version}"
        )

    def apply_rolled_back_tag(self, action: actions.TagRolledBack) -> None:
        raise errors.PermanentError(
            f"no model registry configured: {action.model_name} version {action.version} "
            "not tagged rolled back"
        )

    def apply_rollout_run(self, action: actions.LogRolloutRun) -> None:
        raise errors.PermanentError(
            f"no model registry configured: rollout {action.run.record.revision} not logged as a run"
        )
