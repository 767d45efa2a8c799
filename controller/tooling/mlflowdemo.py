"""The demo's MLflow registry: MLflow's SQL store on SQLite in the demo's folder, with the model's
versions registered and validated as a training pipeline would leave them."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence

from mlflow import MlflowClient

from controller.adapters.mlflow import mlflow_registry

OUTCOME_TAG, REASON_TAG = mlflow_registry.OUTCOME_TAG, mlflow_registry.REASON_TAG
CANDIDATE = "champion-candidate"  # the alias the training pipeline moves; the demo's release follows it


@dataclasses.dataclass(frozen=True)
class Registry:
    uri: str
    model: str

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def alias(self, alias: str) -> str:
        return str(self.client.get_model_version_by_alias(self.model, alias).version)

    def move_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.model, alias, version)

    def tags(self, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(self.model, version).tags)


def create_registry(folder: pathlib.Path, model: str, versions: Sequence[str]) -> Registry:
    folder.mkdir(parents=True, exist_ok=True)
    registry = Registry(f"sqlite:///{folder / 'registry.db'}", model)
    client = registry.client
    client.create_registered_model(model, description="the demo's fraud model")
    for version in versions:
        client.create_model_version(
            model, source=f"s3://models/{model}/{version}", tags={"validation": "passed"}
        )
    registry.move_alias(CANDIDATE, versions[0])
    return registry
