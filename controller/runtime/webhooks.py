"""One small HTTP server for the inbound webhooks: a path per receiver (Git pushes, MLflow events).

Each receiver checks its own signature and answers (HTTP status, JSON body); a body over 5 MiB is
refused before it is read, and an error reaching the cluster is a 503 the sender may retry.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from controller import errors

LOGGER = logging.getLogger(__name__)
MAX_BODY = 5 * 1024 * 1024

Receiver = Callable[[dict[str, str], bytes], tuple[int, dict[str, Any]]]


def serve(routes: Mapping[str, Receiver], host: str, port: int) -> ThreadingHTTPServer:
    """Start the server in a daemon thread; the server (its port is server.server_address[1])."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = routes.get(self.path)
            if receiver is None:
                self._answer(HTTPStatus.NOT_FOUND, {"error": f"POST one of {', '.join(sorted(routes))}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
                return
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                code, answer = receiver(headers, body)
            except errors.ModelReleaseError as error:
                code, answer = HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(error)}
            self._answer(code, answer)

        def _answer(self, code: int, answer: dict[str, Any]) -> None:
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            LOGGER.info("webhook %s", format % args)

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="webhooks", daemon=True).start()
    return server
