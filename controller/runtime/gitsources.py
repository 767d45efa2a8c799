"""Kopf wiring of the GitSource: a timer per source that syncs when it is due.

A sync is due when the source's poll interval has passed since the last attempt, when its spec
changed, or when the webhook receiver asked for one (the `sync-requested` annotation holds a
token the status has not handled yet). Everything that decides lives in the source's status, so
a restarted controller picks up where the last one stopped.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import kopf
import pydantic

from controller.adapters.git import gitsync
from controller.resources import kinds, meta

LOGGER = logging.getLogger(__name__)
TICK_SECONDS = 2.0  # how often each source checks whether it is due: a webhook waits at most this


def is_due(source: kinds.GitSource, now: datetime) -> tuple[bool, str | None]:
    """Whether to sync now, and the sync request (webhook token) this sync handles."""
    status = source.status
    requested = source.metadata.annotations.get(gitsync.SYNC_REQUEST)
    handled = status.handled_sync_request if status is not None else None
    if status is None or status.last_attempt_time is None:
        return True, requested
    if requested is not None and requested != handled:
        return True, requested
    if status.observed_generation != source.metadata.generation:
        return True, handled
    return now >= status.last_attempt_time + source.spec.poll_interval, handled


def register(
    registry: kopf.OperatorRegistry, sync: gitsync.GitSourceSync, clock: Callable[[], datetime]
) -> None:
    @kopf.timer(meta.GROUP, meta.VERSION, "gitsources", registry=registry, interval=TICK_SECONDS)
    def poll(body: kopf.Body, **_: Any) -> None:
        try:
            source = kinds.from_cluster(kinds.GitSource, copy.deepcopy(dict(body)))
        except pydantic.ValidationError as error:
            LOGGER.warning(
                "GitSource %s: invalid spec, not synced: %s", body.get("metadata", {}).get("name"), error
            )
            return
        due, request = is_due(source, clock())
        if due:
            status = sync.sync(source, request=request)
            LOGGER.info(
                "GitSource %s/%s: %s", source.metadata.namespace, source.metadata.name, status.message
            )
