"""The Slack outbox: what a release has to say in Slack and what Slack has acknowledged, in a ConfigMap.

The reconciler queues a message here (a Kubernetes write, fast and local) before it records the
notification as sent in status, and delivery to Slack happens later, in the background. So a slow
or failing Slack never holds a rollout, and a controller killed at any moment loses nothing: the
outbox is in the cluster, owned by the release (deleted with it), and every change to it is a
read-modify-write guarded by resourceVersion. A message being sent is marked first; after a crash
in that window the sender looks for it in Slack (by the key in its metadata) before posting again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pydantic

from controller import errors, ports
from controller.adapters import kubeapi, labels, workloads
from controller.domain import naming

DATA_KEY = "outbox.json"
KEEP_ROLLOUTS = 5  # threads kept after delivery; older delivered ones are pruned
UPDATE_ATTEMPTS = 8


class Delivery(pydantic.BaseModel):
    """Where one Slack message stands: its ts once posted, and its failures until then."""

    ts: str | None = None
    sending_since: datetime | None = None  # set before posting: after a crash, look in Slack first
    attempts: int = 0
    next_attempt_at: datetime | None = None
    first_failed_at: datetime | None = None
    last_error: str | None = None
    reported: bool = False  # a Warning Event said it is failing

    def due(self, now: datetime) -> bool:
        return self.next_attempt_at is None or self.next_attempt_at <= now


class Thread(pydantic.BaseModel):
    """One rollout's parent message: posted once, then edited to show what it renders to now."""

    rollout: str
    delivery: Delivery = pydantic.Field(default_factory=Delivery)
    digest: str | None = None  # of the content Slack shows


class Outgoing(pydantic.BaseModel):
    """A thread reply, rendered when it was queued."""

    key: str
    rollout: str
    text: str
    blocks: list[dict[str, Any]]
    edits: str | None = None  # the key of an earlier message this one also rewrites (a decided gate)
    edit_text: str | None = None  # what the rewritten message says in place of its buttons
    edited: bool = False
    delivery: Delivery = pydantic.Field(default_factory=Delivery)


class Outbox(pydantic.BaseModel):
    channel: str
    channel_id: str | None = None  # learnt from Slack's first answer
    threads: list[Thread] = pydantic.Field(default_factory=list)
    messages: list[Outgoing] = pydantic.Field(default_factory=list)

    def thread(self, rollout: str) -> Thread | None:
        return next((t for t in self.threads if t.rollout == rollout), None)

    def message(self, key: str) -> Outgoing | None:
        return next((m for m in self.messages if m.key == key), None)

    def queue(self, rollout: str, message: Outgoing | None) -> None:
        """A thread for `rollout` (if new) and `message` (if not queued before: keys are unique)."""
        if self.thread(rollout) is None:
            self.threads.append(Thread(rollout=rollout))
        if message is not None and self.message(message.key) is None:
            self.messages.append(message)
        self._prune()

    def undelivered(self) -> list[Delivery]:
        pending = [t.delivery for t in self.threads if t.delivery.ts is None]
        return pending + [m.delivery for m in self.messages if m.delivery.ts is None or not _edit_done(m)]

    def _prune(self) -> None:
        """Keep the newest rollouts' threads, and anything not yet delivered."""
        recent = {t.rollout for t in self.threads[-KEEP_ROLLOUTS:]}
        self.threads = [t for t in self.threads if t.rollout in recent or t.delivery.ts is None]
        kept = {t.rollout for t in self.threads}
        self.messages = [
            m for m in self.messages if m.rollout in kept or m.delivery.ts is None or not _edit_done(m)
        ]


def _edit_done(message: Outgoing) -> bool:
    return message.edits is None or message.edited


def outbox_name(release: str) -> str:
    return f"modelrelease-slack-{release}"[:253]


class Outboxes:
    """The outbox ConfigMaps, read and changed only through `update` (conflict-safe)."""

    def __init__(self, api: kubeapi.KubeApi) -> None:
        self._api = api

    def read(self, namespace: str, release: str) -> Outbox | None:
        found = self._read(namespace, release)
        return found[0] if found is not None else None

    def update(self, release: ports.ReleaseRef, change: Callable[[Outbox], None], channel: str) -> Outbox:
        """Apply `change` to the current outbox (created for `channel` if missing) and store it."""
        for _ in range(UPDATE_ATTEMPTS):
            found = self._read(release.namespace, release.name)
            outbox, version = found if found is not None else (Outbox(channel=channel), None)
            before = outbox.model_dump(mode="json")
            change(outbox)
            if outbox.model_dump(mode="json") == before and version is not None:
                return outbox
            try:
                self._write(release, outbox, version)
            except errors.ConflictError:
                continue  # someone else (the reconciler, or the sender) wrote first: read again
            return outbox
        raise errors.UnavailableError(f"the Slack outbox of {release.name} kept changing under us")

    def _read(self, namespace: str, release: str) -> tuple[Outbox, str] | None:
        path = kubeapi.build_path("v1", "configmaps", namespace, outbox_name(release))
        try:
            body = self._api.get(path)
        except errors.NotFoundError:
            return None
        raw = (body.get("data") or {}).get(DATA_KEY, "")
        try:
            outbox = Outbox.model_validate(json.loads(raw))
        except (ValueError, pydantic.ValidationError) as exc:
            raise errors.InvalidError(
                f"ConfigMap {namespace}/{outbox_name(release)} key {DATA_KEY} is not an outbox: {exc}"
            ) from exc
        return outbox, str(body["metadata"]["resourceVersion"])

    def _write(self, release: ports.ReleaseRef, outbox: Outbox, version: str | None) -> None:
        data = {DATA_KEY: json.dumps(outbox.model_dump(mode="json", exclude_defaults=True), sort_keys=True)}
        name = outbox_name(release.name)
        if version is None:
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": release.namespace,
                    "labels": {labels.RELEASE: naming.release_label(release.name)},
                    "ownerReferences": [workloads.owner_reference(release)],
                },
                "data": data,
            }
            self._api.create(kubeapi.build_path("v1", "configmaps", release.namespace), body)
            return
        patch = {"metadata": {"resourceVersion": version}, "data": data}
        self._api.merge_patch(kubeapi.build_path("v1", "configmaps", release.namespace, name), patch)
