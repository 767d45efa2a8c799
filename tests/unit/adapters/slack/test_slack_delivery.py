"""The Slack outbox and its sender, against the real API server and the Slack stand-in through
slack-sdk's real WebClient: a message is queued once, posted once, kept in order, retried until
Slack takes it, and found again (not posted twice) after a crash between posting and recording."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk import WebClient

from analysis import verdicts
from controller import ports
from controller.adapters import events, kubeapi
from controller.adapters.slack import slackmessages, slacknotifier, slackoutbox
from controller.domain import actions, naming
from controller.resources import modelrelease, releasestatus
from controller.tooling import slackstandin as slack
from tests.cluster import harness

TOKEN, SECRET = "xoxb-delivery-test", "delivery-signing-secret"
CHANNEL = "#ml-releases"
RELEASES = "/apis/modelrelease.dev/v1alpha1/namespaces/default/modelreleases"
names = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def standin() -> Iterator[slack.SlackStandIn]:
    with slack.SlackStandIn(
        token=TOKEN, signing_secret=SECRET, channels={"ml-releases": "C0RELEASES"}
    ) as running:
        yield running


class World:
    def __init__(self, api: kubeapi.KubeApi, standin: slack.SlackStandIn) -> None:
        body = harness.release_body(f"ranker-{next(names)}", notifications={"slack": {"channel": CHANNEL}})
        created = api.create(RELEASES, body)
        spec = modelrelease.ModelReleaseSpec.model_validate(created["spec"])
        self.release = ports.ReleaseRef(
            "default", created["metadata"]["name"], created["metadata"]["uid"], spec
        )
        self.api, self.standin, self.clock = api, standin, Clock()
        self.outboxes = slackoutbox.Outboxes(api)
        kube_events = events.KubeEvents(api, self.clock)
        self.notifier = slacknotifier.SlackNotifier(self.outboxes, events.EventNotifier(kube_events))
        client = WebClient(token=TOKEN, base_url=standin.api_url, retry_handlers=[])
        self.sender = slacknotifier.SlackSender(client, self.outboxes, kube_events, self.clock)
        self.status = releasestatus.ModelReleaseStatus(
            phase=releasestatus.Phase.PROGRESSING,
            revision="abc123",
            attempt=1,
            stable_model_version="1",
            canary_model_version="2",
            current_step_index=0,
            canary_weight=25,
        )

    def notify(self, event: actions.NotificationEvent, suffix: str, message: str, **extra: Any) -> None:
        key = naming.build_idempotency_key("abc123", 1, suffix)
        action = actions.Notify(
            key=key,
            channel=CHANNEL,
            event=event,
            revision="abc123",
            model_version="2",
            message=message,
            **extra,
        )
        self.notifier.post_notification(self.release, action)

    def request_approval(self, step: int) -> None:
        key = naming.build_idempotency_key("abc123", 1, f"approval-{step}")
        action = actions.RequestApproval(
            key=key, step_index=step, revision="abc123", model_version="2", slack=True, channel=CHANNEL
        )
        self.notifier.post_approval_request(self.release, action)

    def deliver(self) -> slacknotifier.Delivered:
        return self.sender.deliver(self.release, self.status)

    def posts(self) -> list[slack.Call]:
        return [c for c in self.standin.calls if c.method == "chat.postMessage" and c.status == 200]

    def thread_text(self) -> str:
        first = self.posts()[0].response
        return self.standin.render_thread(first["channel"], first["ts"])

    def delivery(self) -> Any:
        return self.notifier.fetch_delivery(self.release)


def analysis_metrics() -> tuple[verdicts.MetricResult, ...]:
    return (
        verdicts.MetricResult(
            name="errors",
            verdict=verdicts.Verdict.PASS,
            baseline=0.0051,
            canary=0.0049,
            effect=-0.04,
            ci_low=-0.2,
            ci_high=0.15,
            evidence=0.3,
            alpha=0.05,
        ),
    )


def test_a_rollout_gets_one_parent_message_and_its_replies_in_order_each_posted_once(
    api: kubeapi.KubeApi, standin: slack.SlackStandIn
) -> None:
    world = World(api, standin)
    world.notify(actions.NotificationEvent.STARTED, "started", "rollout of model 2 started")
    world.notify(
        actions.NotificationEvent.ANALYSIS,
        "analysis-1",
        "step 2 (analysis): Pass",
        verdict=verdicts.Verdict.PASS,
        metrics=analysis_metrics(),
        step_index=1,
    )
    world.notify(actions.NotificationEvent.ANALYSIS, "analysis-1", "queued twice: said once")
    assert world.deliver().changed is True  # the thread's ts is news for status
    world.deliver()
    posts = world.posts()
    assert [p.payload.get("thread_ts") is None for p in posts] == [True, False]
    assert posts[1].payload["thread_ts"] == posts[0].response["ts"]
    thread = world.thread_text()
    assert "ranker" in thread
    assert "model 1 → 2" in thread
    assert "25%" in thread
    assert "errors" in thread
    assert "-4.0% [-20.0%, +15.0%]" in thread
    assert "0.3 / 20" in thread
    assert "queued twice" not in thread
    assert world.delivery().thread_ts == posts[0].response["ts"]

    world.status = world.status.model_copy(update={"canary_weight": 50, "current_step_index": 2})
    world.deliver()
    updates = [c for c in standin.calls if c.method == "chat.update"]
    assert len(updates) == 1
    assert updates[0].payload["ts"] == posts[0].response["ts"]
    assert "50%" in world.thread_text()
    world.deliver()
    assert len(standin.calls) == 3  # nothing changed, nothing said


def test_slack_failing_holds_nothing_back_and_everything_arrives_in_order_when_it_recovers(
    api: kubeapi.KubeApi, standin: slack.SlackStandIn
) -> None:
    world = World(api, standin)
    world.notify(actions.NotificationEvent.STARTED, "started", "started")
    world.notify(actions.NotificationEvent.PAUSED, "pause-1", "first reply")
    world.notify(actions.NotificationEvent.PROMOTED, "promoted", "second reply")
    standin.fail_next(2, status=503)
    standin.fail_next(1, status=429, retry_after=30)
    for _ in range(3):
        world.deliver()
        world.clock.advance(5)
    seen = world.delivery()
    assert (seen.undelivered, seen.thread_ts) == (1, None)
    assert seen.last_error == "Slack answered 429 ratelimited"
    warnings = [
        e for e in api.get("/api/v1/namespaces/default/events")["items"] if e["reason"] == "SlackUndelivered"
    ]
    assert len([e for e in warnings if e["involvedObject"]["name"] == world.release.name]) == 1
    waiting = world.deliver()  # Retry-After 30 s has not passed: Slack is not asked
    assert len(standin.calls) == 3
    assert waiting.retry_at is not None
    assert waiting.retry_at - world.clock() == timedelta(seconds=25)  # told at +10 s to wait 30 s; now +15 s
    world.clock.advance(30)
    world.deliver()
    seen = world.delivery()
    assert (seen.undelivered, seen.thread_ts is not None) == (0, True)
    thread = world.thread_text().splitlines()
    replies = [line for line in thread if line.startswith("  ↳")]
    assert ["first reply" in replies[0], "second reply" in replies[1]] == [True, True]


def test_a_message_posted_just_before_a_crash_is_found_in_slack_not_posted_again(
    api: kubeapi.KubeApi, standin: slack.SlackStandIn
) -> None:
    world = World(api, standin)
    world.notify(actions.NotificationEvent.STARTED, "started", "started")
    world.notify(actions.NotificationEvent.PROMOTED, "promoted", "promoted once")
    world.deliver()
    key = naming.build_idempotency_key("abc123", 1, "promoted")
    thread_ts = world.posts()[0].response["ts"]

    # Replay the crash: the reply was marked as being sent and reached Slack, but its ts was never
    # recorded. (The first delivery posted it; forget the ts as a killed process would have.)
    def forget(outbox: slackoutbox.Outbox) -> None:
        message = outbox.message(key)
        assert message is not None
        assert message.delivery.ts is not None
        message.delivery.ts = None
        message.delivery.sending_since = world.clock()

    world.outboxes.update(world.release, forget, CHANNEL)
    world.deliver()
    posted = [p for p in world.posts() if p.payload.get("thread_ts") == thread_ts]
    assert len(posted) == 1
    assert any(c.method == "conversations.replies" for c in standin.calls)
    outbox = world.outboxes.read("default", world.release.name)
    recorded = outbox.message(key) if outbox is not None else None
    assert recorded is not None
    assert recorded.delivery.ts == posted[0].response["ts"]


def test_an_approval_request_keeps_its_buttons_until_the_gate_is_decided_then_names_who_decided(
    api: kubeapi.KubeApi, standin: slack.SlackStandIn
) -> None:
    world = World(api, standin)
    world.request_approval(3)
    world.deliver()
    request = world.posts()[1]

    def buttons() -> bool:
        return any(
            b["type"] == "actions" for b in standin.messages[("C0RELEASES", request.response["ts"])].blocks
        )

    assert buttons()
    for by, decides in (("ada", False), ("bo", True)):  # a quorum of two
        world.notify(
            actions.NotificationEvent.APPROVAL,
            f"approval-3-approve-{by}",
            f"step 3 approved by {by} ({1 + decides} of 2) (via ranker-slack-{by})",
            step_index=3,
            closes_gate=decides,
        )
        world.deliver()
        assert buttons() is not decides
    thread = standin.render_thread("C0RELEASES", world.posts()[0].response["ts"])
    assert "approved by ada (1 of 2)" in thread
    assert "approved by bo (2 of 2)" in thread


def test_the_metric_table_lines_up_its_columns() -> None:
    table = slackmessages.render_metric_table(analysis_metrics()).splitlines()
    assert table[0].split() == ["metric", "baseline", "canary", "effect", "[CI]", "evidence", "decision"]
    assert table[0].index("canary") == table[1].index("0.0049")


def test_two_releases_of_one_model_in_one_channel_keep_their_own_threads_across_a_slack_503(
    api: kubeapi.KubeApi, standin: slack.SlackStandIn
) -> None:
    # Staging and production of one model and serving spec: the same revision, so the same keys.
    staging, production = World(api, standin), World(api, standin)
    staging.notify(actions.NotificationEvent.STARTED, "started", "staging: model 1 → 2")
    staging.deliver()
    production.notify(actions.NotificationEvent.STARTED, "started", "production: model 1 → 2")
    standin.fail_next(1, status=503)
    production.deliver()  # marked as being sent, then failed: the retry looks in Slack first
    production.clock.advance(60)
    production.deliver()
    threads = {world.release.name: world.delivery().thread_ts for world in (staging, production)}
    assert None not in threads.values()
    assert len(set(threads.values())) == 2, "production adopted staging's thread"
    parents = [p for p in production.posts() if "thread_ts" not in p.payload]
    assert len(parents) == 2
