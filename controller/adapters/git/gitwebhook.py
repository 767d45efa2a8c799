"""The push webhook receiver: a verified GitHub push asks the GitSources that follow it to sync now.

It listens on its own port. A request counts only when its `X-Hub-Signature-256` is the HMAC of
the raw body under the webhook secret of a GitSource that follows the pushed repository and
branch; then that source gets a `sync-requested` annotation (the delivery id) and its timer syncs
within seconds. Anything else gets 401 (bad or missing signature) or 400, and changes nothing.
GitHub signs no timestamp: a replayed delivery can only ask for a sync, which is idempotent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from http import HTTPStatus
from typing import Any

from controller import errors
from controller.adapters import kubeapi
from controller.adapters.git import gitcredentials, gitsync
from controller.resources import kinds, meta

LOGGER = logging.getLogger(__name__)
PATH = "/hooks/git"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def same_repository(a: str, b: str) -> bool:
    def norm(url: str) -> str:
        url = url.strip().lower().removesuffix("/").removesuffix(".git")
        for prefix in ("https://", "http://", "ssh://", "git://", "git@"):
            url = url.removeprefix(prefix)
        return url.replace(":", "/", 1) if "/" in url and ":" in url.split("/")[0] else url

    return norm(a) == norm(b)


class PushReceiver:
    def __init__(self, api: kubeapi.KubeApi, namespaces: tuple[str, ...]) -> None:
        self._api = api
        self._namespaces = namespaces

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """The response to one delivery: (HTTP status, JSON body)."""
        given = headers.get("x-hub-signature-256", "")
        event = headers.get("x-github-event", "")
        delivery = headers.get("x-github-delivery") or hashlib.sha256(body).hexdigest()[:16]
        try:
            payload = json.loads(body)
        except ValueError:
            return HTTPStatus.BAD_REQUEST, {"error": "the body is not JSON"}
        if not isinstance(payload, dict):
            return HTTPStatus.BAD_REQUEST, {"error": "the body is not a JSON object"}
        repository = payload.get("repository") or {}
        urls = [repository.get(k) for k in ("clone_url", "ssh_url", "git_url", "html_url", "url")]
        ref = str(payload.get("ref", ""))
        verified: list[kinds.GitSource] = []
        for source in self._sources():
            if source.spec.webhook_secret is None:
                continue
            if not any(isinstance(u, str) and same_repository(u, source.spec.url) for u in urls):
                continue
            try:
                secret = gitcredentials.read_key(
                    self._api, source.metadata.namespace or "", source.spec.webhook_secret
                )
            except errors.ModelReleaseError as error:
                LOGGER.warning(
                    "GitSource %s: cannot read its webhook secret: %s", source.metadata.name, error
                )
                continue
            if hmac.compare_digest(signature(secret, body), given):
                verified.append(source)
        if not verified:
            return HTTPStatus.UNAUTHORIZED, {
                "error": "no GitSource following this repository verifies the signature"
            }
        if event == "ping":
            return HTTPStatus.OK, {"pong": [s.metadata.name for s in verified]}
        if event != "push":
            return HTTPStatus.ACCEPTED, {"ignored": f"event {event!r}"}
        requested = []
        for source in verified:
            if ref != f"refs/heads/{source.spec.branch}":
                continue
            path = kubeapi.build_path(
                meta.API_VERSION, "gitsources", source.metadata.namespace, source.metadata.name
            )
            self._api.merge_patch(path, {"metadata": {"annotations": {gitsync.SYNC_REQUEST: delivery}}})
            requested.append(f"{source.metadata.namespace}/{source.metadata.name}")
        return HTTPStatus.ACCEPTED, {"syncing": requested}

    def _sources(self) -> list[kinds.GitSource]:
        found = []
        for item in self._api.list_in(meta.API_VERSION, "gitsources", self._namespaces):
            try:
                found.append(kinds.from_cluster(kinds.GitSource, item))
            except ValueError as error:  # its own timer reports it; here it cannot verify anything
                LOGGER.warning(
                    "GitSource %s: invalid, skipped: %s", item.get("metadata", {}).get("name"), error
                )
        return found
