"""One small HTTP server for the inbound webhooks: a path per receiver (Git pushes, MLflow events).

Each receiver checks its own signature and answers (HTTP status, JSON body); a body over 5 MiB is
refused before it is read (httpserve), and an error reaching the cluster is a 503 the sender may retry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any

from controller import errors
from controller.runtime import httpserve

LOGGER = logging.getLogger(__name__)
MAX_BODY = 5 * 1024 * 1024

Receiver = Callable[[dict[str, str], bytes], tuple[int, dict[str, Any]]]


def serve(routes: Mapping[str, Receiver], host: str, port: int) -> ThreadingHTTPServer:
    """Start the server in a daemon thread; the server (its port is server.server_address[1])."""

    class Handler(httpserve.Handler):
        def post(self) -> None:
            receiver = routes.get(self.path)
            if receiver is None:
                self._answer(HTTPStatus.NOT_FOUND, {"error": f"POST one of {', '.join(sorted(routes))}"})
                return
            try:
                headers, body = httpserve.read_body(self, MAX_BODY)
            except httpserve.BodyRefusedError as refused:
                self._answer(refused.status, {"error": refused.reason})
                return
            try:
                code, answer = receiver(headers, body)
            except errors.ModelReleaseError as error:
                code, answer = HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(error)}
            self._answer(code, answer)

        def _answer(self, code: int, answer: dict[str, Any]) -> None:
            self.answer(code, json.dumps(answer).encode(), "application/json")

        def log_message(self, format: str, *args: Any) -> None:
            LOGGER.info("webhook %s", format % args)

    return httpserve.serve(Handler, host, port, "webhooks")
