"""The one inbound server (Slack's interactivity URL beside the webhooks) against a hostile client,
over raw sockets: an unsigned or malformed request is refused before its body is read (memory stays
flat under a 100 MB body with `Content-Length: -1`), every malformed header is a 400 or 401, idle
connections are closed, and no more than MAX_CONNECTIONS are held at once."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from controller.adapters.slack import slackinteractions, slackpress
from controller.runtime import httpserve, slackdaemon, webhooks

SECRET = "inbound-signing-secret"


class NoInteractions:
    """Reached only by a request that passed the header checks: answers what the adapter would."""

    def answer_http(self, headers: dict[str, str], body: bytes) -> slackinteractions.Answer:
        try:
            slackpress.read_press(headers, body, signing_secret=SECRET, allowed=lambda user, target: False)
        except slackpress.PressRefusedError as refused:
            return slackinteractions.Answer(refused.status, refused.reason)
        raise AssertionError("no press here is valid")


@pytest.fixture
def idle_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(httpserve.Handler, "timeout", 1.0)
    return 1.0


@pytest.fixture
def slack_port(idle_timeout: float) -> Iterator[int]:
    server = _inbound()
    yield _port(server)
    server.shutdown()
    server.server_close()


def _inbound() -> ThreadingHTTPServer:
    """The one inbound server as the controller runs it: a Git webhook route beside Slack's."""
    routes = {
        "/hooks/git": webhooks.json_route(lambda headers, body: (200, {})),
        slackdaemon.PATH: slackdaemon.route(NoInteractions()),  # type: ignore[arg-type]
    }
    return webhooks.serve(routes, "127.0.0.1", 0)


def _port(server: ThreadingHTTPServer) -> int:
    return int(server.server_address[1])


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _status_of(sock: socket.socket) -> int:
    """The status code of the answer, read within the socket's timeout (a server waiting for the
    body would never answer: the test then fails on the timeout)."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def _request(port: int, headers: dict[str, str], body: bytes = b"") -> int:
    lines = [f"POST {slackdaemon.PATH} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with _connect(port) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return _status_of(sock)


def _signed(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Length": str(len(body)),
    }


def test_an_unsigned_request_with_content_length_minus_one_is_refused_before_its_body(
    slack_port: int,
) -> None:
    tracemalloc.start()
    try:
        with _connect(slack_port) as sock:
            sock.sendall(
                f"POST {slackdaemon.PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".encode()
            )
            sent = threading.Event()

            def flood() -> None:  # 100 MB the server must never buffer
                chunk = b"x" * (1 << 20)
                try:
                    for _ in range(100):
                        sock.sendall(chunk)
                except OSError:
                    pass  # the server answered and closed: what it should do
                sent.set()

            threading.Thread(target=flood, daemon=True).start()
            assert _status_of(sock) == 400
            sent.wait(timeout=30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 1024 * 1024, f"the process allocated {peak / 1e6:.0f} MB for an unsigned request"


def test_a_request_without_slacks_headers_is_refused_without_reading_the_body(slack_port: int) -> None:
    # The body is never sent: a server that read it first would wait, and this would time out.
    assert _request(slack_port, {"Content-Length": "60000"}) == 401


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Length": "ten"}, 400),
        ({}, 411),
        ({"Content-Length": str(slackdaemon.MAX_BODY + 1)}, 413),
        (
            {
                "Content-Length": "0",
                "X-Slack-Request-Timestamp": "soon",
                "X-Slack-Signature": "v0=" + "0" * 64,
            },
            400,
        ),
        (
            {"Content-Length": "0", "X-Slack-Request-Timestamp": "1", "X-Slack-Signature": "v0=" + "0" * 64},
            401,
        ),
        (
            {
                "Content-Length": "0",
                "X-Slack-Request-Timestamp": str(int(time.time())),
                "X-Slack-Signature": "x",
            },
            401,
        ),
    ],
    ids=["non-numeric length", "no length", "too long", "non-numeric timestamp", "stale", "not v0"],
)
def test_every_malformed_header_is_answered_400_or_401(
    slack_port: int, headers: dict[str, str], status: int
) -> None:
    assert _request(slack_port, headers) == status


def test_a_signed_body_that_is_not_utf8_is_a_400_not_a_crash(slack_port: int) -> None:
    body = b"payload=\xff\xfe"
    assert _request(slack_port, _signed(body), body) == 400


def test_idle_connections_are_closed_and_at_most_max_connections_are_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(httpserve.Handler, "timeout", 6.0)  # long enough to check the extra ones first
    server = _inbound()
    held = [_connect(_port(server)) for _ in range(httpserve.MAX_CONNECTIONS)]
    extra = [_connect(_port(server)) for _ in range(4)]
    try:
        for sock in extra:
            sock.settimeout(3)
            assert sock.recv(1) == b"", "over the limit: closed at once, not held"
        started = time.monotonic()
        for sock in held:
            sock.settimeout(15)
            assert sock.recv(1) == b"", "an idle connection is closed by the server"
        assert time.monotonic() - started < 12
        assert _request(_port(server), {"Content-Length": "ten"}) == 400, "served again once they are gone"
    finally:
        for sock in held + extra:
            sock.close()
        server.shutdown()
        server.server_close()


def test_the_webhook_server_refuses_a_negative_content_length_before_reading(idle_timeout: float) -> None:
    server = _inbound()
    try:
        with _connect(_port(server)) as sock:
            sock.sendall(b"POST /hooks/git HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
            assert _status_of(sock) == 400
    finally:
        server.shutdown()
        server.server_close()
