"""A Slack button press is believed only when Slack signed it within five minutes, it is one of our
buttons, and the user is allowed; the stand-in builds the press exactly as Slack sends it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http import HTTPStatus

import pytest
from slack_sdk import WebClient

from controller.adapters.slack import slackpress
from controller.resources import releasestatus
from controller.tooling import slackstandin as slack

TOKEN, SECRET = "xoxb-standin-token", "standin-signing-secret"
TARGET = slackpress.ButtonValue("ml-serving", "ranker", "a1b2c3d4e5", 3)


@pytest.fixture
def posted() -> Iterator[tuple[slack.SlackStandIn, str]]:
    buttons = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "ranker model 4: step 3 waits for approval"}},
        {
            "type": "actions",
            "block_id": "approval",
            "elements": [
                {
                    "type": "button",
                    "action_id": name,
                    "text": {"type": "plain_text", "text": label},
                    "value": value,
                }
                for name, label, value in (
                    ("approve", "Approve", TARGET.encode()),
                    ("reject", "Roll back", TARGET.encode()),
                    ("other", "Other", "not-ours"),
                )
            ],
        },
    ]
    with slack.SlackStandIn(token=TOKEN, signing_secret=SECRET, channels={"ml-releases": "C0REL"}) as standin:
        message = WebClient(token=TOKEN, base_url=standin.api_url).chat_postMessage(
            channel="#ml-releases", text="approval", blocks=buttons
        )
        yield standin, str(message["ts"])


def _press(
    standin: slack.SlackStandIn,
    ts: str,
    action: str = "approve",
    *,
    user: str = "U0ADA",
    age: int = 0,
    secret: str = SECRET,
    late: int = 0,
) -> slackpress.Press:
    body = standin.block_actions_body(
        channel="ml-releases", ts=ts, action_id=action, user=user, username="ada"
    )
    stamp = str(int(time.time()) - age)
    headers = {"x-slack-request-timestamp": stamp, "x-slack-signature": slack.sign(secret, stamp, body)}
    return slackpress.read_press(
        headers,
        body,
        signing_secret=SECRET,
        allowed=slackpress.allow_list({"U0ADA"}),
        clock=(lambda: time.time() + late) if late else None,
    )


def test_a_signed_press_by_an_allowed_user_names_the_release_revision_step_and_decision(
    posted: tuple[slack.SlackStandIn, str],
) -> None:
    standin, ts = posted
    press = _press(standin, ts)
    assert (press.target, press.decision, press.user, press.message_ts) == (
        TARGET,
        releasestatus.ApprovalDecision.APPROVE,
        "U0ADA",
        ts,
    )
    assert _press(standin, ts, "reject").decision == releasestatus.ApprovalDecision.REJECT


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"secret": "forged-secret"}, HTTPStatus.UNAUTHORIZED),
        ({"age": 301}, HTTPStatus.UNAUTHORIZED),  # outside the five-minute window
        ({"late": 400}, HTTPStatus.UNAUTHORIZED),  # received long after it was signed
        ({"user": "U0MALLORY"}, HTTPStatus.FORBIDDEN),
        ({"action": "other"}, HTTPStatus.BAD_REQUEST),
    ],
)
def test_forged_expired_unknown_and_foreign_presses_are_refused(
    posted: tuple[slack.SlackStandIn, str], change: dict[str, object], status: HTTPStatus
) -> None:
    standin, ts = posted
    with pytest.raises(slackpress.PressRefusedError) as refused:
        _press(standin, ts, **change)  # type: ignore[arg-type]
    assert refused.value.status == status


def test_an_unsigned_request_is_refused_before_its_body_is_read() -> None:
    with pytest.raises(slackpress.PressRefusedError) as refused:
        slackpress.read_press({}, b"payload=not-json", signing_secret=SECRET, allowed=lambda *_: True)
    assert refused.value.status == HTTPStatus.UNAUTHORIZED


def test_a_replayed_press_names_the_same_approval_so_it_cannot_be_created_twice(
    posted: tuple[slack.SlackStandIn, str],
) -> None:
    standin, ts = posted
    body = standin.block_actions_body(
        channel="ml-releases", ts=ts, action_id="approve", user="U0ADA", username="ada"
    )
    stamp = str(int(time.time()))
    headers = {"x-slack-request-timestamp": stamp, "x-slack-signature": slack.sign(SECRET, stamp, body)}
    allowed = slackpress.allow_list({"U0ADA"})
    first = slackpress.read_press(headers, body, signing_secret=SECRET, allowed=allowed)
    again = slackpress.read_press(headers, body, signing_secret=SECRET, allowed=allowed)
    assert first.approval_name == again.approval_name
    assert first.approval_name != _press(standin, ts).approval_name  # another press, another trigger
