"""Slack end to end: the real controller process talks to the Slack stand-in through slack-sdk, while
it rolls releases out on the real control plane — killed mid-delivery, with Slack down, approved by
pressing buttons over the signed endpoint and over Socket Mode."""

from __future__ import annotations

import json
import pathlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from controller.tooling import slackstandin as slack
from tests.cluster import harness

TOKEN, SECRET, APP_TOKEN = "xoxb-e2e-bot-token-0451", "e2e-signing-secret-8812", "xapp-e2e-app-token-3317"
CHANNEL_ID = "C0RELEASES"
GATED = [
    {"setWeight": 25},
    {"analysis": {"template": "quality", "maxDuration": "10m"}},
    {"approval": {}},
    {"setWeight": 50},
]


@pytest.fixture
def standin() -> Iterator[slack.SlackStandIn]:
    with slack.SlackStandIn(
        token=TOKEN, signing_secret=SECRET, channels={"ml-releases": CHANNEL_ID}, app_token=APP_TOKEN
    ) as running:
        yield running


def slack_controller(
    world: harness.World, tmp_path: pathlib.Path, standin: slack.SlackStandIn, *, port: int | None = None
) -> harness.Controller:
    """The controller process with Slack: the endpoint on `port`, else Socket Mode."""
    flags = slack_flags(tmp_path, standin, port=port)
    return harness.Controller(world, tmp_path / "controller.log", *flags).start()


def slack_flags(tmp_path: pathlib.Path, standin: slack.SlackStandIn, *, port: int | None = None) -> list[str]:
    files = {}
    for name, value in (("token", TOKEN), ("signing-secret", SECRET), ("app-token", APP_TOKEN)):
        files[name] = tmp_path / name
        files[name].write_text(value + "\n")
    flags = [
        "--slack-token-file",
        str(files["token"]),
        "--slack-signing-secret-file",
        str(files["signing-secret"]),
        "--slack-api-url",
        standin.api_url,
        "--slack-retry-max",
        "2",
    ]
    if port is not None:
        flags += ["--webhook-port", str(port), "--webhook-host", "127.0.0.1"]
    else:
        flags += ["--slack-app-token-file", str(files["app-token"])]
    return flags


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def slack_release(name: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return harness.release_body(
        name,
        "1",
        notifications={"slack": {"channel": "#ml-releases", "approvers": ["U0ADA"]}},
        strategy={"canary": {"steps": steps, "scaleDownDelay": "0s"}},
    )


def posts(standin: slack.SlackStandIn) -> list[slack.Call]:
    return [c for c in standin.calls if c.method == "chat.postMessage" and c.status == 200]


def key_of(call: slack.Call) -> str:
    metadata = call.payload.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return str(metadata["event_payload"]["key"])


def thread_of(standin: slack.SlackStandIn, version: str) -> list[slack.Message]:
    """The thread of the rollout whose parent names `version` as the new model."""
    parents = [m for m in standin.messages.values() if m.thread_ts is None and f"→ {version}" in m.text]
    assert len(parents) == 1, [m.text for m in parents]
    return standin.thread(CHANNEL_ID, parents[0].ts)


def has_reply(standin: slack.SlackStandIn, version: str, words: str) -> bool:
    try:
        return any(words in m.text for m in thread_of(standin, version)[1:])
    except (AssertionError, KeyError):
        return False


def assert_no_secret_anywhere(world: harness.World, log: pathlib.Path) -> None:
    text = log.read_text(errors="replace")
    stored = json.dumps(world.everything())
    for secret in (TOKEN, SECRET, APP_TOKEN):
        assert secret not in text, "a Slack secret is in the controller's log"
        assert secret not in stored, "a Slack secret was written to the cluster"


def test_a_rollout_is_one_thread_in_slack_said_once_across_a_sigkill_and_approved_by_a_signed_button(
    world: harness.World, tmp_path: pathlib.Path, standin: slack.SlackStandIn
) -> None:
    port = free_port()
    controller = slack_controller(world, tmp_path, standin, port=port)
    try:
        world.script_analysis({"2": "Pass"})
        world.create(slack_release("ranker", GATED))
        world.wait_for_phase("ranker", "Succeeded")
        killed: list[slack.Call] = []

        def kill_once_the_request_is_posted(call: slack.Call) -> None:
            # Slack has taken the approval request; the controller never hears its ts.
            if (
                not killed
                and call.method == "chat.postMessage"
                and "waits for approval" in call.payload["text"]
            ):
                controller.kill()
                killed.append(call)

        standin.after_answering(kill_once_the_request_is_posted)
        world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
        standin.wait_until(lambda: bool(killed), timeout=60)
        standin.after_answering(None)
        controller.start()
        waiting = world.wait_for_phase("ranker", "AwaitingApproval")
        # The restarted controller looks in the thread for the request it may have posted (it had).
        standin.wait_until(
            lambda: any(c.method == "conversations.replies" for c in standin.calls), timeout=30
        )
        request = next(m for m in thread_of(standin, "2") if "waits for approval" in m.text)
        status, _ = standin.press_button(
            f"http://127.0.0.1:{port}/slack/interactions",
            channel="ml-releases",
            ts=request.ts,
            action_id="approve",
            user="U0ADA",
        )
        assert status == 200
        done = world.wait_for_phase("ranker", "Succeeded")
        standin.wait_until(lambda: has_reply(standin, "2", "promoted"), timeout=30)
        final = world.wait_for_status(
            "ranker",
            lambda s: (s.get("slack") or {}).get("threadTs") == thread_of(standin, "2")[0].ts,
            what="status names the thread",
        )
    finally:
        controller.stop()

    keys = [key_of(c) for c in posts(standin)]
    assert len(keys) == len(set(keys)), f"posted twice: {sorted(k for k in keys if keys.count(k) > 1)}"
    thread = thread_of(standin, "2")
    assert [m.text.split(" ")[0] for m in thread[1:]] == [
        ":bar_chart:",  # the analysis verdict, with its metric table
        ":raised_hand:",  # the approval request, found in Slack after the kill rather than posted again
        ":ballot_box_with_check:",  # approved, by whom
        ":rocket:",  # promoted
    ]
    assert "approved by ada (Slack U0ADA)" in thread[3].text
    assert not any(b["type"] == "actions" for b in thread[2].blocks), "the buttons stayed after the decision"
    assert "Succeeded" in thread[0].text or "Promoted" in thread[0].text
    assert thread[0].edits >= 1
    assert [a["by"] for a in done["approvals"]] == ["ada (Slack U0ADA)"]
    assert waiting["currentStepIndex"] == 2
    assert next(c for c in final["conditions"] if c["type"] == "NotificationsDelivered")["status"] == "True"
    assert_no_secret_anywhere(world, tmp_path / "controller.log")


def test_slack_down_holds_no_rollout_back_and_the_messages_arrive_when_it_recovers(
    world: harness.World, tmp_path: pathlib.Path, standin: slack.SlackStandIn
) -> None:
    steps = [
        {"setWeight": 25},
        {"analysis": {"template": "quality", "maxDuration": "10m"}},
        {"setWeight": 50},
    ]
    controller = slack_controller(world, tmp_path, standin)
    try:
        world.script_analysis({"2": "Pass"})
        world.create(slack_release("ranker", steps))
        world.wait_for_phase("ranker", "Succeeded")
        standin.wait_until(
            lambda: has_reply(standin, "1", "deployed") or len(posts(standin)) >= 2, timeout=30
        )
        standin.set_outage(503)
        world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
        down = world.wait_for_status(
            "ranker",
            lambda s: (
                s.get("stableModelVersion") == "2"
                and any(
                    c["type"] == "NotificationsDelivered" and c["status"] == "False" for c in s["conditions"]
                )
            ),
            what="promoted while Slack is down, and status says messages wait",
        )
        world.wait_until(
            lambda: any(e["reason"] == "SlackUndelivered" for e in world.events()),
            timeout=30,
            what="a SlackUndelivered Warning Event",
        )
        standin.set_outage(None)
        standin.wait_until(lambda: has_reply(standin, "2", "promoted"), timeout=30)
        world.wait_for_status(
            "ranker",
            lambda s: any(
                c["type"] == "NotificationsDelivered" and c["status"] == "True" for c in s["conditions"]
            ),
            what="delivered again",
        )
    finally:
        controller.stop()
    condition = next(c for c in down["conditions"] if c["type"] == "NotificationsDelivered")
    assert "service_unavailable" in condition["message"]
    thread = thread_of(standin, "2")
    assert [m.text.split(" ")[0] for m in thread[1:]] == [":bar_chart:", ":rocket:"]
    assert "Succeeded" in thread[0].text or "Promoted" in thread[0].text
    keys = [key_of(c) for c in posts(standin)]
    assert len(keys) == len(set(keys))
    assert_no_secret_anywhere(world, tmp_path / "controller.log")


def test_an_approval_pressed_over_socket_mode_lets_the_gate_pass(
    world: harness.World, tmp_path: pathlib.Path, standin: slack.SlackStandIn
) -> None:
    controller = slack_controller(world, tmp_path, standin)
    try:
        world.script_analysis({"2": "Pass"})
        world.create(slack_release("ranker", GATED))
        world.wait_for_phase("ranker", "Succeeded")
        world.patch_release("ranker", {"spec": {"model": {"version": "2"}}})
        world.wait_for_phase("ranker", "AwaitingApproval")
        standin.wait_until(lambda: has_reply(standin, "2", "waits for approval"), timeout=30)
        request = next(m for m in thread_of(standin, "2") if "waits for approval" in m.text)
        standin.press_over_socket(channel=CHANNEL_ID, ts=request.ts, action_id="approve", user="U0ADA")
        done = world.wait_for_phase("ranker", "Succeeded")
    finally:
        controller.stop()
    assert [(a["by"], a["decision"]) for a in done["approvals"]] == [("ada (Slack U0ADA)", "approve")]
