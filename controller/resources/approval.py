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
    by: str = Field(min_length=1, description="Who decided: Slack user, Kubernetes user, or a name.")
    reason: str = ""
