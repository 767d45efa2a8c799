"""Slack's Kopf wiring: the sender (a Kopf daemon per release) and the interactivity endpoint (a
route of the inbound server, `webhooks`); the clients themselves are the Slack wing's
(`adapters/slack/slackconnection.py`), built only when a bot token is configured.

The daemon delivers each release's outbox in a worker thread, woken by the release's watch events
(every queued message is followed by a status write), by a due retry, or every 30 s; peering
stops it on a standby replica like every other handler, so only the acting replica talks to
Slack. When delivery changes what the domain sees (a thread's ts learnt, failures starting or
ending), the release's reconcile daemon is woken so status says it at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import kopf
import pydantic

from controller import errors, ports
from controller.adapters import events, kubeapi
from controller.adapters.slack import slackconnection, slackinteractions, slacknotifier, slackpress
from controller.resources import meta, modelrelease, releasestatus
from controller.runtime import handlers, httpserve, webhooks
from controller.runtime import settings as settings_

LOGGER = logging.getLogger("modelrelease.slack")
PATH = "/slack/interactions"
MAX_BODY = 64 * 1024


def build(
    config: settings_.RuntimeSettings,
    api: kubeapi.KubeApi,
    kube_events: events.KubeEvents,
    clock: Callable[[], datetime],
) -> slackconnection.Slack | None:
    """Slack's clients when a bot token is configured (None: no Slack in this process)."""
    if config.slack_token_file is None:
        return None
    settings = slackconnection.SlackSettings(
        token_file=config.slack_token_file,
        signing_secret_file=config.slack_signing_secret_file,
        api_url=config.slack_api_url,
        timeout=config.request_timeout,
        retry_max=config.slack_retry_max,
    )
    return slackconnection.build(settings, api, kube_events, clock)


def register(
    registry: kopf.OperatorRegistry,
    slack: slackconnection.Slack,
    config: settings_.RuntimeSettings,
    wake: Callable[[str, str], None],
) -> None:
    """One delivery daemon per release with Slack: it looks when the release changes (a status write
    follows every queued message), when a retry is due, and at least every IDLE_LOOK."""
    release_filter: dict[str, Any] | None = dict(config.label_selector) or None
    wakeups = handlers.Wakeups()

    @kopf.on.event(meta.GROUP, meta.VERSION, "modelreleases", registry=registry, labels=release_filter)
    def release_changed_for_slack(**kwargs: Any) -> None:
        wakeups.wake(kwargs["namespace"], kwargs["name"])

    @kopf.daemon(
        meta.GROUP,
        meta.VERSION,
        "modelreleases",
        registry=registry,
        labels=release_filter,
        when=lambda spec, **_: bool((spec.get("notifications") or {}).get("slack")),
        cancellation_timeout=5.0,
    )
    async def deliver_to_slack(**kwargs: Any) -> None:
        name: str = kwargs["name"]
        namespace: str = kwargs["namespace"]
        stopped: kopf.DaemonStopped = kwargs["stopped"]
        body: kopf.Body = kwargs["body"]  # Kopf keeps a daemon's body current
        wakeup = wakeups.get(namespace, name)
        while not stopped:
            wakeup.clear()  # before reading: a change while delivering wakes the next round
            wait = await asyncio.to_thread(_deliver_once, slack.sender, body, wake)
            await handlers.wait_for(wakeup, stopped, wait)
        wakeups.forget(namespace, name)


def _deliver_once(
    sender: slacknotifier.SlackSender, body: kopf.Body, wake: Callable[[str, str], None]
) -> float:
    """One delivery round; seconds until the next is due unless the release changes first."""
    namespace, name = str(body.metadata.namespace), str(body.metadata.name)
    try:
        spec = modelrelease.ModelReleaseSpec.model_validate(dict(body.spec))
        status = releasestatus.ModelReleaseStatus.model_validate(dict(body.status))
    except pydantic.ValidationError:
        return IDLE_LOOK  # the reconciler reports an unreadable release
    release = ports.ReleaseRef(namespace=namespace, name=name, uid=str(body.metadata.uid), spec=spec)
    try:
        delivered = sender.deliver(release, status)
    except errors.ModelReleaseError as exc:
        LOGGER.warning("Slack outbox of %s/%s: %s", namespace, name, exc)
        return ERROR_RETRY
    if delivered.changed:
        wake(namespace, name)
    if delivered.retry_at is None:
        return IDLE_LOOK
    seconds = (delivered.retry_at - datetime.now(UTC)).total_seconds()
    return min(max(seconds, MIN_WAIT), IDLE_LOOK)


IDLE_LOOK = 30.0  # a look now and then even when nothing changed (a lost wake-up, an edited outbox)
ERROR_RETRY = 5.0  # the API failed reading or writing the outbox
MIN_WAIT = 0.2


def route(interactions: slackinteractions.Interactions) -> webhooks.Route:
    """The interactivity URL (POST /slack/interactions on the inbound server), answered within Slack's
    three seconds. A request without Slack's signature headers, or with a timestamp outside five
    minutes, is refused before its body is read; the body is then read only up to MAX_BODY."""

    def receive(headers: dict[str, str], body: bytes) -> webhooks.Answer:
        answer = interactions.answer_http(headers, body)
        return webhooks.Answer(answer.status, answer.text.encode(), "text/plain; charset=utf-8")

    return webhooks.Route(receive, max_body=MAX_BODY, check_headers=_signed_headers)


def _signed_headers(headers: dict[str, str]) -> None:
    try:
        slackpress.check_signed_headers(headers, time.time())
    except slackpress.PressRefusedError as refused:
        raise httpserve.BodyRefusedError(refused.status, refused.reason) from None
