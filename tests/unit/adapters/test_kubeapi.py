"""The API client's error tree: each HTTP status the API server answers becomes the documented
error (controller/errors.py), through the real `kubernetes` client against a loopback server."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator

import kubernetes
import pytest

from controller import errors
from controller.adapters import kubeapi


class _Answers(http.server.BaseHTTPRequestHandler):
    """Answers `/status/<code>` with that code and a Kubernetes Status body naming it."""

    def do_GET(self) -> None:
        code = int(self.path.rsplit("/", 1)[1])
        body = json.dumps({"kind": "Status", "message": f"server said {code}"}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def api() -> Iterator[kubeapi.KubeApi]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = kubernetes.client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    yield kubeapi.KubeApi(kubernetes.client.ApiClient(configuration), timeout=5)
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (409, errors.ConflictError),
        (404, errors.NotFoundError),
        (400, errors.InvalidError),
        (415, errors.InvalidError),
        (422, errors.InvalidError),
        (401, errors.ForbiddenError),
        (403, errors.ForbiddenError),
        (429, errors.UnavailableError),
        (500, errors.UnavailableError),
        (503, errors.UnavailableError),
    ],
)
def test_each_http_status_becomes_its_documented_error_with_the_servers_message(
    api: kubeapi.KubeApi, code: int, error: type[errors.ModelReleaseError]
) -> None:
    with pytest.raises(error) as raised:
        api.get(f"/status/{code}")
    assert type(raised.value) is error
    assert f"GET /status/{code}: {code} server said {code}" == str(raised.value)


def test_the_transient_and_permanent_families_are_what_the_runtime_retries_or_reports() -> None:
    assert issubclass(errors.ConflictError, errors.TransientError)
    assert issubclass(errors.UnavailableError, errors.TransientError)
    for permanent in (errors.NotFoundError, errors.InvalidError, errors.NotOwnedError, errors.ForbiddenError):
        assert issubclass(permanent, errors.PermanentError)


def test_a_refused_connection_is_unavailable_not_a_crash() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configuration = kubernetes.client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    client = kubeapi.KubeApi(kubernetes.client.ApiClient(configuration), timeout=2)
    with pytest.raises(errors.UnavailableError, match="GET /api/v1/namespaces"):
        client.get("/api/v1/namespaces")
