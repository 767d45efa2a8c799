"""Slack: the Notifier port (queue in the outbox) and the sender that delivers the outbox to Slack.

`SlackNotifier` is what the reconciler calls: it queues the Slack message (an approval request is
also an Event, saying how to approve with kubectl); it never talks to Slack, so Slack cannot slow
or fail a rollout. `SlackSender.deliver` runs in the background (a Kopf timer per release): it posts each
rollout's parent message once and keeps it current with `chat.update`, posts the thread replies in
order, and rewrites a decided approval request so its buttons give way to who decided. Failures
(5xx, 429 with Retry-After, network) are retried with backoff; after a few, a Warning Event says
so, and the `NotificationsDelivered` condition (from `fetch_delivery`) stays False until they
get through.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import urllib.error
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from controller import errors, ports
from controller.adapters import events
from controller.adapters.slack import slackmessages, slackoutbox
from controller.domain import actions, observations
from controller.resources import modelrelease, releasestatus

LOGGER = logging.getLogger(__name__)
METADATA_TYPE = "modelrelease_message"
REPORT_AFTER = 3  # failed attempts before a Warning Event: one blip is not news
MAX_BACKOFF = 60.0
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


class SlackNotifier:
    """The Notifier port with Slack: an Event for every notification, and the Slack message queued."""

    def __init__(self, outboxes: slackoutbox.Outboxes, fallback: events.EventNotifier) -> None:
        self._outboxes = outboxes
        self._events = fallback

    def post_notification(self, release: ports.ReleaseRef, action: actions.Notify) -> None:
        # No Event: the reconciler's transition Events already say it (Promoted, Approval, …).
        rollout = slackmessages.rollout_of(action.key)
        rendered = slackmessages.render_notification(action)
        message = None
        if rendered is not None:
            message = slackoutbox.Outgoing(
                key=action.key, rollout=rollout, text=rendered.text, blocks=rendered.blocks
            )
            decided = action.event == actions.NotificationEvent.APPROVAL and action.closes_gate
            if decided and action.step_index is not None:
                message.edits = f"{rollout}/approval-{action.step_index}"
                message.edit_text = action.message
        self._outboxes.update(release, lambda outbox: outbox.queue(rollout, message), action.channel)

    def post_approval_request(self, release: ports.ReleaseRef, action: actions.RequestApproval) -> None:
        self._events.post_approval_request(release, action)
        if not action.slack or action.channel is None:
            return
        rollout = slackmessages.rollout_of(action.key)
        rendered = slackmessages.render_approval_request(release.namespace, release.name, action)
        message = slackoutbox.Outgoing(
            key=action.key, rollout=rollout, text=rendered.text, blocks=rendered.blocks
        )
        self._outboxes.update(release, lambda outbox: outbox.queue(rollout, message), action.channel)

    def fetch_delivery(self, release: ports.ReleaseRef) -> observations.NotificationDelivery | None:
        slack = release.spec.notifications.slack
        if slack is None:
            return None
        outbox = self._outboxes.read(release.namespace, release.name)
        return describe(outbox, slack.channel)


def describe(outbox: slackoutbox.Outbox | None, channel: str) -> observations.NotificationDelivery:
    """What the domain sees of an outbox: the newest rollout's thread, and what keeps failing."""
    if outbox is None:
        return observations.NotificationDelivery(channel=channel)
    newest = outbox.threads[-1] if outbox.threads else None
    failing = [d for d in outbox.undelivered() if d.attempts > 0]
    starts = [d.first_failed_at for d in failing if d.first_failed_at is not None]
    latest = max(failing, key=lambda d: d.next_attempt_at or datetime.min, default=None)
    return observations.NotificationDelivery(
        channel=outbox.channel,
        rollout=newest.rollout if newest is not None and newest.delivery.ts else None,
        thread_ts=newest.delivery.ts if newest is not None else None,
        undelivered=len(failing),
        failing_since=min(starts) if starts else None,
        last_error=latest.last_error if latest is not None else None,
    )


@dataclasses.dataclass(frozen=True)
class Delivered:
    changed: bool  # what the domain sees of delivery changed (a thread's ts, failures began or ended)
    retry_at: datetime | None  # the earliest retry waiting, if any


def _deliveries(outbox: slackoutbox.Outbox) -> list[slackoutbox.Delivery]:
    return [t.delivery for t in outbox.threads] + [m.delivery for m in outbox.messages]


class _SlackFailedError(Exception):
    """Slack failed: what follows waits, so the thread keeps its order."""


class SlackSender:
    def __init__(
        self,
        client: WebClient,
        outboxes: slackoutbox.Outboxes,
        kube_events: events.KubeEvents,
        clock: Callable[[], datetime],
        *,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self._max_backoff = max_backoff
        self._client = client
        self._outboxes = outboxes
        self._events = kube_events
        self._clock = clock

    def deliver(self, release: ports.ReleaseRef, status: releasestatus.ModelReleaseStatus) -> Delivered:
        """Deliver what is due: one read of the outbox when there is nothing to do."""
        slack = release.spec.notifications.slack
        outbox = self._outboxes.read(release.namespace, release.name)
        if slack is None or outbox is None:
            return Delivered(changed=False, retry_at=None)
        before = describe(outbox, slack.channel)
        try:
            for thread in list(outbox.threads):
                if self._keep_parent(release, status, outbox, thread.rollout):
                    outbox = self._current(release)
            for queued in list(outbox.messages):
                if self._reply(release, outbox, queued.key):
                    outbox = self._current(release)
        except _SlackFailedError:
            outbox = self._current(release)
        waiting = [d.next_attempt_at for d in _deliveries(outbox) if d.next_attempt_at is not None]
        return Delivered(describe(outbox, slack.channel) != before, min(waiting) if waiting else None)

    # ---- the parent message ------------------------------------------------------------------

    def _keep_parent(
        self,
        release: ports.ReleaseRef,
        status: releasestatus.ModelReleaseStatus,
        outbox: slackoutbox.Outbox,
        rollout: str,
    ) -> bool:
        """True when it acted (the outbox changed)."""
        thread = outbox.thread(rollout)
        assert thread is not None
        rendered = slackmessages.render_parent(release.namespace, release.name, release.spec, status, rollout)
        if thread.delivery.ts is None:
            ts = self._post_once(
                release,
                outbox,
                thread.delivery,
                f"{rollout}/thread",
                rendered,
                None,
                lambda o: _thread_delivery(o, rollout),
            )
            self._change(release, lambda o: _set_digest(o, rollout, rendered.digest))
            LOGGER.info("Slack: %s rollout %s thread %s", release.name, rollout, ts)
            return True
        if thread.digest != rendered.digest and thread.delivery.due(self._clock()):
            self._update(
                release, lambda o: _thread_delivery(o, rollout), outbox, thread.delivery.ts, rendered
            )
            self._change(release, lambda o: _set_digest(o, rollout, rendered.digest))
            return True
        return False

    # ---- replies -------------------------------------------------------------------------------

    def _reply(self, release: ports.ReleaseRef, outbox: slackoutbox.Outbox, key: str) -> bool:
        """True when it acted (the outbox changed)."""
        queued = outbox.message(key)
        thread = outbox.thread(queued.rollout) if queued is not None else None
        if queued is None or thread is None or thread.delivery.ts is None:
            return False
        if queued.delivery.ts is None and not queued.delivery.due(self._clock()):
            raise _SlackFailedError  # waiting to retry: later replies wait behind it
        acted = False
        if queued.delivery.ts is None:
            acted = True
            rendered = slackmessages.Rendered(queued.text, queued.blocks)
            self._post_once(
                release,
                outbox,
                queued.delivery,
                key,
                rendered,
                thread.delivery.ts,
                lambda o: _message_delivery(o, key),
            )
            outbox = self._current(release)
            queued = outbox.message(key)
            assert queued is not None
        if queued.edits is not None and not queued.edited:
            target = outbox.message(queued.edits)
            if target is not None and target.delivery.ts is not None:
                decided = slackmessages.render_decided(
                    slackmessages.Rendered(target.text, target.blocks), queued.edit_text or queued.text
                )
                self._update(
                    release, lambda o: _message_delivery(o, key), outbox, target.delivery.ts, decided
                )
            self._change(release, lambda o: _mark_edited(o, key))
            acted = True
        return acted

    def _update(
        self,
        release: ports.ReleaseRef,
        locate: Callable[[slackoutbox.Outbox], slackoutbox.Delivery],
        outbox: slackoutbox.Outbox,
        ts: str,
        rendered: slackmessages.Rendered,
    ) -> None:
        """Rewrite a posted message in place (idempotent: the same content again changes nothing)."""
        self._call(
            release,
            locate,
            "chat.update",
            channel=_channel(outbox),
            ts=ts,
            text=rendered.text,
            blocks=rendered.blocks,
        )

    # ---- sending, exactly once ---------------------------------------------------------------------

    def _post_once(
        self,
        release: ports.ReleaseRef,
        outbox: slackoutbox.Outbox,
        delivery: slackoutbox.Delivery,
        key: str,
        rendered: slackmessages.Rendered,
        thread_ts: str | None,
        locate: Callable[[slackoutbox.Outbox], slackoutbox.Delivery],
    ) -> str:
        now = self._clock()
        if not delivery.due(now):
            raise _SlackFailedError
        if delivery.sending_since is None:
            self._change(release, lambda o: _mark_sending(locate(o), now))
        else:
            # An earlier attempt may have reached Slack before we were killed or timed out: look first.
            found = self._call(
                release,
                locate,
                "find",
                key=key,
                owner=release.uid,
                thread_ts=thread_ts,
                since=delivery.sending_since,
                outbox=outbox,
            )
            if found:
                self._change(release, lambda o: _mark_sent(o, locate(o), str(found), None))
                return str(found)
        answer = self._call(
            release,
            locate,
            "chat.postMessage",
            channel=_channel(outbox),
            text=rendered.text,
            blocks=rendered.blocks,
            thread_ts=thread_ts,
            # The key names a message of a rollout (revision.attempt/…); the owner names the release:
            # two releases of one model and serving spec share revisions, never a uid.
            metadata={"event_type": METADATA_TYPE, "event_payload": {"key": key, "owner": release.uid}},
        )
        ts, channel_id = str(answer["ts"]), str(answer["channel"])
        self._change(release, lambda o: _mark_sent(o, locate(o), ts, channel_id))
        return ts

    def _call(
        self,
        release: ports.ReleaseRef,
        locate: Callable[[slackoutbox.Outbox], slackoutbox.Delivery],
        method: str,
        **arguments: Any,
    ) -> Any:
        """One Slack call; a failure is recorded on the delivery it was for, and stops this round."""
        try:
            if method == "find":
                return self._find(**arguments)
            if method == "chat.update":
                return self._client.chat_update(**arguments).data
            return self._client.chat_postMessage(**arguments).data
        except (SlackApiError, urllib.error.URLError, OSError) as exc:
            error, retry_after = explain(exc)
            now = self._clock()
            wait = backoff(locate(self._current(release)).attempts + 1, retry_after, self._max_backoff)
            outbox = self._change(release, lambda o: _mark_failed(locate(o), now, error, wait))
            delivery = locate(outbox)
            LOGGER.warning(
                "Slack %s for %s failed (attempt %d): %s", method, release.name, delivery.attempts, error
            )
            if delivery.attempts >= REPORT_AFTER and not delivery.reported:
                message = (
                    f"Slack messages to {outbox.channel} are not getting through "
                    f"({delivery.attempts} attempts): {error}; retrying, the rollout goes on"
                )
                try:
                    self._events.post_warning(
                        release,
                        "SlackUndelivered",
                        message,
                        "slack-undelivered",
                        str(delivery.first_failed_at),
                    )
                except errors.ModelReleaseError:
                    pass  # the condition says it too
                self._change(release, lambda o: _mark_reported(locate(o)))
            raise _SlackFailedError from exc

    def _find(
        self, *, key: str, owner: str, thread_ts: str | None, since: datetime, outbox: slackoutbox.Outbox
    ) -> str | None:
        """A message this release posted with `key` in its metadata, if Slack has it (another release's
        message with the same key is not ours to adopt)."""
        channel = outbox.channel_id or self._channel_id(outbox.channel)
        if channel is None:
            return None
        if thread_ts is not None:
            answer = self._client.conversations_replies(
                channel=channel, ts=thread_ts, include_all_metadata=True, limit=200
            )
        else:
            oldest = (since - timedelta(minutes=2)).timestamp()
            answer = self._client.conversations_history(
                channel=channel, oldest=f"{oldest:.6f}", include_all_metadata=True, limit=200
            )
        for message in answer.get("messages") or []:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("key") == key and payload.get("owner") == owner:
                return str(message["ts"])
        return None

    def _channel_id(self, channel: str) -> str | None:
        if CHANNEL_ID.match(channel):
            return channel
        name = channel.removeprefix("#")
        answer = self._client.conversations_list(types="public_channel,private_channel", limit=1000)
        return next((str(c["id"]) for c in answer.get("channels") or [] if c.get("name") == name), None)

    def _change(
        self, release: ports.ReleaseRef, change: Callable[[slackoutbox.Outbox], None]
    ) -> slackoutbox.Outbox:
        channel = _slack(release.spec).channel
        return self._outboxes.update(release, change, channel)

    def _current(self, release: ports.ReleaseRef) -> slackoutbox.Outbox:
        outbox = self._outboxes.read(release.namespace, release.name)
        assert outbox is not None  # deliver found it, and only the release's deletion removes it
        return outbox


def explain(exc: Exception) -> tuple[str, float | None]:
    """What went wrong, in words without secrets, and Slack's Retry-After if it gave one."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        data = response.data if isinstance(response.data, dict) else {}
        retry = {k.lower(): v for k, v in (response.headers or {}).items()}.get("retry-after")
        retry_after = float(retry[0] if isinstance(retry, list) else retry) if retry else None
        return f"Slack answered {response.status_code} {data.get('error', '')}".strip(), retry_after
    return f"Slack unreachable: {type(exc).__name__}: {exc}", None


def backoff(attempts: int, retry_after: float | None, longest: float = MAX_BACKOFF) -> float:
    """Seconds before attempt `attempts + 1`: doubling from 1 s up to `longest`, or Slack's
    Retry-After when it asks for longer."""
    return max(min(2.0 ** (attempts - 1), longest), retry_after or 0.0)


def _slack(spec: modelrelease.ModelReleaseSpec) -> modelrelease.SlackNotifications:
    assert spec.notifications.slack is not None
    return spec.notifications.slack


def _channel(outbox: slackoutbox.Outbox) -> str:
    return outbox.channel_id or outbox.channel


def _thread_delivery(outbox: slackoutbox.Outbox, rollout: str) -> slackoutbox.Delivery:
    thread = outbox.thread(rollout)
    assert thread is not None
    return thread.delivery


def _message_delivery(outbox: slackoutbox.Outbox, key: str) -> slackoutbox.Delivery:
    message = outbox.message(key)
    assert message is not None
    return message.delivery


def _mark_sending(delivery: slackoutbox.Delivery, now: datetime) -> None:
    delivery.sending_since = now


def _recovered(delivery: slackoutbox.Delivery) -> None:
    """Slack took it: failures before are history (the condition turns True again)."""
    delivery.attempts = 0
    delivery.next_attempt_at = delivery.first_failed_at = None
    delivery.last_error = None
    delivery.reported = False
    delivery.sending_since = None


def _mark_sent(
    outbox: slackoutbox.Outbox, delivery: slackoutbox.Delivery, ts: str, channel_id: str | None
) -> None:
    delivery.ts = ts
    _recovered(delivery)
    if channel_id:
        outbox.channel_id = channel_id


def _mark_failed(delivery: slackoutbox.Delivery, now: datetime, error: str, wait: float) -> None:
    delivery.attempts += 1
    delivery.first_failed_at = delivery.first_failed_at or now
    delivery.last_error = error
    delivery.next_attempt_at = now + timedelta(seconds=wait)


def _mark_reported(delivery: slackoutbox.Delivery) -> None:
    delivery.reported = True


def _set_digest(outbox: slackoutbox.Outbox, rollout: str, digest: str) -> None:
    thread = outbox.thread(rollout)
    assert thread is not None
    thread.digest = digest
    _recovered(thread.delivery)


def _mark_edited(outbox: slackoutbox.Outbox, key: str) -> None:
    message = outbox.message(key)
    assert message is not None
    message.edited = True
    _recovered(message.delivery)
