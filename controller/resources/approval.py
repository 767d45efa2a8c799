"""Approval: one person's decision on one gate of one rollout, kept as its own object.

Approvers need RBAC only to create Approvals, never to patch a release, and every
approval stays behind as an audit record.
"""

from __future__ import annotations

from pydantic import Field

from analysis import schema
from controller.resources import meta
from controller.resources.releasestatus import ApprovalDecision


class ApprovalSpec(schema.Frozen):
    release: str = Field(pattern=meta.DNS_SUBDOMAIN, description="ModelRelease name in this namespace.")
    revision: str = Field(min_length=1, description="The canary revision being approved.")
    step: int = Field(ge=0, description="Index of the approval step (blue-green: 2, the promotion gate).")
    decision: ApprovalDecision
    by: str = Field(
        min_length=1, description="Who decided, as people read it: a Slack or Kubernetes user name."
    )
    identity: str | None = Field(
        None,
        pattern=r"^(slack|kubernetes):.+$",
        description="Who counts toward a quorum: slack:<Slack user ID> (set by the controller's Slack "
        "endpoint) or kubernetes:<the creator's authenticated user name>. deploy/'s "
        "ValidatingAdmissionPolicy makes the API server refuse any other value; without it, "
        "an Approval without one counts under its `by`.",
    )
    reason: str = ""

    @property
    def counted_as(self) -> str:
        """The identity a quorum counts: one voice per Slack user ID or Kubernetes user."""
        return self.identity or f"unverified:{self.by}"
