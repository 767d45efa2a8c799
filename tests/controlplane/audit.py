"""The API server's audit log, read as the history of what each client asked and what it was answered.

Tests read it where they read the emulator's write log before: which calls the controller made (and
whether RBAC allowed them), and the Deployments it wrote, object by object (the policy in
`cluster.AUDIT_POLICY` keeps the request and response bodies of Deployment writes only).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"


@dataclasses.dataclass(frozen=True)
class Call:
    """One request as the audit log recorded it when its response was complete."""

    seq: int
    at: datetime
    user: str
    credential: str  # which credential (a ServiceAccount token's JTI): tells apart two holders of one account
    agent: str
    verb: str  # the API verb: get, list, watch, create, update, patch, delete, deletecollection
    group: str
    plural: str
    subresource: str | None
    namespace: str
    name: str
    code: int
    allowed: bool
    object: dict[str, Any] | None  # the answer's object, where the policy keeps it

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS

    @property
    def resource(self) -> str:
        return f"{self.plural}/{self.subresource}" if self.subresource else self.plural


class AuditLog:
    """Reads the log from where the last read stopped (`mark` starts a test's share of it)."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._offset = 0
        self._seq = 0

    def mark(self) -> None:
        self._offset = self.path.stat().st_size if self.path.exists() else 0

    def calls(self) -> list[Call]:
        """Every resource request logged since `mark`, oldest first (the file is re-read each time)."""
        return list(self._read())

    def _read(self) -> Iterator[Call]:
        if not self.path.exists():
            return
        with self.path.open("rb") as log:
            log.seek(self._offset)
            seq = 0
            for line in log:
                if not line.endswith(b"\n"):
                    break  # a line still being written
                event = json.loads(line)
                ref = event.get("objectRef")
                if event.get("stage") != "ResponseComplete" or not ref:
                    continue
                seq += 1
                yield _call(seq, event, ref)


def _call(seq: int, event: dict[str, Any], ref: dict[str, Any]) -> Call:
    annotations = event.get("annotations") or {}
    answer = event.get("responseObject")
    return Call(
        seq=seq,
        at=datetime.fromisoformat(event["stageTimestamp"].replace("Z", "+00:00")),
        user=event.get("user", {}).get("username", ""),
        credential=",".join((event.get("user", {}).get("extra") or {}).get(CREDENTIAL_ID, [])),
        agent=event.get("userAgent", ""),
        verb=event["verb"],
        group=ref.get("apiGroup", ""),
        plural=ref.get("resource", ""),
        subresource=ref.get("subresource") or None,
        namespace=ref.get("namespace", ""),
        name=ref.get("name", ""),
        code=int(event.get("responseStatus", {}).get("code", 0)),
        allowed=annotations.get("authorization.k8s.io/decision") != "forbid",
        object=answer if isinstance(answer, dict) and answer.get("kind") not in (None, "Status") else None,
    )
