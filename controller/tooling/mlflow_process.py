"""`mlflow server` on 127.0.0.1 over an SQLite store: the registry the tests stop and start again."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from controller.tooling import processes
from controller.tooling.prometheus_process import free_port

# MLflow delivers webhooks only to public https addresses by default (SSRF protection); this server
# is a loopback test rig, so it may deliver to the controller on 127.0.0.1 over http, and it looks up
# its webhooks each second rather than caching the list for a minute.
WEBHOOKS_TO_LOOPBACK = {
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_CACHE_TTL": "1",
}


class MlflowServer:
    def __init__(self, folder: pathlib.Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store = f"sqlite:///{folder / 'registry.db'}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 90.0) -> MlflowServer:
        """Start (or start again, on the same port and store) and wait until it answers /health."""
        mlflow = pathlib.Path(sys.executable).parent / "mlflow"
        with (self.folder / "mlflow.log").open("ab") as log:
            self._process = subprocess.Popen(
                [
                    str(mlflow),
                    "server",
                    "--backend-store-uri",
                    self.store,
                    "--default-artifact-root",
                    str(self.folder / "artifacts"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ | WEBHOOKS_TO_LOOPBACK,
            )
        processes.wait_ready(
            self._process,
            f"{self.url}/health",
            self.folder / "mlflow.log",
            timeout=timeout,
            what="mlflow server",
        )
        return self

    def stop(self) -> None:
        if self._process is not None:
            processes.stop(self._process)
            self._process = None

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
