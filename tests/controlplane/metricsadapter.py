"""A small external-metrics API server, so the real HPA controller can scale on what the fleet exports.

kube-controller-manager's HPA controller reads `External` metrics from `external.metrics.k8s.io`,
which the API server's aggregator proxies to whatever server an APIService names. This one answers
each metric from a function (in the tests: a PromQL query to the real Prometheus that scrapes the
fleet), which is what prometheus-adapter or KEDA's metrics server do with a configuration file.
Ours rather than prometheus-adapter from the module proxy: the HPA controller, the aggregator and
`/scale` are what is under test, and an adapter built from Kubernetes libraries would add minutes
to the cold build for a query we can write in one line.

The aggregator reaches an APIService through its Service's endpoints (`--enable-aggregator-routing`);
an endpoint may not be a loopback address, so the server listens on the machine's first non-loopback
IPv4 address (`host_address`), with the API server's own certificate (the APIService skips TLS
verification, as test adapters commonly do).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import socket
import ssl
import struct
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GROUP = "external.metrics.k8s.io"
VERSION = "v1beta1"
APISERVICE = f"{VERSION}.{GROUP}"
SIOCGIFADDR = 0x8915

# (namespace, label selector) -> the metric's value now
Metric = Callable[[str, str], float]


def host_address() -> str:
    """The first IPv4 address of a network interface other than loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            if name == "lo":
                continue
            with contextlib.suppress(OSError):
                answer = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
                return socket.inet_ntoa(answer[20:24])
    raise RuntimeError(
        "the external-metrics adapter needs a non-loopback IPv4 address (the API server's aggregator "
        "refuses loopback endpoints); this machine has none"
    )


class MetricsAdapter:
    def __init__(self, metrics: dict[str, Metric], certificate: str, key: str) -> None:
        self.metrics = metrics
        self.address = host_address()
        self.requests: list[tuple[str, str, float]] = []  # (metric, selector, value) answered
        self._server = ThreadingHTTPServer((self.address, 0), _handler(self))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-adapter", daemon=True
        )

    def __enter__(self) -> MetricsAdapter:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def registration(self, namespace: str) -> Iterator[dict[str, Any]]:
        """The Service, its Endpoints and the APIService that route the group to this server."""
        port = {"name": "https", "port": 443, "targetPort": self.port, "protocol": "TCP"}
        yield {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "external-metrics", "namespace": namespace},
            "spec": {"ports": [port]},  # no selector: the Endpoints below are ours
        }
        yield {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "external-metrics", "namespace": namespace},
            "subsets": [
                {"addresses": [{"ip": self.address}], "ports": [{"name": "https", "port": self.port}]}
            ],
        }
        yield {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": APISERVICE},
            "spec": {
                "group": GROUP,
                "version": VERSION,
                "service": {"namespace": namespace, "name": "external-metrics", "port": 443},
                "insecureSkipTLSVerify": True,
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        }

    def answer(self, path: str, query: str) -> tuple[int, dict[str, Any]]:
        base = f"/apis/{GROUP}/{VERSION}"
        if path.rstrip("/") == base:
            resources = [
                {
                    "name": name,
                    "singularName": "",
                    "namespaced": True,
                    "kind": "ExternalMetricValueList",
                    "verbs": ["get"],
                }
                for name in self.metrics
            ]
            return 200, {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{GROUP}/{VERSION}",
                "resources": resources,
            }
        parts = path.removeprefix(base + "/").split("/")
        if len(parts) != 3 or parts[0] != "namespaces" or parts[2] not in self.metrics:
            return 404, {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "NotFound",
                "code": 404,
            }
        namespace, name = parts[1], parts[2]
        selector = urllib.parse.parse_qs(query).get("labelSelector", [""])[0]
        value = self.metrics[name](namespace, selector)
        self.requests.append((name, selector, value))
        item = {
            "metricName": name,
            "metricLabels": {},
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "value": f"{round(value * 1000)}m",
        }
        return 200, {
            "kind": "ExternalMetricValueList",
            "apiVersion": f"{GROUP}/{VERSION}",
            "metadata": {},
            "items": [item],
        }


def _handler(adapter: MetricsAdapter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            try:
                code, body = adapter.answer(parsed.path, parsed.query)
            except Exception as exc:  # a failing query is the HPA's to report (FailedGetExternalMetric)
                code, body = (
                    500,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "message": str(exc),
                        "code": 500,
                    },
                )
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
