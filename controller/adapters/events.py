"""Kubernetes Events on the ModelRelease: transitions, notifications and approval requests.

Each Event's name is derived from what it says (a notification's key, or a transition's reason and
message), so posting it again after a crash answers 409 and nothing is said twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from controller import errors, ports
from controller.adapters import kubeapi
from controller.domain import actions, observations
from controller.domain import decision as decisions
from controller.resources import meta, releasestatus

COMPONENT = "modelrelease-controller"
NORMAL = decisions.EventType.NORMAL.value
WARNING = decisions.EventType.WARNING.value


def build_event_name(release: str, *parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]
    return f"{release[:200]}.{digest}"


def _release_object(namespace: str, name: str, uid: str) -> dict[str, str]:
    return {
        "apiVersion": meta.API_VERSION,
        "kind": "ModelRelease",
        "name": name,
        "namespace": namespace,
        "uid": uid,
    }


class KubeEvents:
    def __init__(
        self,
        api: kubeapi.KubeApi,
        clock: Callable[[], datetime],
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self._api = api
        self._clock = clock
        self._on_warning = on_warning  # told each Warning's reason as it is posted (the metrics count them)

    def post_warning(self, release: ports.ReleaseRef, reason: str, message: str, *identity: str) -> bool:
        name = build_event_name(release.name, release.uid, *identity)
        return self.post(release, name, WARNING, reason, message)

    def post_warning_about(
        self, namespace: str, name: str, uid: str, reason: str, message: str, *identity: str
    ) -> bool:
        """An Event about a release whose spec could not be read (so no ReleaseRef exists)."""
        involved = _release_object(namespace, name, uid)
        return self._post(
            namespace, build_event_name(name, uid, *identity), WARNING, reason, message, involved
        )

    def post(
        self,
        release: ports.ReleaseRef,
        name: str,
        event_type: str,
        reason: str,
        message: str,
        *,
        regarding: dict[str, str] | None = None,
    ) -> bool:
        """Post one Event (about the release, or `regarding` another object); False when an Event of
        that name exists already (said before)."""
        involved = regarding or _release_object(release.namespace, release.name, release.uid)
        return self._post(release.namespace, name, event_type, reason, message, involved)

    def post_regarding(
        self, involved: dict[str, str], event_type: str, reason: str, message: str, *identity: str
    ) -> bool:
        """An Event about another of our objects (a GitSource), said once per identity."""
        namespace, name = involved["namespace"], involved["name"]
        event_name = build_event_name(name, involved.get("uid", ""), *identity)
        return self._post(namespace, event_name, event_type, reason, message, involved)

    def _post(
        self,
        namespace: str,
        name: str,
        event_type: str,
        reason: str,
        message: str,
        involved: dict[str, str],
    ) -> bool:
        if event_type == WARNING and self._on_warning is not None:
            self._on_warning(reason)
        stamp = self._clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "type": event_type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": COMPONENT},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self._api.create(kubeapi.build_path("v1", "events", namespace), body)
        except errors.ConflictError:
            return False
        return True

    def post_transition(
        self, release: ports.ReleaseRef, event: decisions.Event, status: releasestatus.ModelReleaseStatus
    ) -> bool:
        """A transition's Event, said once per revision and attempt: the same words said about another
        rollout (v8 failing step 1 as v7 did) are a new Event."""
        if event.scope is not None:
            identity = [event.scope, event.reason]
        else:
            identity = [status.revision or "", str(status.attempt), event.reason, event.key or event.message]
        name = build_event_name(release.name, release.uid, *identity)
        regarding = None
        if event.regarding_approval is not None:
            regarding = {
                "apiVersion": meta.API_VERSION,
                "kind": "Approval",
                "name": event.regarding_approval,
                "namespace": release.namespace,
            }
        return self.post(release, name, event.type.value, event.reason, event.message, regarding=regarding)


class EventNotifier:
    """The notifier every install has: notifications become Events (Slack arrives as another adapter)."""

    def __init__(self, events: KubeEvents) -> None:
        self._events = events

    def post_notification(self, release: ports.ReleaseRef, action: actions.Notify) -> None:
        name = build_event_name(release.name, release.uid, "notify", action.key)
        self._events.post(release, name, NORMAL, f"Notify{action.event.value}", action.message)

    def post_approval_request(self, release: ports.ReleaseRef, action: actions.RequestApproval) -> None:
        name = build_event_name(release.name, release.uid, "approval", action.key)
        message = (
            f"step {action.step_index} of revision {action.revision} "
            f"(model version {action.model_version}) waits for approval: "
            f"kubectl modelrelease approve {release.name} -n {release.namespace}"
            + (f", or Approve in Slack {action.channel}" if action.slack and action.channel else "")
            + f" (an Approval for revision {action.revision}, step {action.step_index})"
        )
        self._events.post(release, name, NORMAL, "ApprovalRequested", message)

    def fetch_delivery(self, release: ports.ReleaseRef) -> observations.NotificationDelivery | None:
        return None  # an Event is delivered when it is posted
