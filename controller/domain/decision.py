"""What one reconcile returns: actions to run in order, the status to write, when to look again."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from analysis import schema
from controller.domain import actions
from controller.resources import releasestatus


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class Event(schema.Frozen):
    """A Kubernetes Event the shell posts on the release: a transition, with its reason."""

    type: EventType
    reason: str
    message: str
    key: str | None = None  # what identifies it when the message may differ on a replay; else the message
    regarding_approval: str | None = None  # posted on this Approval (in the release's namespace) instead
    scope: str | None = None  # with the reason, its whole identity: said once whichever rollout says it


class Decision(schema.Frozen):
    actions: tuple[actions.Action, ...]
    status: releasestatus.ModelReleaseStatus
    requeue_after: timedelta | None
    events: tuple[Event, ...] = ()
