"""The one way the controller serves inbound HTTP (Slack presses, Git and MLflow webhooks): every
request is untrusted until its receiver checks its signature, so the server itself must not let an
unsigned one cost memory, threads or time.

- A body is read only with a valid Content-Length within the route's limit (411 without one, 400 for
  a malformed or negative one, 413 above the limit) and only after the receiver's header check
  (`precheck`) passed: an unsigned request is refused before a byte of its body is read.
- A connection idle for IDLE_TIMEOUT is closed, and at most MAX_CONNECTIONS are served at once (more
  are closed at once): idle or slow clients cannot hold the process's threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

IDLE_TIMEOUT = 10.0  # seconds a client may take to send its request line, headers or body
MAX_CONNECTIONS = 32


class BodyRefusedError(Exception):
    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def read_body(
    handler: BaseHTTPRequestHandler,
    limit: int,
    precheck: Callable[[dict[str, str]], None] | None = None,
) -> tuple[dict[str, str], bytes]:
    """The request's headers (lower-case names) and body, or BodyRefusedError naming why not.
    `precheck` sees the headers first and raises BodyRefusedError to refuse before the body is read."""
    headers = {k.lower(): v for k, v in handler.headers.items()}
    raw = headers.get("content-length")
    if raw is None:
        raise BodyRefusedError(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
    if not raw.strip().isdigit():
        raise BodyRefusedError(HTTPStatus.BAD_REQUEST, f"Content-Length {raw[:40]!r} is not a byte count")
    length = int(raw)
    if length > limit:
        raise BodyRefusedError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {limit} bytes")
    if precheck is not None:
        precheck(headers)
    body = handler.rfile.read(length)
    if len(body) != length:
        raise BodyRefusedError(HTTPStatus.BAD_REQUEST, "body shorter than its Content-Length")
    return headers, body


class Handler(BaseHTTPRequestHandler):
    """Closes a connection idle for IDLE_TIMEOUT (the standard library applies `timeout` to the socket)."""

    timeout = IDLE_TIMEOUT

    def do_POST(self) -> None:
        self.post()

    def post(self) -> None:
        self.answer(HTTPStatus.METHOD_NOT_ALLOWED, b"", "text/plain")

    def answer(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _BoundedServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the kernel's backlog: connections over the limit are accepted, then closed

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # full: closed at once, the client may retry
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away or timed out: nothing to say


def serve(handler: type[Handler], host: str, port: int, name: str) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; the server (its port is server.server_address[1])."""
    server = _BoundedServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server
