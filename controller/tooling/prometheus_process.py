"""A real Prometheus (Debian package `prometheus`) on loopback, for the demo and the tests.

History can be written by the simulator as OpenMetrics and turned into TSDB blocks with
`promtool tsdb create-blocks-from openmetrics` before the server starts on that folder; live
targets come from a static list or a file_sd file that follows the fleet's pods.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Sequence

from controller.tooling import processes


def free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PrometheusMissingError(RuntimeError):
    """prometheus or promtool is not on PATH."""


def binaries() -> tuple[str, str]:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        raise PrometheusMissingError(
            "prometheus/promtool not on PATH: `make test` and `make demo` install Debian's prometheus"
        )
    return prometheus, promtool


def backfill(openmetrics_file: pathlib.Path, data: pathlib.Path) -> None:
    _, promtool = binaries()
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics_file), str(data)],
        check=True,
        capture_output=True,
    )


class PrometheusServer:
    def __init__(
        self,
        folder: pathlib.Path,
        scrape_targets: Sequence[str] = (),
        *,
        file_sd: pathlib.Path | None = None,
        native_histograms: bool = False,
        scrape_interval: str = "1s",
        fleet_page: str | None = None,
    ) -> None:
        self.folder = folder
        # Native histograms are scraped (in the protobuf format) only behind this feature flag.
        self._features = ["--enable-feature=native-histograms"] if native_histograms else []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        jobs: list[dict[str, object]] = []
        if scrape_targets:
            jobs.append({"job_name": "simulated", "static_configs": [{"targets": list(scrape_targets)}]})
        if fleet_page is not None:  # one page of every pod's series, labelled by the fleet itself
            jobs.append(
                {"job_name": "fleet", "honor_labels": True, "static_configs": [{"targets": [fleet_page]}]}
            )
        if file_sd is not None:  # targets that follow pods, as Kubernetes discovery would
            jobs.append(
                {"job_name": "pods", "file_sd_configs": [{"files": [str(file_sd)], "refresh_interval": "1s"}]}
            )
        config = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": "1m"},
            "scrape_configs": jobs,
        }
        (folder / "prometheus.yml").write_text(json.dumps(config))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 60.0) -> PrometheusServer:
        prometheus, _ = binaries()
        with (self.folder / "prometheus.log").open("wb") as log:
            self._process = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={self.folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.folder / 'data'}",
                    "--storage.tsdb.retention.time=30d",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    *self._features,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        processes.wait_ready(
            self._process,
            f"{self.url}/-/ready",
            self.folder / "prometheus.log",
            timeout=timeout,
            what="prometheus",
        )
        return self

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("prometheus is not running")
        return self._process.pid

    def query(self, promql: str) -> list[dict[str, object]]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as answer:
            result: list[dict[str, object]] = json.load(answer)["data"]["result"]
            return result

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[dict[str, object]]:
        """As a dashboard panel asks: the series of `promql` over [start, end], one point per step."""
        query = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        url = f"{self.url}/api/v1/query_range?" + urllib.parse.urlencode(query)
        with urllib.request.urlopen(url, timeout=10) as answer:
            result: list[dict[str, object]] = json.load(answer)["data"]["result"]
            return result

    def stop(self) -> None:
        if self._process is not None:
            processes.stop(self._process)
