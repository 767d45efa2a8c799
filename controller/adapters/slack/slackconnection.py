"""Slack's clients, built once per process when a bot token is configured: slack-sdk's WebClient
for sending, the outboxes in the cluster, the interaction handler, and Socket Mode when an
app-level token is given instead of a public interactivity URL."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from controller.adapters import events, kubeapi
from controller.adapters.slack import slackinteractions, slacknotifier, slackoutbox


@dataclasses.dataclass(frozen=True)
class Slack:
    client: WebClient
    notifier: slacknotifier.SlackNotifier
    sender: slacknotifier.SlackSender
    interactions: slackinteractions.Interactions


@dataclasses.dataclass(frozen=True)
class SlackSettings:
    """What `build` needs of the runtime settings (the wing does not import the runtime)."""

    token_file: str
    signing_secret_file: str | None
    api_url: str
    timeout: float
    retry_max: float


def read_secret(path: str, what: str) -> str:
    try:
        value = pathlib.Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read the Slack {what} from {path}: {exc.strerror}") from None
    if not value:
        raise ValueError(f"the Slack {what} file {path} is empty")
    return value


def build(
    settings: SlackSettings,
    api: kubeapi.KubeApi,
    kube_events: events.KubeEvents,
    clock: Callable[[], datetime],
) -> Slack:
    token = read_secret(settings.token_file, "bot token")
    secret = (
        read_secret(settings.signing_secret_file, "signing secret") if settings.signing_secret_file else None
    )
    client = WebClient(token=token, base_url=settings.api_url, timeout=int(settings.timeout))
    outboxes = slackoutbox.Outboxes(api)
    return Slack(
        client=client,
        notifier=slacknotifier.SlackNotifier(outboxes, events.EventNotifier(kube_events)),
        sender=slacknotifier.SlackSender(
            client, outboxes, kube_events, clock, max_backoff=settings.retry_max
        ),
        interactions=slackinteractions.Interactions(api, client, secret),
    )


def connect_socket_mode(
    interactions: slackinteractions.Interactions, app_token: str, client: WebClient
) -> SocketModeClient:
    """Presses over Socket Mode: acknowledged at once (Slack waits three seconds), then answered."""
    socket = SocketModeClient(app_token=app_token, web_client=client, auto_reconnect_enabled=True)

    def on_request(connection: BaseSocketModeClient, request: SocketModeRequest) -> None:
        connection.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        if request.type == "interactive":
            interactions.answer_payload(request.payload)

    socket.socket_mode_request_listeners.append(on_request)
    socket.connect()
    return socket
