"""The MLflow model registry: resolve what a release names, and keep the registry truthful after.

`fetch_version` turns `spec.model` (a version, or an alias) into the registry's version with its
artifact source, run, status and tags; the domain pins it and gates on READY and the required tags.
`apply_promotion` moves the promotion alias (checking where it points first, so a repeat after a
crash does nothing) and tags the version with the outcome; `apply_rolled_back_tag` tags a rolled
back version and leaves the alias where it is; `apply_rollout_run` logs a finished rollout as a run
(`mlflow_runs`).

Errors are ours: a model or version the registry does not have is permanent (the release says
so); anything else — the server down, a timeout, a 5xx — is transient, and the shell retries.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException

from controller import errors
from controller.adapters.mlflow import mlflow_runs
from controller.domain import actions, observations
from controller.resources import modelrelease, releasestatus

LOGGER = logging.getLogger(__name__)
OUTCOME_TAG = "modelrelease.rollout"
REASON_TAG = "modelrelease.rollout.reason"
PROMOTED, ROLLED_BACK = "promoted", "rolled_back"
NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}
REFUSED = {"INVALID_PARAMETER_VALUE", "PERMISSION_DENIED", "UNAUTHENTICATED", "BAD_REQUEST"}


def connect(tracking_uri: str, *, token: str | None = None, timeout: float = 10.0) -> MlflowRegistry:
    """A registry on an MLflow server (or a sqlite:/// store, for a local registry).

    MLflow's client reads its credentials and HTTP behaviour from the environment: the token (from
    a Secret file, never logged) goes there, and its retries are cut to one so an unreachable
    server is a transient error within seconds, retried by the shell, not minutes of silence.
    """
    if token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(max(timeout, 1))))
    return MlflowRegistry(MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri), tracking_uri)


class MlflowRegistry:
    def __init__(self, client: MlflowClient, tracking_uri: str) -> None:
        self._client = client
        self._tracking_uri = tracking_uri

    def fetch_version(self, model: modelrelease.ModelRef) -> observations.RegistryVersion:
        if model.alias is not None:
            found = self._call(
                lambda: self._client.get_model_version_by_alias(model.name, model.alias or ""),
                f"alias {model.alias!r} of model {model.name}",
            )
        else:
            found = self._call(
                lambda: self._client.get_model_version(model.name, model.version or ""),
                f"version {model.version} of model {model.name}",
            )
        return observations.RegistryVersion(
            version=str(found.version),  # an int from some stores, a string over REST
            uri=str(found.source or f"models:/{model.name}/{found.version}"),
            run_id=found.run_id or None,
            status=str(found.status or "READY"),
            tags={str(k): str(v) for k, v in (found.tags or {}).items()},
        )

    def fetch_settled(self, write: releasestatus.RegistryWrite) -> observations.RegistrySettled | None:
        name, version = write.model_name, write.version
        if write.run is not None:
            run = self._call(lambda: mlflow_runs.find_run(self._client, write.key), "the rollout's run")
            if run is None or not mlflow_runs.is_finished(run):
                return None
            return observations.RegistrySettled(
                message=f"rollout logged as run {run.info.run_id} in experiment {mlflow_runs.EXPERIMENT}",
                link=mlflow_runs.link(self._tracking_uri, run),
            )
        tags = self._call(
            lambda: self._client.get_model_version(name, version).tags, f"version {version} of {name}"
        )
        if write.alias is None:
            if (tags or {}).get(OUTCOME_TAG) != ROLLED_BACK:
                return None
            return observations.RegistrySettled(
                message=f"{name} version {version} tagged {OUTCOME_TAG}={ROLLED_BACK}"
            )
        if self._pointed(name, write.alias) != version or (tags or {}).get(OUTCOME_TAG) != PROMOTED:
            return None
        return observations.RegistrySettled(
            message=f"alias {write.alias!r} of {name} points at version {version}"
        )

    def fetch_alias(self, model_name: str, alias: str) -> str | None:
        return self._pointed(model_name, alias)

    def apply_promotion(self, action: actions.PromoteModel) -> None:
        name, alias, version = action.model_name, action.alias, action.version
        current = self._pointed(name, alias)
        if current != version:
            self._call(
                lambda: self._client.set_registered_model_alias(name, alias, version),
                f"alias {alias!r} of model {name}",
            )
            LOGGER.info(
                "MLflow: alias %s of %s moved from %s to %s", alias, name, current or "nothing", version
            )
        self._tag(name, version, {OUTCOME_TAG: PROMOTED})

    def apply_rolled_back_tag(self, action: actions.TagRolledBack) -> None:
        self._tag(action.model_name, action.version, {OUTCOME_TAG: ROLLED_BACK, REASON_TAG: action.reason})

    def apply_rollout_run(self, action: actions.LogRolloutRun) -> None:
        run = self._call(
            lambda: mlflow_runs.log_rollout(self._client, self._tracking_uri, action.key, action.run),
            f"the run of rollout {action.run.record.revision} of {action.run.release}",
        )
        LOGGER.info("MLflow: rollout %s logged as run %s", action.run.record.revision, run.info.run_id)

    # ---- helpers ---------------------------------------------------------------------------------

    def _pointed(self, name: str, alias: str) -> str | None:
        """The version `alias` points at now, None when it points nowhere yet."""
        try:
            return str(self._client.get_model_version_by_alias(name, alias).version)
        except MlflowException as exc:
            if _not_found(exc):
                return None
            raise _translate(exc, f"alias {alias!r} of model {name}") from exc
        except OSError as exc:
            raise errors.UnavailableError(f"MLflow registry unreachable: {exc}") from exc

    def _tag(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._call(
                lambda key=key, value=value: self._client.set_model_version_tag(name, version, key, value),
                f"version {version} of model {name}",
            )

    def _call(self, call: Any, what: str) -> Any:
        try:
            return call()
        except MlflowException as exc:
            raise _translate(exc, what) from exc
        except OSError as exc:
            raise errors.UnavailableError(f"MLflow registry unreachable reading {what}: {exc}") from exc


def _code(exc: MlflowException) -> str:
    return str(getattr(exc, "error_code", "") or "")


def _not_found(exc: MlflowException) -> bool:
    """MLflow says "not found" with RESOURCE_DOES_NOT_EXIST, or for an alias INVALID_PARAMETER_VALUE."""
    code = _code(exc)
    said = str(getattr(exc, "message", exc)).lower()
    return code in NOT_FOUND or (code == "INVALID_PARAMETER_VALUE" and "not found" in said)


def _translate(exc: MlflowException, what: str) -> errors.ModelReleaseError:
    code = _code(exc)
    message = str(getattr(exc, "message", exc)).splitlines()[0][:300]
    if _not_found(exc):
        return errors.NotFoundError(f"the MLflow registry has no {what}")
    if code in REFUSED or (isinstance(exc, RestException) and code not in ("", "INTERNAL_ERROR")):
        return errors.InvalidError(f"the MLflow registry refused {what}: {message}")
    return errors.UnavailableError(f"MLflow registry unavailable for {what}: {message}")
