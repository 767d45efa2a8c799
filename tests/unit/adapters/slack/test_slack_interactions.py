"""Pressing Approve / Roll back in Slack: over the signed HTTP endpoint and over Socket Mode (slack-sdk's
real SocketModeClient), a press becomes an Approval only when it is signed, fresh, new, by an allowed
user, and for the gate that is waiting; everything else is refused or politely answered, creating
nothing."""

from __future__ import annotations

import itertools
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest
from slack_sdk import WebClient

from controller.adapters import kubeapi, labels
from controller.adapters.slack import slackconnection, slackinteractions, slackmessages
from controller.domain import actions
from controller.runtime import slackdaemon, webhooks
from controller.tooling import slackstandin as slack
from tests.cluster import harness

TOKEN, SECRET, APP_TOKEN = "xoxb-press-test", "press-signing-secret", "xapp-press-test"
RELEASES = "/apis/modelrelease.dev/v1alpha1/namespaces/default/modelreleases"
APPROVALS = "/apis/modelrelease.dev/v1alpha1/namespaces/default/approvals"
names = itertools.count()


@pytest.fixture(scope="module")
def standin() -> Iterator[slack.SlackStandIn]:
    with slack.SlackStandIn(
        token=TOKEN,
        signing_secret=SECRET,
        channels={"ml-releases": "C0RELEASES"},
        app_token=APP_TOKEN,
        usergroups={"S0SRE": ["U0GRACE"]},
    ) as running:
        yield running


@pytest.fixture(scope="module")
def endpoint(controller_api: kubeapi.KubeApi, standin: slack.SlackStandIn) -> Iterator[str]:
    client = WebClient(token=TOKEN, base_url=standin.api_url)
    interactions = slackinteractions.Interactions(controller_api, client, SECRET)
    server = webhooks.serve({slackdaemon.PATH: slackdaemon.route(interactions)}, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.server_address[1]}{slackdaemon.PATH}"
    server.shutdown()
    server.server_close()


class Gate:
    """A release waiting at step 3 of revision abc123, and its approval request posted in Slack."""

    def __init__(
        self,
        api: kubeapi.KubeApi,
        standin: slack.SlackStandIn,
        approvers: list[str] | None,
        *,
        quorum: int = 1,
    ) -> None:
        self.name = f"ranker-{next(names)}"
        notifications: dict[str, Any] = {"slack": {"channel": "#ml-releases"}}
        if approvers is not None:
            notifications["slack"]["approvers"] = approvers
        steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"approval": {"approvals": quorum}}]
        strategy = {"canary": {"steps": steps}}
        api.create(RELEASES, harness.release_body(self.name, notifications=notifications, strategy=strategy))
        self.api, self.standin = api, standin
        self.wait_at(3, "abc123")
        request = slackmessages.render_approval_request(
            "default",
            self.name,
            actions.RequestApproval(
                key="abc123.1/approval-3",
                step_index=3,
                revision="abc123",
                model_version="2",
                slack=True,
                channel="#ml-releases",
            ),
        )
        posted = WebClient(token=TOKEN, base_url=standin.api_url).chat_postMessage(
            channel="#ml-releases", text=request.text, blocks=request.blocks
        )
        self.ts = str(posted["ts"])

    def wait_at(self, step: int, revision: str, phase: str = "AwaitingApproval") -> None:
        status = {"phase": phase, "revision": revision, "currentStepIndex": step, "attempt": 1}
        self.api.merge_patch(f"{RELEASES}/{self.name}/status", {"status": status})

    def press(
        self, url: str, action: str = "approve", user: str = "U0ADA", **signing: Any
    ) -> tuple[int, str]:
        return self.standin.press_button(
            url, channel="ml-releases", ts=self.ts, action_id=action, user=user, **signing
        )

    def approvals(self) -> list[dict[str, Any]]:
        return [a for a in self.api.get(APPROVALS)["items"] if a["spec"]["release"] == self.name]

    def buttons_left(self) -> bool:
        message = self.standin.messages[("C0RELEASES", self.ts)]
        return any(b["type"] == "actions" for b in message.blocks)


def test_a_signed_press_by_an_approver_creates_one_approval_and_takes_the_buttons_away(
    api: kubeapi.KubeApi, standin: slack.SlackStandIn, endpoint: str
) -> None:
    gate = Gate(api, standin, ["U0ADA"])
    status, text = gate.press(endpoint, "reject")
    assert (status, text.split(":")[0]) == (200, "Rolled back")
    [approval] = gate.approvals()
    assert approval["spec"] == {
        "release": gate.name,
        "revision": "abc123",
        "step": 3,
        "decision": "reject",
        "by": "ada (Slack U0ADA)",
        "identity": "slack:U0ADA",
        "reason": "rolled back from Slack",
    }
    assert approval["metadata"]["annotations"][labels.SLACK_MESSAGE] == f"C0RELEASES/{gate.ts}"
    assert not gate.buttons_left()


def test_short_of_a_quorum_the_buttons_stay_for_the_next_approver_and_go_when_it_is_met(
    api: kubeapi.KubeApi, standin: slack.SlackStandIn, endpoint: str
) -> None:
    gate = Gate(api, standin, ["U0ADA", "U0BOB"], quorum=2)
    assert gate.press(endpoint)[0] == HTTPStatus.OK
    assert gate.buttons_left()
    assert "(1 of 2)" in standin.messages[("C0RELEASES", gate.ts)].text
    assert gate.press(endpoint, user="U0BOB")[0] == HTTPStatus.OK
    assert not gate.buttons_left()
    assert sorted(a["spec"]["by"] for a in gate.approvals()) == ["ada (Slack U0ADA)", "ada (Slack U0BOB)"]


def test_one_slack_user_renamed_between_presses_is_one_voice_toward_a_quorum(
    api: kubeapi.KubeApi, standin: slack.SlackStandIn, endpoint: str
) -> None:
    gate = Gate(api, standin, ["U0ADA", "U0BOB"], quorum=2)
    assert gate.press(endpoint)[0] == HTTPStatus.OK
    renamed = standin.press_button(
        endpoint, channel="ml-releases", ts=gate.ts, action_id="approve", user="U0ADA", username="bob"
    )
    assert renamed[0] == HTTPStatus.OK
    assert gate.buttons_left(), "still one approver of two"
    assert "(1 of 2)" in standin.messages[("C0RELEASES", gate.ts)].text
    assert sorted(a["spec"]["identity"] for a in gate.approvals()) == ["slack:U0ADA", "slack:U0ADA"]


def test_members_of_an_allowed_user_group_may_approve_and_others_may_not(
    api: kubeapi.KubeApi, standin: slack.SlackStandIn, endpoint: str
) -> None:
    gate = Gate(api, standin, ["S0SRE"])
    assert gate.press(endpoint, user="U0MALLORY")[0] == HTTPStatus.FORBIDDEN
    assert gate.approvals() == []
    assert gate.press(endpoint, user="U0GRACE")[0] == HTTPStatus.OK
    assert [a["spec"]["by"] for a in gate.approvals()] == ["ada (Slack U0GRACE)"]


def test_without_approvers_on_the_release_the_namespace_list_decides_and_without_one_nobody_may(
    api: kubeapi.KubeApi, standin: slack.SlackStandIn, endpoint: str
) -> None:
    gate = Gate(api, standin, None)
    assert gate.press(endpoint)[0] == HTTPStatus.FORBIDDEN
    api.create(
        "/api/v1/namespaces/default/configmaps",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": slackinteractions.APPROVERS_CONFIGMAP},
            "data": {slackinteractions.APPROVERS_KEY: "U0BOB, U0ADA"},
        },
    )
    try:
        assert gate.press(endpoint)[0] == HTTPStatus.OK
    finally:
        api.delete(f"/api/v1/namespaces/default/configmaps/{slackinteractions.APPROVERS_CONFIGMAP}")
    assert len(gate.approvals()) == 1


@pytest.mark.parametrize(
    ("signing", "user", "status"),
    [
        ({"secret": "forged-secret"}, "U0ADA", HTTPStatus.UNAUTHORIZED),
        ({"timestamp": -400}, "U0ADA", HTTPStatus.UNAUTHORIZED),  # signed more than five minutes ago
        ({}, "U0MALLORY", HTTPStatus.FORBIDDEN),
    ],
)
def test_forged_expired_and_unknown_user_presses_are_refused_and_create_nothing(
    api: kubeapi.KubeApi,
    standin: slack.SlackStandIn,
    endpoint: str,
    signing: dict[str, Any],
    user: str,
    status: HTTPStatus,
) -> None:
    gate = Gate(api, standin, ["U0ADA"])
    if "timestamp" in signing:
        signing = {"timestamp": int(time.time()) + signing["timestamp"]}
    assert gate.press(endpoint, user=user, **signing)[0] == status
    assert gate.approvals() == []
    assert gate.buttons_left()


def test_a_replayed_press_is_refused_and_does_not_approve_twice(
    api: kubeapi.KubeApi, standin: slack.SlackStandIn, endpoint: str
) -> None:
    gate = Gate(api, standin, ["U0ADA"])
    body = standin.block_actions_body(
        channel="ml-releases", ts=gate.ts, action_id="approve", user="U0ADA", username="ada"
    )
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": slack.sign(SECRET, stamp, body),
    }
    answers = [post(endpoint, body, headers) for _ in range(2)]
    assert answers == [HTTPStatus.OK, HTTPStatus.FORBIDDEN]
    assert len(gate.approvals()) == 1


def test_a_button_for_a_gate_that_no_longer_waits_is_answered_politely_and_changes_nothing(
    api: kubeapi.KubeApi, standin: slack.SlackStandIn, endpoint: str
) -> None:
    gate = Gate(api, standin, ["U0ADA"])
    gate.wait_at(3, "def456")  # a newer revision now waits at the same step
    status, text = gate.press(endpoint)
    assert status == HTTPStatus.OK
    assert "no longer waits" in text
    assert gate.approvals() == []
    assert "no longer waits" in standin.responses[-1]["text"]
    assert standin.responses[-1]["response_type"] == "ephemeral"


def test_a_press_over_socket_mode_creates_the_approval_without_any_inbound_endpoint(
    api: kubeapi.KubeApi, controller_api: kubeapi.KubeApi, standin: slack.SlackStandIn
) -> None:
    gate = Gate(api, standin, ["U0ADA"])
    client = WebClient(token=TOKEN, base_url=standin.api_url)
    interactions = slackinteractions.Interactions(controller_api, client, signing_secret=None)
    socket = slackconnection.connect_socket_mode(interactions, APP_TOKEN, client)
    try:
        standin.press_over_socket(channel="ml-releases", ts=gate.ts, action_id="approve", user="U0ADA")
        # Answered after its acknowledgement: done when the pressed message has lost its buttons.
        standin.wait_until(lambda: not gate.buttons_left(), timeout=10)
    finally:
        socket.close()
    [approval] = gate.approvals()
    assert approval["spec"]["decision"] == "approve"


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code
