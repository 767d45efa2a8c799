"""A fault-injecting HTTPS proxy between one client (the controller) and the real API server.

Everything is passed through unchanged — the client's own bearer token included, so the API server
still authenticates and authorises the client, and watches stream as they come — except requests
that match a `FaultRule`: those are answered with the rule's code and a `Status` body the way the API
server words it (409 Conflict, 500, 503 with Retry-After), or held for `hang` seconds and then cut
without an answer, which the client sees as a timeout. A rule fails the next `times` matching requests
and counts its `hits`.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import socket
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REASONS = {409: "Conflict", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
}
_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<namespace>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<subresource>[^/]+))?$"
)


@dataclasses.dataclass
class FaultRule:
    """Requests matching every given field fail; `times` counts down to zero, then the rule is spent."""

    times: int
    code: int = 500
    hang: float = 0.0  # hold the request this long, then cut the connection: a timeout to the client
    verb: str | None = None  # get, list, watch, create, update, patch, delete
    plural: str | None = None
    subresource: str | None = None
    name: str | None = None  # a regular expression
    hits: int = 0

    def matches(self, request: Request) -> bool:
        return (
            self.times > 0
            and (self.verb is None or self.verb == request.verb)
            and (self.plural is None or self.plural == request.plural)
            and (self.subresource is None or self.subresource == request.subresource)
            and (self.name is None or re.fullmatch(self.name, request.name) is not None)
        )


@dataclasses.dataclass(frozen=True)
class Request:
    verb: str
    plural: str
    name: str
    subresource: str | None


def describe(method: str, target: str) -> Request | None:
    """The API verb and resource of a request, as the API server's RequestInfo would read them."""
    parts = urllib.parse.urlsplit(target)
    found = _PATH.match(parts.path)
    if found is None:
        return None
    name = found["name"] or ""
    query = urllib.parse.parse_qs(parts.query)
    if method == "GET":
        verb = "watch" if query.get("watch", [""])[0] in ("1", "true") else ("get" if name else "list")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
            method, method.lower()
        )
        if verb == "delete" and not name:
            verb = "deletecollection"
    return Request(verb, found["plural"], name, found["subresource"])


class FaultProxy:
    """`with FaultProxy(upstream, ca, cert, key) as proxy:` — a client uses `proxy.url`, not the server's."""

    def __init__(self, upstream: str, ca: str, serving_cert: str, serving_key: str) -> None:
        target = urllib.parse.urlsplit(upstream)
        self._upstream = (target.hostname or "127.0.0.1", target.port or 443)
        self._upstream_tls = ssl.create_default_context(cafile=ca)
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        serving = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        serving.load_cert_chain(serving_cert, serving_key)
        self._server.socket = serving.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def _take(self, request: Request) -> FaultRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(request):
                    rule.times -= 1
                    rule.hits += 1
                    return rule
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._serve()

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                request = describe(self.command, self.path)
                rule = proxy._take(request) if request is not None else None
                if rule is not None and rule.hang:
                    time.sleep(rule.hang)  # a slow server: the client gives up first
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if rule is not None:
                    self._fail(rule.code, request)
                    return
                self._forward(body)

            def _fail(self, code: int, request: Request | None) -> None:
                reason = REASONS.get(code, "InternalError")
                what = f"{request.plural} {request.name!r}" if request else "the request"
                status = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": f"injected by the test's fault proxy: {code} {reason} for {what}",
                    "reason": reason,
                    "code": code,
                }
                data = json.dumps(status).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if code in (429, 503):
                    self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(data)

            def _forward(self, body: bytes | None) -> None:
                upstream = http.client.HTTPSConnection(
                    *proxy._upstream, context=proxy._upstream_tls, timeout=300
                )
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    self.send_response(answer.status, answer.reason)
                    for key, value in answer.getheaders():
                        if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                            self.send_header(key, value)
                    # Re-framed as chunks: a watch streams for minutes and its length is never known.
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    while chunk := answer.read1(65536):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (OSError, http.client.HTTPException):
                    self.close_connection = True
                finally:
                    upstream.close()

        return Handler
