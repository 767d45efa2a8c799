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

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import itertools
import json
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
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
    metadata: dict[str, Any] | None = None

    def as_slack(self, *, with_metadata: bool = False) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text, "blocks": self.blocks}
        if self.thread_ts is not None:
            message["thread_ts"] = self.thread_ts
        if with_metadata and self.metadata is not None:
            message["metadata"] = self.metadata
        return message


@dataclasses.dataclass
class _Failure:
    status: int
    retry_after: int | None


class SlackStandIn:
    def __init__(
        self,
        *,
        token: str,
        signing_secret: str,
        channels: dict[str, str],
        app_token: str | None = None,
        usergroups: dict[str, list[str]] | None = None,
    ) -> None:
        """`channels`: name (without #) → channel ID. Messages may name either. `app_token` (xapp-…)
        opens Socket Mode connections; `usergroups`: user-group ID → member user IDs."""
        self.token = token
        self.signing_secret = signing_secret
        self.app_token = app_token
        self.channels = dict(channels)
        self.usergroups = dict(usergroups or {})
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], Message] = {}  # (channel ID, ts)
        self.responses: list[dict[str, Any]] = []  # what was posted to a press's response_url
        self.acks: set[str] = set()  # Socket Mode envelope IDs the app acknowledged
        self._sockets: list[_Socket] = []
        self._failures: list[_Failure] = []
        self._outage: _Failure | None = None
        self._hook: Callable[[Call], None] | None = None
        self._lock = threading.RLock()  # re-entrant: wait_until checks may read threads
        self._changed = threading.Condition(self._lock)
        self._clock = itertools.count(1)
        self._last_ts = 0.0
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
        with self._lock:
            sockets = list(self._sockets)
        for socket in sockets:
            socket.close()
        self._server.shutdown()
        self._server.server_close()

    # ---- what a test asks of it ----------------------------------------------------------------

    def fail_next(self, count: int, *, status: int = 503, retry_after: int | None = None) -> None:
        """The next `count` calls answer `status` (429 with `Retry-After: retry_after`)."""
        with self._lock:
            self._failures += [_Failure(status, retry_after) for _ in range(count)]

    def set_outage(self, status: int | None, *, retry_after: int | None = None) -> None:
        """Every call answers `status` until `set_outage(None)`: Slack down, or rate limiting all."""
        with self._lock:
            self._outage = _Failure(status, retry_after) if status is not None else None

    def after_answering(self, hook: Callable[[Call], None] | None) -> None:
        """Call `hook` with each call once it is done but before the answer is sent: a test can kill
        the caller in the instant after Slack acted and before the caller learnt it."""
        self._hook = hook

    def wait_until(self, check: Callable[[], bool], *, timeout: float) -> None:
        """Until `check()` holds, looked at after every call the stand-in answers."""
        with self._changed:
            if not self._changed.wait_for(check, timeout=timeout):
                raise TimeoutError(
                    f"the stand-in never saw {getattr(check, '__name__', 'it')} within {timeout}s"
                )

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The parent message and its replies, oldest first."""
        channel_id = self._channel_id(channel) or channel
        with self._lock:
            parent = self.messages[(channel_id, ts)]
            replies = [m for (c, _), m in self.messages.items() if c == channel_id and m.thread_ts == ts]
        return [parent, *sorted(replies, key=lambda m: float(m.ts))]

    def render_thread(self, channel: str, ts: str) -> str:
        """The thread as a person would read it, in plain text: what Slack shows is the blocks (the
        text is only the fallback for notifications), with section fields side by side."""
        lines = []
        for index, message in enumerate(self.thread(channel, ts)):
            shown = [_block_text(block) for block in message.blocks] if message.blocks else [message.text]
            shown_lines = [line for text in shown for line in text.splitlines() if line.strip()]
            first, indent = ("", "  ") if index == 0 else ("  ↳ ", "    ")
            lines += [(first if n == 0 else indent) + line for n, line in enumerate(shown_lines)]
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
            failure = self._failures.pop(0) if self._failures else self._outage
        if failure is not None:
            extra = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            body = {"ok": False, "error": "ratelimited" if failure.status == 429 else "service_unavailable"}
            self._record(method, payload, failure.status, body)
            return failure.status, extra, body
        wanted = self.app_token if method == "apps.connections.open" else self.token
        if headers.get("authorization") != f"Bearer {wanted}":
            body = {"ok": False, "error": "not_authed" if "authorization" not in headers else "invalid_auth"}
            return self._ok(method, payload, body)
        handler: Callable[[dict[str, Any]], dict[str, Any]] | None = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "conversations.list": self._list_channels,
            "usergroups.users.list": self._usergroup_members,
            "apps.connections.open": self._open_connection,
        }.get(method)
        if handler is None:
            return self._ok(method, payload, {"ok": False, "error": "unknown_method"})
        return self._ok(method, payload, handler(payload))

    def _ok(
        self, method: str, payload: dict[str, Any], body: dict[str, Any]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        call = self._record(method, payload, 200, body)
        if self._hook is not None:
            self._hook(call)
            with self._changed:
                self._changed.notify_all()  # what the hook did may be what a test waits for
        return 200, {}, body

    def _record(self, method: str, payload: dict[str, Any], status: int, body: dict[str, Any]) -> Call:
        call = Call(method, payload, status, body)
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        return call

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
            # Like Slack's: the posting time in microseconds, unique in the channel.
            self._last_ts = max(time.time(), self._last_ts + 1e-6)
            ts = f"{self._last_ts:.6f}"
            message = Message(
                channel_id,
                ts,
                str(payload.get("text", "")),
                list(payload.get("blocks") or []),
                str(thread_ts) if thread_ts is not None else None,
                metadata=_metadata(payload.get("metadata")),
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

    def _history(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages newest first, from `oldest` on (replies stay in their threads)."""
        channel_id = str(payload.get("channel", ""))
        if channel_id not in self.channels.values():
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(payload.get("oldest") or 0)
        with_metadata = _flag(payload.get("include_all_metadata"))
        with self._lock:
            found = [
                m
                for (c, _), m in self.messages.items()
                if c == channel_id and m.thread_ts is None and float(m.ts) >= oldest
            ]
        found.sort(key=lambda m: float(m.ts), reverse=True)
        limit = int(payload.get("limit") or 100)
        messages = [m.as_slack(with_metadata=with_metadata) for m in found[:limit]]
        return {"ok": True, "messages": messages, "has_more": len(found) > limit}

    def _replies(self, payload: dict[str, Any]) -> dict[str, Any]:
        channel_id = str(payload.get("channel", ""))
        if channel_id not in self.channels.values():
            return {"ok": False, "error": "channel_not_found"}
        ts = str(payload.get("ts", ""))
        if (channel_id, ts) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        with_metadata = _flag(payload.get("include_all_metadata"))
        messages = [m.as_slack(with_metadata=with_metadata) for m in self.thread(channel_id, ts)]
        return {"ok": True, "messages": messages, "has_more": False}

    def _list_channels(self, payload: dict[str, Any]) -> dict[str, Any]:
        channels = [{"id": cid, "name": name, "is_channel": True} for name, cid in self.channels.items()]
        return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}}

    def _usergroup_members(self, payload: dict[str, Any]) -> dict[str, Any]:
        group = str(payload.get("usergroup", ""))
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}

    def _open_connection(self, payload: dict[str, Any]) -> dict[str, Any]:
        port = self._server.server_address[1]
        return {"ok": True, "url": f"ws://127.0.0.1:{port}/link/?ticket={next(self._clock)}"}

    # ---- Socket Mode -------------------------------------------------------------------------------

    def press_over_socket(
        self,
        *,
        channel: str,
        ts: str,
        action_id: str,
        user: str,
        username: str = "ada",
        timeout: float = 10.0,
    ) -> str:
        """Press a button as Slack does for a Socket Mode app: an `interactive` envelope on the app's
        connection. Returns the envelope ID once the app acknowledged it."""
        body = self.block_actions_body(
            channel=channel, ts=ts, action_id=action_id, user=user, username=username
        )
        payload = json.loads(urllib.parse.parse_qs(body.decode())["payload"][0])
        envelope_id = f"envelope-{next(self._clock)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": "interactive",
            "accepts_response_payload": False,
            "payload": payload,
        }
        with self._changed:
            if not self._changed.wait_for(lambda: self._sockets, timeout=timeout):
                raise TimeoutError("no Socket Mode connection is open")
            socket = self._sockets[-1]
        socket.send_text(json.dumps(envelope))
        with self._changed:
            if not self._changed.wait_for(lambda: envelope_id in self.acks, timeout=timeout):
                raise TimeoutError(f"the app did not acknowledge {envelope_id}")
        return envelope_id

    def _serve_socket(self, handler: BaseHTTPRequestHandler) -> None:
        key = handler.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
        handler.send_response(101, "Switching Protocols")
        handler.send_header("Upgrade", "websocket")
        handler.send_header("Connection", "Upgrade")
        handler.send_header("Sec-WebSocket-Accept", accept)
        handler.end_headers()
        handler.wfile.flush()
        socket = _Socket(handler)
        with self._changed:
            self._sockets.append(socket)
            self._changed.notify_all()
        socket.send_text(
            json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0STANDIN"}})
        )
        try:
            for text in socket.texts():
                ack = json.loads(text)
                with self._changed:
                    if isinstance(ack, dict) and "envelope_id" in ack:
                        self.acks.add(str(ack["envelope_id"]))
                    self._changed.notify_all()
        finally:
            with self._changed:
                self._sockets.remove(socket)

    def record_response(self, path: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self.responses.append({"path": path, **payload})

    def _channel_id(self, channel: str) -> str | None:
        name = channel.removeprefix("#")
        if name in self.channels:
            return self.channels[name]
        return channel if channel in self.channels.values() else None

    def _channel_name(self, channel_id: str) -> str:
        return next((name for name, cid in self.channels.items() if cid == channel_id), channel_id)


WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class _Socket:
    """The server end of one WebSocket (RFC 6455): unmasked frames out, masked frames in."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self._handler = handler
        self._send = threading.Lock()
        self._open = True

    def send_text(self, text: str) -> None:
        self._frame(0x1, text.encode())

    def close(self) -> None:
        if self._open:
            self._open = False
            with contextlib.suppress(OSError):
                self._frame(0x8, b"")

    def texts(self) -> Iterator[str]:
        read = self._handler.rfile.read
        while self._open:
            try:
                head = read(2)
            except OSError:
                return
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", read(8))[0]
            mask = read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(read(length)))
            if opcode == 0x8:
                self.close()
                return
            if opcode == 0x9:
                self._frame(0xA, data)
            elif opcode == 0x1:
                yield data.decode()

    def _frame(self, opcode: int, data: bytes) -> None:
        size = len(data)
        if size < 126:
            header = bytes([0x80 | opcode, size])
        elif size < 65536:
            header = bytes([0x80 | opcode, 126]) + struct.pack(">H", size)
        else:
            header = bytes([0x80 | opcode, 127]) + struct.pack(">Q", size)
        with self._send:
            self._handler.wfile.write(header + data)
            self._handler.wfile.flush()


def _metadata(value: Any) -> dict[str, Any] | None:
    """Message metadata as Slack keeps it: event_type and event_payload (JSON, or a JSON string)."""
    if isinstance(value, str):
        value = json.loads(value) if value else None
    return value if isinstance(value, dict) else None


def _flag(value: Any) -> bool:
    return value in (True, "true", "1", 1)


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
    if block.get("fields"):
        # Slack lays fields out in two columns; one line reads the same.
        fields = [str(f.get("text", "")).replace("*", "").replace("\n", ": ", 1) for f in block["fields"]]
        return " · ".join(fields)
    parts = [str(item.get("text", "")) for item in _text_objects(block) if isinstance(item, dict)]
    return "\n".join(p for p in parts if p)


def _handler(standin: SlackStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path.startswith("/link/") and self.headers.get("Upgrade", "").lower() == "websocket":
                standin._serve_socket(self)
                self.close_connection = True
                return
            self.send_error(404)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.startswith("/api/response/"):
                standin.record_response(self.path, json.loads(raw or b"{}"))
                self._send(200, {}, {"ok": True})
                return
            method = self.path.removeprefix("/api/").split("?")[0]
            kind = self.headers.get("Content-Type", "")
            if kind.startswith("application/json"):
                payload = json.loads(raw or b"{}")
            else:
                payload = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = standin.answer(method, headers, payload)
            self._send(status, extra, body)

        def _send(self, status: int, extra: dict[str, str], body: dict[str, Any]) -> None:
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
