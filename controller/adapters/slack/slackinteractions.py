"""Answering a Slack button press: believe it, check who pressed, then create an Approval.

The transport (the signed HTTP endpoint, or Socket Mode) only hands over the request; everything
else is here. A press becomes an `Approval` object — the same audit record `kubectl` users create
— so the engine treats Slack like any other approver and nothing patches a release from outside.

Who may press: the release's `spec.notifications.slack.approvers`, or, when it names none, the
namespace's ConfigMap `modelrelease-slack-approvers` (key `approvers`); Slack user IDs (U…, W…)
and user-group IDs (S…, members read with `usergroups.users.list`). Nobody, when neither exists.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Collection
from http import HTTPStatus
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from controller import errors
from controller.adapters import kubeapi, labels
from controller.adapters.slack import slackmessages, slackpress
from controller.resources import meta, releasestatus

LOGGER = logging.getLogger(__name__)
APPROVERS_CONFIGMAP = "modelrelease-slack-approvers"
APPROVERS_KEY = "approvers"
PAST = {
    releasestatus.ApprovalDecision.APPROVE: "Approved",
    releasestatus.ApprovalDecision.REJECT: "Rolled back",
}


@dataclasses.dataclass(frozen=True)
class Answer:
    status: HTTPStatus
    text: str


class Interactions:
    def __init__(self, api: kubeapi.KubeApi, client: WebClient, signing_secret: str | None) -> None:
        self._api = api
        self._client = client
        self._signing_secret = signing_secret

    def answer_http(self, headers: dict[str, str], body: bytes) -> Answer:
        """A press POSTed to the interaction URL: Slack's signature and timestamp checked first."""
        if self._signing_secret is None:
            return Answer(HTTPStatus.UNAUTHORIZED, "no signing secret configured: presses cannot be checked")
        try:
            press = slackpress.read_press(
                headers, body, signing_secret=self._signing_secret, allowed=self.allowed
            )
        except slackpress.PressRefusedError as refused:
            LOGGER.warning("Slack press refused (%d): %s", refused.status, refused.reason)
            return Answer(refused.status, refused.reason)
        return self._act(press)

    def answer_payload(self, payload: Any) -> Answer:
        """A press delivered over Socket Mode (the connection itself is authenticated by the app token)."""
        try:
            press = slackpress.read_payload(payload, self.allowed)
        except slackpress.PressRefusedError as refused:
            LOGGER.warning("Slack press refused (%d): %s", refused.status, refused.reason)
            if refused.status == HTTPStatus.FORBIDDEN and isinstance(payload, dict):
                self._tell(str(payload.get("response_url") or ""), refused.reason)
            return Answer(refused.status, refused.reason)
        return self._act(press)

    def allowed(self, user: str, target: slackpress.ButtonValue) -> bool:
        approvers = self._approvers(target)
        if user in approvers:
            return True
        return any(user in self._group_members(group) for group in approvers if group.startswith("S"))

    # ---- acting on a believed press ------------------------------------------------------------

    def _act(self, press: slackpress.Press) -> Answer:
        target = press.target
        try:
            release = self._api.get(
                kubeapi.build_path(meta.API_VERSION, "modelreleases", target.namespace, target.release)
            )
        except errors.NotFoundError:
            return self._polite(
                press, f"{target.namespace}/{target.release} no longer exists; nothing changed"
            )
        status = release.get("status") or {}
        waiting = (
            status.get("phase") == releasestatus.Phase.AWAITING_APPROVAL.value
            and status.get("revision") == target.revision
            and status.get("currentStepIndex") == target.step
        )
        if not waiting:
            now = (
                f"phase {status.get('phase')}, revision {status.get('revision')}, "
                f"step {status.get('currentStepIndex')}"
            )
            return self._polite(
                press,
                f"this button was for step {target.step} of revision {target.revision}, which no longer "
                f"waits ({target.release} is at {now}); nothing changed",
            )
        body = self._approval(press)
        try:
            self._api.create(kubeapi.build_path(meta.API_VERSION, "approvals", target.namespace), body)
        except errors.ConflictError:
            # The Approval's name comes from the press's trigger_id: only a replay names it again.
            LOGGER.warning("Slack press replayed: Approval %s exists", press.approval_name)
            return Answer(
                HTTPStatus.FORBIDDEN, f"replayed: this press was handled as Approval {press.approval_name}"
            )
        LOGGER.info(
            "Approval %s/%s: %s of step %d of %s revision %s by Slack user %s",
            target.namespace,
            press.approval_name,
            press.decision.value,
            target.step,
            target.release,
            target.revision,
            press.user,
        )
        self._show_decided(press, self._votes(release, press))
        return Answer(HTTPStatus.OK, f"{PAST[press.decision]}: Approval {press.approval_name}")

    def _votes(self, release: dict[str, Any], press: slackpress.Press) -> tuple[int, int]:
        """(different approvers so far, approvers the gate needs) once this press counts."""
        target = press.target
        steps = (((release.get("spec") or {}).get("strategy") or {}).get("canary") or {}).get("steps") or []
        step = steps[target.step] if target.step < len(steps) else {}
        needed = int(((step or {}).get("approval") or {}).get("approvals") or 1)
        if press.decision == releasestatus.ApprovalDecision.REJECT:
            return needed, needed  # one rejection decides
        items = self._api.get(kubeapi.build_path(meta.API_VERSION, "approvals", target.namespace))["items"]
        approvers = {
            str(a["spec"].get("identity") or f"unverified:{a['spec'].get('by')}")  # as the gate counts
            for a in items
            if (a["spec"].get("release"), a["spec"].get("revision"), a["spec"].get("step"))
            == (target.release, target.revision, target.step)
            and a["spec"].get("decision") == releasestatus.ApprovalDecision.APPROVE.value
        }
        return len(approvers), needed

    def _approval(self, press: slackpress.Press) -> dict[str, Any]:
        target = press.target
        reason = "rolled back from Slack" if press.decision == releasestatus.ApprovalDecision.REJECT else ""
        return {
            "apiVersion": meta.API_VERSION,
            "kind": "Approval",
            "metadata": {
                "name": press.approval_name,
                "namespace": target.namespace,
                "labels": {labels.VIA: "slack"},
                "annotations": {
                    labels.SLACK_USER: press.user,
                    labels.SLACK_MESSAGE: f"{press.channel}/{press.message_ts}",
                },
            },
            "spec": {
                "release": target.release,
                "revision": target.revision,
                "step": target.step,
                "decision": press.decision.value,
                "by": f"{press.username or press.user} (Slack {press.user})",
                "identity": f"slack:{press.user}",  # the user ID: a changeable name never counts twice
                "reason": reason,
            },
        }

    def _show_decided(self, press: slackpress.Press, votes: tuple[int, int]) -> None:
        """The pressed message shows the press at once: its buttons go when the gate is decided, so
        nobody presses again in vain; short of a quorum they stay for the next approver."""
        request = slackmessages.Rendered(press.message_text, list(press.message_blocks))
        outcome = f"{PAST[press.decision]} by <@{press.user}> · Approval {press.approval_name}"
        if votes[0] < votes[1]:
            decided = slackmessages.render_vote(request, f"{outcome} ({votes[0]} of {votes[1]})")
        else:
            decided = slackmessages.render_decided(request, outcome)
        try:
            self._client.chat_update(
                channel=press.channel, ts=press.message_ts, text=decided.text, blocks=decided.blocks
            )
        except (SlackApiError, OSError) as exc:
            LOGGER.warning("could not update the pressed message (the outbox will): %s", exc)

    def _polite(self, press: slackpress.Press, text: str) -> Answer:
        self._tell(press.response_url, text)
        return Answer(HTTPStatus.OK, text)

    def _tell(self, response_url: str, text: str) -> None:
        """Only the presser sees it (an ephemeral reply through the press's response_url)."""
        if not response_url:
            return
        try:
            WebhookClient(response_url, timeout=5).send(
                text=text, response_type="ephemeral", replace_original=False
            )
        except OSError as exc:
            LOGGER.warning("could not answer the press: %s", exc)

    # ---- the allow-list ------------------------------------------------------------------------

    def _approvers(self, target: slackpress.ButtonValue) -> Collection[str]:
        try:
            release = self._api.get(
                kubeapi.build_path(meta.API_VERSION, "modelreleases", target.namespace, target.release)
            )
        except errors.NotFoundError:
            return ()
        slack = ((release.get("spec") or {}).get("notifications") or {}).get("slack") or {}
        listed = slack.get("approvers") or []
        if listed:
            return frozenset(str(a) for a in listed)
        try:
            config = self._api.get(
                kubeapi.build_path("v1", "configmaps", target.namespace, APPROVERS_CONFIGMAP)
            )
        except errors.NotFoundError:
            return ()
        return frozenset(
            re.split(r"[\s,]+", str((config.get("data") or {}).get(APPROVERS_KEY, "")).strip())
        ) - {""}

    def _group_members(self, group: str) -> frozenset[str]:
        try:
            return frozenset(self._client.usergroups_users_list(usergroup=group).get("users") or [])
        except (SlackApiError, OSError) as exc:
            LOGGER.warning("cannot read the members of Slack user group %s: %s", group, exc)
            return frozenset()
