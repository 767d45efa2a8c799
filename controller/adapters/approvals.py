"""Approval objects: the decisions people make on a release's gates, read for the engine."""

from __future__ import annotations

from datetime import datetime

import pydantic

from controller import ports
from controller.adapters import kubeapi
from controller.domain import observations
from controller.resources import approval, meta


class KubeApprovals:
    def __init__(self, api: kubeapi.KubeApi) -> None:
        self._api = api

    def fetch_approvals(self, release: ports.ReleaseRef) -> tuple[observations.ObservedApproval, ...]:
        items = self._api.get(kubeapi.build_path(meta.API_VERSION, "approvals", release.namespace))["items"]
        found = []
        for item in items:
            try:
                spec = approval.ApprovalSpec.model_validate(item.get("spec"))
            except pydantic.ValidationError:
                continue  # a malformed Approval approves nothing; the API server's schema normally rejects it
            if spec.release != release.name:
                continue
            created = item["metadata"].get("creationTimestamp")
            found.append(
                observations.ObservedApproval(
                    name=item["metadata"]["name"],
                    revision=spec.revision,
                    step=spec.step,
                    decision=spec.decision,
                    by=spec.by,
                    identity=spec.counted_as,
                    reason=spec.reason,
                    created_at=datetime.fromisoformat(created.replace("Z", "+00:00")),
                )
            )
        return tuple(sorted(found, key=lambda a: (a.created_at, a.name)))
