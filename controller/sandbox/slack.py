"""A Slack stand-in on 127.0.0.1: the Web API methods modelrelease uses, checked as Slack checks them.

slack-sdk's real `WebClient` talks to it (`base_url=standin.api_url`). It answers `auth.test`,
`chat.postMessage` and `chat.update` with Slack's response shapes and error codes, keeps every
channel's messages and threads, records each call, and can be told to fail the next calls with a
429 (and `Retry-After`) or a 5xx. `press_button` plays a person pressing a button of a posted
message: it sends a `block_actions` payload shaped like Slack's, form-encoded and signed with the
app's signing secret (`X-Slack-Signature`, `X-Slack-Request-Timestamp`), to the interaction URL.

What it does not check: rate limits by tier (only injected 429s), message formatting (mrkdwn is
stored as sent), permalinks, files, and any method not listed here (`unknown_method`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BLOCK_TYPES = {"section", "header", "context", "divider", "actions", "rich_text"}
TEXT_TYPES = {"mrkdwn", "plain_text"}
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_MESSAGE_TEXT = 40000


@dataclasses.dataclass
class Call:
    method: str
    payload: dict[str, Any]
    status: int
    response: dict[str, Any]


@dataclasses.dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    edits: int = 0

    def as_slack(self) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text, "blocks": self.blocks}
        if self.thread_ts is not None:
            message["thread_ts"] = self.thread_ts
        return message


@dataclasses.dataclass
class _Failure:
    status: int
    retry_after: int | None


class SlackStandIn:
    def __init__(self, *, token: str, signing_secret: str, channels: dict[str, str]) -> None:
        """`channels`: name (without #) → channel ID. Messages may name either."""
        self.token = token
        self.signing_secret = signing_secret
        self.channels = dict(channels)
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], Message] = {}  # (channel ID, ts)
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._clock = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.api_url = f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    def __enter__(self) -> SlackStandIn:
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="slack-standin",
            daemon=True,
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ---- what a test asks of it ----------------------------------------------------------------

    def fail_next(self, count: int, *, status: int = 503, retry_after: int | None = None) -> None:
        """The next `count` calls answer `status` (429 with `Retry-After: retry_after`)."""
        with self._lock:
            self._failures += [_Failure(status, retry_after) for _ in range(count)]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The parent message and its replies, oldest first."""
        channel_id = self._channel_id(channel) or channel
        with self._lock:
            parent = self.messages[(channel_id, ts)]
            replies = [m for (c, _), m in self.messages.items() if c == channel_id and m.thread_ts == ts]
        return [parent, *sorted(replies, key=lambda m: float(m.ts))]

    def render_thread(self, channel: str, ts: str) -> str:
        """The thread as a person would read it, in plain text."""
        lines = []
        for index, message in enumerate(self.thread(channel, ts)):
            lines.append(("" if index == 0 else "  ↳ ") + message.text)
            for block in message.blocks:
                text = _block_text(block)
                if text:
                    lines += [("  " if index == 0 else "      ") + line for line in text.splitlines()]
        return "\n".join(lines)

    def press_button(
        self,
        url: str,
        *,
        channel: str,
        ts: str,
        action_id: str,
        user: str,
        username: str = "ada",
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> tuple[int, str]:
        """Press the button `action_id` of message `ts` as `user`: Slack's signed `block_actions` POST to
        `url`. `timestamp` and `secret` stand in for a stale or forged request. (HTTP status, body)."""
        body = self.block_actions_body(
            channel=channel, ts=ts, action_id=action_id, user=user, username=username
        )
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": sign(secret or self.signing_secret, stamp, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as refused:
            return refused.code, refused.read().decode()

    def block_actions_body(self, *, channel: str, ts: str, action_id: str, user: str, username: str) -> bytes:
        """The form body Slack sends when a button is pressed (`payload=<JSON>`)."""
        channel_id = self._channel_id(channel) or channel
        with self._lock:
            message = self.messages[(channel_id, ts)]
        found = next(
            (
                (block, element)
                for block in message.blocks
                if block.get("type") == "actions"
                for element in block.get("elements", [])
                if element.get("action_id") == action_id
            ),
            None,
        )
        if found is None:
            raise KeyError(f"message {ts} has no button {action_id!r}")
        block, button = found
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": username, "name": username, "team_id": "T0STANDIN"},
            "api_app_id": "A0STANDIN",
            "token": "deprecated-verification-token",
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel_id,
                "is_ephemeral": False,
            },
            "trigger_id": f"{next(self._clock)}.trigger",
            "team": {"id": "T0STANDIN", "domain": "standin"},
            "channel": {"id": channel_id, "name": self._channel_name(channel_id)},
            "message": message.as_slack(),
            "response_url": f"{self.api_url}response/{channel_id}/{ts}",
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": block.get("block_id", ""),
                    "text": button.get("text", {}),
                    "value": button.get("value", ""),
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()

    # ---- the Web API -----------------------------------------------------------------------------

    def answer(
        self, method: str, headers: dict[str, str], payload: dict[str, Any]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            extra = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            body = {"ok": False, "error": "ratelimited" if failure.status == 429 else "service_unavailable"}
            self._record(method, payload, failure.status, body)
            return failure.status, extra, body
        if headers.get("authorization") != f"Bearer {self.token}":
            body = {"ok": False, "error": "not_authed" if "authorization" not in headers else "invalid_auth"}
            return self._ok(method, payload, body)
        handler: Callable[[dict[str, Any]], dict[str, Any]] | None = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
        }.get(method)
        if handler is None:
            return self._ok(method, payload, {"ok": False, "error": "unknown_method"})
        return self._ok(method, payload, handler(payload))

    def _ok(
        self, method: str, payload: dict[str, Any], body: dict[str, Any]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        self._record(method, payload, 200, body)
        return 200, {}, body

    def _record(self, method: str, payload: dict[str, Any], status: int, body: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(Call(method, payload, status, body))

    def _auth_test(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://standin.slack.com/",
            "team": "Stand-in",
            "user": "modelrelease",
            "team_id": "T0STANDIN",
            "user_id": "U0BOT",
            "bot_id": "B0BOT",
        }

    def _refusal(self, payload: dict[str, Any]) -> str | None:
        """Slack's error code for a message to an unknown channel or with content it refuses."""
        if self._channel_id(str(payload.get("channel", ""))) is None:
            return "channel_not_found"
        return _check_content(payload)

    def _post_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        refusal = self._refusal(payload)
        if refusal is not None:
            return {"ok": False, "error": refusal}
        channel_id = self._channel_id(str(payload["channel"]))
        assert channel_id is not None
        thread_ts = payload.get("thread_ts")
        with self._lock:
            if thread_ts is not None and (channel_id, str(thread_ts)) not in self.messages:
                return {"ok": False, "error": "thread_not_found"}
            ts = f"{1700000000 + next(self._clock)}.000100"
            message = Message(
                channel_id,
                ts,
                str(payload.get("text", "")),
                list(payload.get("blocks") or []),
                str(thread_ts) if thread_ts is not None else None,
            )
            self.messages[(channel_id, ts)] = message
        response: dict[str, Any] = {
            "ok": True,
            "channel": channel_id,
            "ts": ts,
            "message": message.as_slack(),
        }
        if not payload.get("text"):
            response["response_metadata"] = {"warnings": ["missing_text"]}
        return response

    def _update(self, payload: dict[str, Any]) -> dict[str, Any]:
        refusal = self._refusal(payload)
        if refusal is not None:
            return {"ok": False, "error": refusal}
        channel_id = self._channel_id(str(payload["channel"]))
        assert channel_id is not None
        key = (channel_id, str(payload.get("ts", "")))
        with self._lock:
            message = self.messages.get(key)
            if message is None:
                return {"ok": False, "error": "message_not_found"}
            message.text = str(payload.get("text", message.text))
            message.blocks = list(payload.get("blocks") or message.blocks)
            message.edits += 1
        return {"ok": True, "channel": channel_id, "ts": message.ts, "text": message.text}

    def _channel_id(self, channel: str) -> str | None:
        name = channel.removeprefix("#")
        if name in self.channels:
            return self.channels[name]
        return channel if channel in self.channels.values() else None

    def _channel_name(self, channel_id: str) -> str:
        return next((name for name, cid in self.channels.items() if cid == channel_id), channel_id)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _check_content(payload: dict[str, Any]) -> str | None:
    """Slack's error code for a message it would refuse, else None."""
    text, blocks = payload.get("text"), payload.get("blocks")
    if not text and not blocks:
        return "no_text"
    if text is not None and len(str(text)) > MAX_MESSAGE_TEXT:
        return "msg_too_long"
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            return "invalid_blocks"
        limit = MAX_HEADER_TEXT if block["type"] == "header" else MAX_SECTION_TEXT
        for item in _text_objects(block):
            if not isinstance(item, dict) or item.get("type") not in TEXT_TYPES:
                return "invalid_blocks"
            if not isinstance(item.get("text"), str) or not item["text"] or len(item["text"]) > limit:
                return "invalid_blocks"
        if block["type"] == "actions":
            for element in block.get("elements") or []:
                if element.get("type") != "button" or not element.get("action_id"):
                    return "invalid_blocks"
    return None


def _text_objects(block: dict[str, Any]) -> list[Any]:
    found = []
    if "text" in block:
        found.append(block["text"])
    found += list(block.get("fields") or [])
    if block.get("type") == "context":
        found += [
            e for e in block.get("elements") or [] if isinstance(e, dict) and e.get("type") in TEXT_TYPES
        ]
    if block.get("type") == "actions":
        found += [e.get("text") for e in block.get("elements") or [] if isinstance(e, dict)]
    return found


def _block_text(block: dict[str, Any]) -> str:
    if block.get("type") == "actions":
        labels = [str((e.get("text") or {}).get("text", "")) for e in block.get("elements") or []]
        return "  ".join(f"[{label}]" for label in labels)
    parts = [str(item.get("text", "")) for item in _text_objects(block) if isinstance(item, dict)]
    return "\n".join(p for p in parts if p)


def _handler(standin: SlackStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            method = self.path.removeprefix("/api/").split("?")[0]
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            kind = self.headers.get("Content-Type", "")
            if kind.startswith("application/json"):
                payload = json.loads(raw or b"{}")
            else:
                payload = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = standin.answer(method, headers, payload)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
