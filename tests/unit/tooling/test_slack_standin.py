"""The Slack stand-in answers slack-sdk's real WebClient as Slack would, and presses buttons as Slack does."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from controller.tooling import slackstandin as slack

TOKEN, SECRET = "xoxb-standin-token", "standin-signing-secret"
BUTTONS = [
    {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "*fraud-detector* model 2: step 3 waits for approval"},
    },
    {
        "type": "actions",
        "block_id": "approval",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": "s3",
            },
            {
                "type": "button",
                "action_id": "reject",
                "text": {"type": "plain_text", "text": "Roll back"},
                "value": "s3",
            },
        ],
    },
]


@pytest.fixture
def standin() -> Iterator[slack.SlackStandIn]:
    with slack.SlackStandIn(
        token=TOKEN, signing_secret=SECRET, channels={"ml-releases": "C0RELEASES"}
    ) as running:
        yield running


def client(standin: slack.SlackStandIn, token: str = TOKEN) -> WebClient:
    return WebClient(token=token, base_url=standin.api_url)


def test_a_parent_message_is_updated_in_place_and_replies_join_its_thread(
    standin: slack.SlackStandIn,
) -> None:
    web = client(standin)
    assert web.auth_test()["user_id"] == "U0BOT"
    parent = web.chat_postMessage(
        channel="#ml-releases", text="fraud-detector: model 2 at 20 %", blocks=BUTTONS
    )
    web.chat_update(channel=parent["channel"], ts=parent["ts"], text="fraud-detector: model 2 at 50 %")
    web.chat_postMessage(channel="C0RELEASES", thread_ts=parent["ts"], text="step 1 analysis: Pass")
    parent_message, reply = standin.thread("ml-releases", parent["ts"])
    assert (parent_message.text, parent_message.edits, reply.text) == (
        "fraud-detector: model 2 at 50 %",
        1,
        "step 1 analysis: Pass",
    )
    shown = standin.render_thread("ml-releases", parent["ts"])
    assert "[Approve]  [Roll back]" in shown
    assert "  ↳ step 1 analysis: Pass" in shown
    assert [c.method for c in standin.calls] == [
        "auth.test",
        "chat.postMessage",
        "chat.update",
        "chat.postMessage",
    ]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda web: web.chat_postMessage(channel="#nowhere", text="x"), "channel_not_found"),
        (
            lambda web: web.chat_postMessage(channel="#ml-releases", text="x", thread_ts="1.000001"),
            "thread_not_found",
        ),
        (lambda web: web.chat_update(channel="#ml-releases", ts="1.000001", text="x"), "message_not_found"),
        (
            lambda web: web.chat_postMessage(channel="#ml-releases", text="x", blocks=[{"type": "sectoin"}]),
            "invalid_blocks",
        ),
        (
            lambda web: web.chat_postMessage(
                channel="#ml-releases",
                text="x",
                blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}],
            ),
            "invalid_blocks",
        ),
    ],
)
def test_what_slack_refuses_is_refused_with_slacks_error_code(
    standin: slack.SlackStandIn, call: Any, error: str
) -> None:
    with pytest.raises(SlackApiError) as raised:
        call(client(standin))
    assert raised.value.response["error"] == error


def test_a_wrong_token_is_invalid_auth(standin: slack.SlackStandIn) -> None:
    with pytest.raises(SlackApiError) as raised:
        client(standin, "xoxb-wrong").auth_test()
    assert raised.value.response["error"] == "invalid_auth"


def test_injected_429_and_5xx_are_what_the_clients_retry_handlers_see(standin: slack.SlackStandIn) -> None:
    web = client(standin)
    web.retry_handlers = [
        RateLimitErrorRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=2),
    ]
    standin.fail_next(1, status=429, retry_after=0)
    standin.fail_next(1, status=503)
    assert web.chat_postMessage(channel="#ml-releases", text="after two failures")["ok"]
    assert [c.status for c in standin.calls] == [429, 503, 200]
    standin.fail_next(1, status=500)
    with pytest.raises(SlackApiError):
        client(standin).chat_postMessage(channel="#ml-releases", text="no retry handler")


class Receiver:
    """An interaction endpoint that keeps what it was sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/interactions"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()


def test_pressing_a_button_sends_slacks_signed_block_actions_payload(standin: slack.SlackStandIn) -> None:
    posted = client(standin).chat_postMessage(channel="#ml-releases", text="approval", blocks=BUTTONS)
    receiver = Receiver()
    try:
        status, _ = standin.press_button(
            receiver.url, channel="ml-releases", ts=posted["ts"], action_id="approve", user="U0ADA"
        )
        stale, _ = standin.press_button(
            receiver.url,
            channel="ml-releases",
            ts=posted["ts"],
            action_id="reject",
            user="U0ADA",
            timestamp=1,
            secret="forged",
        )
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    assert (status, stale) == (200, 200)
    (headers, body), (forged_headers, forged_body) = receiver.received
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(body, headers["x-slack-request-timestamp"], headers["x-slack-signature"])
    assert not verifier.is_valid(
        forged_body, forged_headers["x-slack-request-timestamp"], forged_headers["x-slack-signature"]
    )
    payload = json.loads(urllib.parse.parse_qs(body.decode())["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U0ADA"
    assert payload["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": "C0RELEASES",
        "is_ephemeral": False,
    }
    assert [(a["action_id"], a["value"], a["block_id"]) for a in payload["actions"]] == [
        ("approve", "s3", "approval")
    ]
