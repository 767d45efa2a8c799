"""The one HTTP server for inbound callbacks: a path per receiver (Git pushes, MLflow events, Slack's
interactivity URL), on one port.

Each route checks its own signature. A route may refuse a request from its headers alone (Slack's
signature and timestamp headers) before its body is read; every body over the route's limit is
refused before it is read (httpserve); an error reaching the cluster is a 503 the sender may retry.
"""

from __future__ import annotations

import dataclasses
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


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str


@dataclasses.dataclass(frozen=True)
class Route:
    """One receiver: what it answers a request, the largest body it reads, and what it checks in the
    headers before reading any (raising `httpserve.BodyRefusedError`)."""

    receive: Callable[[dict[str, str], bytes], Answer]
    max_body: int = MAX_BODY
    check_headers: Callable[[dict[str, str]], None] | None = None


def json_route(receiver: Receiver) -> Route:
    """A receiver that answers JSON (the Git and MLflow webhooks)."""

    def receive(headers: dict[str, str], body: bytes) -> Answer:
        code, answer = receiver(headers, body)
        return Answer(code, json.dumps(answer).encode(), "application/json")

    return Route(receive)


def serve(routes: Mapping[str, Route], host: str, port: int) -> ThreadingHTTPServer:
    """Start the server in a daemon thread; the server (its port is server.server_address[1])."""

    class Handler(httpserve.Handler):
        def post(self) -> None:
            route = routes.get(self.path.split("?")[0])
            if route is None:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"POST one of {', '.join(sorted(routes))}"})
                return
            try:
                headers, body = httpserve.read_body(self, route.max_body, route.check_headers)
            except httpserve.BodyRefusedError as refused:
                LOGGER.warning(
                    "%s refused (%d) before its body: %s", self.path, refused.status, refused.reason
                )
                self._json(refused.status, {"error": refused.reason})
                return
            try:
                answer = route.receive(headers, body)
            except errors.ModelReleaseError as error:
                self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(error)})
                return
            self.answer(answer.status, answer.body, answer.content_type)

        def _json(self, code: int, answer: dict[str, Any]) -> None:
            self.answer(code, json.dumps(answer).encode(), "application/json")

        def log_message(self, format: str, *args: Any) -> None:
            LOGGER.info("webhook %s", format % args)

    return httpserve.serve(Handler, host, port, "webhooks")
