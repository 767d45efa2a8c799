"""Reading a Slack button press: what it asks, and whether to believe it.

Everything is checked on the raw body before anything is parsed: Slack's signature
(`X-Slack-Signature`, HMAC-SHA256 under the app's signing secret) and the request timestamp within
five minutes (slack-sdk's `SignatureVerifier`). Then the payload must be a `block_actions` press of
one of our buttons, whose value names the release, revision and step it was posted for, and the
user must be on the allow-list. A replay within the window is caught where it matters: the
Approval's name is derived from the press's `trigger_id`, so creating it twice is a conflict.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import urllib.parse
from collections.abc import Callable, Collection
from http import HTTPStatus
from typing import Any

from slack_sdk.signature import Clock, SignatureVerifier

from controller.resources import releasestatus

ACTIONS = {"approve": releasestatus.ApprovalDecision.APPROVE, "reject": releasestatus.ApprovalDecision.REJECT}


@dataclasses.dataclass(frozen=True)
class ButtonValue:
    """What a button was posted for, carried in its `value`: `namespace/release/revision/step`."""

    namespace: str
    release: str
    revision: str
    step: int

    def encode(self) -> str:
        return f"{self.namespace}/{self.release}/{self.revision}/{self.step}"

    @classmethod
    def decode(cls, value: str) -> ButtonValue:
        parts = value.split("/")
        if len(parts) != 4 or not all(parts) or not parts[3].isdigit():
            raise ValueError(f"not a modelrelease button value: {value!r}")
        return cls(parts[0], parts[1], parts[2], int(parts[3]))


@dataclasses.dataclass(frozen=True)
class Press:
    target: ButtonValue
    decision: releasestatus.ApprovalDecision
    user: str
    username: str
    trigger: str
    channel: str
    message_ts: str
    message_text: str = ""
    message_blocks: tuple[dict[str, Any], ...] = ()
    response_url: str = ""

    @property
    def approval_name(self) -> str:
        """The Approval this press creates: the same press (a replay) names the same object."""
        digest = hashlib.sha256(self.trigger.encode()).hexdigest()[:10]
        return f"{self.target.release[:200]}-slack-{digest}"


class PressRefusedError(Exception):
    """The press is not believed (401), not allowed (403) or not ours (400); the message says why."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


FRESHNESS = 300  # seconds: Slack's own rule for X-Slack-Request-Timestamp


def check_signed_headers(headers: dict[str, str], now: float) -> None:
    """Refuse (401, or 400 when malformed) a request without Slack's signature headers, or stamped
    outside five minutes — before its body is read, so an unsigned request costs nothing."""
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if not timestamp or not signature:
        raise PressRefusedError(
            HTTPStatus.UNAUTHORIZED, "not signed by Slack (no X-Slack-Signature or timestamp)"
        )
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise PressRefusedError(HTTPStatus.BAD_REQUEST, "X-Slack-Request-Timestamp is not a Unix time")
    if not signature.startswith("v0=") or len(signature) != 67:
        raise PressRefusedError(HTTPStatus.UNAUTHORIZED, "X-Slack-Signature is not a v0 signature")
    if abs(now - int(timestamp)) > FRESHNESS:
        raise PressRefusedError(HTTPStatus.UNAUTHORIZED, "a timestamp outside five minutes")


def read_press(
    headers: dict[str, str],
    body: bytes,
    *,
    signing_secret: str,
    allowed: Callable[[str, ButtonValue], bool],
    clock: Callable[[], float] | None = None,
) -> Press:
    """The press in `body`, or PressRefusedError. `headers` in lower case; `allowed(user, target)` is
    the allow-list."""
    verifier = (
        SignatureVerifier(signing_secret, clock=_Clock(clock)) if clock else SignatureVerifier(signing_secret)
    )
    check_signed_headers(headers, clock() if clock else time.time())
    timestamp, signature = headers["x-slack-request-timestamp"], headers["x-slack-signature"]
    try:
        body.decode("utf-8")  # slack-sdk's verifier decodes it and would raise
    except UnicodeDecodeError:
        raise PressRefusedError(HTTPStatus.BAD_REQUEST, "the body is not UTF-8 text") from None
    if not verifier.is_valid_request(
        body, {"x-slack-request-timestamp": timestamp, "x-slack-signature": signature}
    ):
        raise PressRefusedError(HTTPStatus.UNAUTHORIZED, "bad signature, or a timestamp outside five minutes")
    try:
        payload = json.loads(urllib.parse.parse_qs(body.decode("utf-8"))["payload"][0])
    except (KeyError, IndexError, ValueError) as error:  # UnicodeDecodeError is a ValueError
        raise PressRefusedError(HTTPStatus.BAD_REQUEST, f"not an interaction payload: {error}") from None
    return read_payload(payload, allowed)


def read_payload(payload: Any, allowed: Callable[[str, ButtonValue], bool]) -> Press:
    """The press in an interaction payload already authenticated (signed, or Socket Mode's own
    connection), or PressRefusedError."""
    try:
        if payload.get("type") != "block_actions":
            raise ValueError(f"not a button press: {payload.get('type')!r}")
        action = payload["actions"][0]
        message = payload.get("message") or {}
        press = Press(
            target=ButtonValue.decode(str(action["value"])),
            decision=ACTIONS[str(action["action_id"])],
            user=str(payload["user"]["id"]),
            username=str(payload["user"].get("username") or payload["user"].get("name") or ""),
            trigger=str(payload["trigger_id"]),
            channel=str(payload["container"]["channel_id"]),
            message_ts=str(payload["container"]["message_ts"]),
            message_text=str(message.get("text", "")),
            message_blocks=tuple(message.get("blocks") or ()),
            response_url=str(payload.get("response_url") or ""),
        )
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as error:
        raise PressRefusedError(
            HTTPStatus.BAD_REQUEST, f"not a press of a modelrelease button: {error}"
        ) from None
    if not allowed(press.user, press.target):
        raise PressRefusedError(
            HTTPStatus.FORBIDDEN,
            f"{press.username or press.user} may not approve {press.target.namespace}/{press.target.release}",
        )
    return press


def allow_list(users: Collection[str]) -> Callable[[str, ButtonValue], bool]:
    """An allow-list of Slack user IDs (user groups need Slack's usergroups.users.list: not yet)."""
    members = frozenset(users)
    return lambda user, _target: user in members


class _Clock(Clock):
    """slack-sdk's clock over a plain function (tests move time without sleeping)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()
