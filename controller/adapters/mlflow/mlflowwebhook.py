"""The MLflow registry webhook receiver: a verified alias move makes the releases that follow it look.

MLflow (≥ 3.3) signs each delivery: `X-MLflow-Signature: v1,<base64 HMAC-SHA256>` over
`<delivery id>.<timestamp>.<body>` with the webhook's secret, and sends the Unix timestamp in
`X-MLflow-Timestamp`. A delivery counts only when the signature verifies under our secret and the
timestamp is within five minutes of now (a captured delivery cannot be replayed later); then each
release whose `spec.model.follow` names that model and alias gets a `registry-event` annotation
(the delivery id), which wakes its reconcile, and the reconcile reads the alias itself from the
registry. The payload is never trusted for the version: it only says when to look, so a replay
inside the window can do no more than ask for a look that changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import pydantic

from controller.adapters import kubeapi
from controller.resources import kinds, meta

LOGGER = logging.getLogger(__name__)
PATH = "/hooks/mlflow"
REGISTRY_EVENT = f"{meta.GROUP}/registry-event"  # the last delivery that asked the release to look
MAX_AGE = 300.0  # seconds a delivery's timestamp may be off from now
ALIAS_CREATED = ("model_version_alias", "created")


def signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class AliasReceiver:
    def __init__(
        self,
        api: kubeapi.KubeApi,
        namespaces: tuple[str, ...],
        secret: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = api
        self._namespaces = namespaces
        self._secret = secret
        self._clock = clock

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """The response to one delivery: (HTTP status, JSON body)."""
        delivery = headers.get("x-mlflow-delivery-id", "")
        stamp = headers.get("x-mlflow-timestamp", "")
        given = headers.get("x-mlflow-signature", "")
        if not (delivery and stamp and given):
            return HTTPStatus.UNAUTHORIZED, {
                "error": "X-MLflow-Delivery-Id, X-MLflow-Timestamp and X-MLflow-Signature are required"
            }
        if not hmac.compare_digest(signature(self._secret, delivery, stamp, body), given):
            return HTTPStatus.UNAUTHORIZED, {
                "error": "the signature does not verify under the webhook secret"
            }
        try:
            age = abs(self._clock() - float(stamp))
        except ValueError:
            return HTTPStatus.UNAUTHORIZED, {"error": "X-MLflow-Timestamp is not a Unix time"}
        if age > MAX_AGE:
            return HTTPStatus.UNAUTHORIZED, {
                "error": f"the delivery is {age:.0f} s old: a replay, or a clock off"
            }
        try:
            payload = json.loads(body)
        except ValueError:
            return HTTPStatus.BAD_REQUEST, {"error": "the body is not JSON"}
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
            return HTTPStatus.BAD_REQUEST, {"error": "the body has no 'data' object"}
        if (payload.get("entity"), payload.get("action")) != ALIAS_CREATED:
            return HTTPStatus.ACCEPTED, {"ignored": f"{payload.get('entity')}.{payload.get('action')}"}
        model, alias = str(payload["data"].get("name", "")), str(payload["data"].get("alias", ""))
        woken = []
        for release in self._followers(model, alias):
            namespace, name = release.metadata.namespace, release.metadata.name
            path = kubeapi.build_path(meta.API_VERSION, "modelreleases", namespace, name)
            self._api.merge_patch(path, {"metadata": {"annotations": {REGISTRY_EVENT: delivery}}})
            woken.append(f"{namespace}/{name}")
        LOGGER.info("MLflow: alias %s of %s moved; releases looking: %s", alias, model, woken or "none")
        return HTTPStatus.ACCEPTED, {"looking": woken}

    def _followers(self, model: str, alias: str) -> list[kinds.ModelRelease]:
        found = []
        for item in self._api.list_in(meta.API_VERSION, "modelreleases", self._namespaces):
            try:
                release = kinds.from_cluster(kinds.ModelRelease, item)
            except pydantic.ValidationError:
                continue  # its own reconcile reports it
            follow = release.spec.model.follow
            if release.spec.model.name == model and follow is not None and follow.alias == alias:
                found.append(release)
        return found
