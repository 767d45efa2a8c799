"""The API client's error tree: each HTTP status the API server answers becomes the documented
error (controller/errors.py), through the real `kubernetes` client against a loopback server."""

from __future__ import annotations

import collections
import http.server
import json
import pathlib
import socket
import threading
from collections.abc import Iterator
from typing import ClassVar

import kubernetes
import pytest

from controller import errors
from controller.adapters import kubeapi


class _Answers(http.server.BaseHTTPRequestHandler):
    """Answers `/status/<code>` with that code and a Kubernetes Status body naming it, and
    `/throttled/<key>/<n>` with 429 and `Retry-After: 0` the first n times for that key, then 200."""

    asked: ClassVar[collections.Counter[str]] = collections.Counter()

    def do_GET(self) -> None:
        retry_after = None
        if self.path.startswith("/throttled/"):
            key, times = self.path.rsplit("/", 2)[1:]
            _Answers.asked[key] += 1
            code, retry_after = (429, "0") if _Answers.asked[key] <= int(times) else (200, None)
        elif self.path.startswith("/broken-watch"):
            self._half_a_watch()
            return
        else:
            code = int(self.path.rsplit("/", 1)[1])
        body = json.dumps({"kind": "Status", "message": f"server said {code}"}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(body)

    def _half_a_watch(self) -> None:
        """One whole watch event, then half of the next, and the connection closes (chunked, as the
        API server streams a watch)."""
        self.protocol_version = "HTTP/1.1"
        whole = json.dumps({"type": "ADDED", "object": {"metadata": {"name": "a"}}}).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in (whole, b'{"type": "MODIFIED", "obj'):
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"40\r\n")  # a chunk announced, never sent: the connection drops
        self.close_connection = True

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


def test_a_429_that_says_when_to_come_back_is_asked_again_and_its_answer_returned(
    api: kubeapi.KubeApi,
) -> None:
    assert api.get("/throttled/twice/2")["message"] == "server said 200"
    assert _Answers.asked["twice"] == 3


def test_a_server_that_keeps_throttling_fails_as_unavailable_after_a_few_tries(api: kubeapi.KubeApi) -> None:
    with pytest.raises(errors.UnavailableError, match="429"):
        api.get("/throttled/always/100")
    assert _Answers.asked["always"] == kubeapi.THROTTLE_RETRIES + 1


def test_a_watch_that_breaks_off_mid_event_is_an_unavailable_error_after_the_events_it_delivered(
    api: kubeapi.KubeApi,
) -> None:
    seen: list[str] = []

    def follow() -> None:
        seen.extend(event["type"] for event in api.stream("/broken-watch", {"watch": "1"}))

    with pytest.raises(errors.UnavailableError, match="the watch broke off"):
        follow()
    assert seen == ["ADDED"]


def test_a_kubeconfig_that_cannot_be_read_is_a_config_error_naming_the_problem(
    tmp_path: pathlib.Path,
) -> None:
    with pytest.raises(errors.ConfigError):
        kubeapi.KubeApi.from_kubeconfig(str(tmp_path / "missing"))
    (tmp_path / "garbled").write_text("clusters: [not a kubeconfig\n")
    with pytest.raises(errors.ConfigError):
        kubeapi.KubeApi.from_kubeconfig(str(tmp_path / "garbled"))
    assert kubeapi.kubeconfig_context(str(tmp_path / "missing"), None) == {}
