"""The MLflow webhook receiver over HTTP, against the real API server: only a delivery signed
with the secret, stamped within five minutes, for an alias a release follows, makes that release
look; anything else is refused or ignored and changes nothing."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from controller.adapters import kubeapi
from controller.adapters.mlflow import mlflowwebhook
from controller.resources import meta
from controller.runtime import webhooks
from tests.cluster import harness

NAMESPACE = "default"

SECRET = "whsec-test-4d2a"


@pytest.fixture(scope="module")
def endpoint(api: kubeapi.KubeApi) -> Iterator[str]:
    for name, alias in (("follows", "champion-candidate"), ("pinned", None)):
        body = harness.release_body(name)
        if alias:
            body["spec"]["model"]["follow"] = {"alias": alias}
        api.create(kubeapi.build_path(meta.API_VERSION, "modelreleases", NAMESPACE), body)
    receiver = mlflowwebhook.AliasReceiver(api, (NAMESPACE,), SECRET)
    server = webhooks.serve({mlflowwebhook.PATH: webhooks.json_route(receiver.handle)}, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.server_address[1]}{mlflowwebhook.PATH}"
    server.shutdown()
    server.server_close()


def annotation(api: kubeapi.KubeApi, name: str) -> str | None:
    body = api.get(kubeapi.build_path(meta.API_VERSION, "modelreleases", NAMESPACE, name))
    found: str | None = (body["metadata"].get("annotations") or {}).get(mlflowwebhook.REGISTRY_EVENT)
    return found


def deliver(
    url: str,
    *,
    alias: str = "champion-candidate",
    entity: str = "model_version_alias",
    secret: str = SECRET,
    age: float = 0,
) -> tuple[int, dict[str, Any], str]:
    """POST a delivery as MLflow's webhooks/delivery.py builds it; (status, answer, delivery id)."""
    payload = json.dumps(
        {
            "entity": entity,
            "action": "created",
            "timestamp": "2026-11-24T10:00:00+00:00",
            "data": {"name": "ranker", "alias": alias, "version": "2"},
        }
    ).encode()
    delivery, stamp = str(uuid.uuid4()), str(int(time.time() - age))
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": mlflowwebhook.signature(secret, delivery, stamp, payload),
    }
    request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), delivery
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), delivery


def test_a_signed_fresh_alias_move_asks_only_the_release_that_follows_that_alias_to_look(
    api: kubeapi.KubeApi, endpoint: str
) -> None:
    code, answer, delivery = deliver(endpoint)
    assert (code, answer) == (202, {"looking": [f"{NAMESPACE}/follows"]})
    assert annotation(api, "follows") == delivery
    assert annotation(api, "pinned") is None


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ({"secret": "not-the-secret"}, "does not verify"),
        ({"age": 900}, "s old: a replay, or a clock off"),  # five minutes is the most allowed
    ],
)
def test_a_forged_or_stale_delivery_is_refused_and_changes_nothing(
    api: kubeapi.KubeApi, endpoint: str, how: dict[str, Any], expected: str
) -> None:
    before = annotation(api, "follows")
    code, answer, _ = deliver(endpoint, **how)
    assert code == 401
    assert expected in answer["error"]
    assert annotation(api, "follows") == before


def test_other_registry_events_and_unfollowed_aliases_are_accepted_and_ignored(
    api: kubeapi.KubeApi, endpoint: str
) -> None:
    before = annotation(api, "follows")
    assert deliver(endpoint, entity="model_version")[:2] == (202, {"ignored": "model_version.created"})
    assert deliver(endpoint, alias="production")[:2] == (202, {"looking": []})
    assert annotation(api, "follows") == before
