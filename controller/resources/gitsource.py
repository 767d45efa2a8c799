"""GitSource: the built-in alternative to Argo CD that syncs release manifests from a repository."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator

from analysis import schema
from controller.resources import meta


class SecretKeyRef(schema.Frozen):
    """A key in a Secret of the GitSource's namespace; secrets never sit in a spec."""

    name: str = Field(min_length=1)
    key: str = Field(min_length=1)


class GitCredentials(schema.Frozen):
    username: SecretKeyRef | None = None
    password: SecretKeyRef | None = Field(None, description="Password or token.")
    ssh_private_key: SecretKeyRef | None = Field(None, alias="sshPrivateKey")

    @model_validator(mode="after")
    def _one_method(self) -> Self:
        if self.ssh_private_key is not None and self.password is not None:
            raise ValueError("give either password or sshPrivateKey, not both")
        return self


REPOSITORY_URL = r"^(https?://|ssh://|git@|file://).+"


class WriteBackTarget(StrEnum):
    """Where a rollback's commit goes: onto the branch itself, or a `rollback/<release>` branch to merge."""

    BRANCH = "branch"
    ROLLBACK_BRANCH = "rollbackBranch"


class GitSourceSpec(schema.Frozen):
    url: str = Field(pattern=REPOSITORY_URL, description="Repository URL.")
    branch: str = Field("main", min_length=1)
    paths: tuple[str, ...] = Field(
        ("releases", "analysis-templates"),
        min_length=1,
        description="Folders (or files) of manifests in the repository, relative to its root.",
    )
    poll_interval: Annotated[schema.Duration, schema.within(timedelta(seconds=1), timedelta(days=1))] = Field(
        timedelta(minutes=1)
    )
    credentials: GitCredentials | None = None
    ssh_known_hosts: SecretKeyRef | None = Field(
        None, description="known_hosts for SSH URLs; without it the host key is trusted on first use."
    )
    webhook_secret: SecretKeyRef | None = Field(None, description="Secret that signs push webhooks.")
    prune: bool = Field(False, description="Delete what this source created once it is removed from Git.")
    allow_empty: bool = Field(
        False,
        description="Let a sync prune every object this source manages (Argo CD's allowEmpty); "
        "off, such a sync is refused.",
    )
    max_prune_percent: int = Field(
        50,
        ge=0,
        le=100,
        description="A sync that would prune more than this share of the objects this source manages "
        "is refused (one object may always be pruned).",
    )
    write_back_target: WriteBackTarget = Field(
        WriteBackTarget.BRANCH, description="Default for its releases' rollback commits."
    )

    @field_validator("paths")
    @classmethod
    def _inside_the_repository(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if path.startswith("/") or ".." in path.split("/"):
                raise ValueError(f"{path!r} is not a path inside the repository")
        return value


class SyncProblem(schema.Frozen):
    """A file the last sync could not apply: its resources were left as they were."""

    file: str
    line: int | None = None
    message: str


class PruneRecord(schema.Frozen):
    """What one sync deleted, or would have deleted and was refused."""

    time: datetime
    commit: str
    objects: tuple[str, ...] = Field(description="Kind/name of each object.")
    reason: str = ""


PRUNE_HISTORY = 10  # prunes kept in status, newest last


class GitSourceStatus(schema.Frozen):
    observed_generation: int | None = None
    observed_commit: str | None = None
    last_sync_time: datetime | None = None
    last_attempt_time: datetime | None = None
    handled_sync_request: str | None = Field(None, description="The last webhook sync request acted on.")
    applied: tuple[str, ...] = Field((), description="Kind/name of every resource applied at that commit.")
    pruned: tuple[str, ...] = Field((), description="What the last sync deleted.")
    prune_history: tuple[PruneRecord, ...] = Field(
        (), description=f"The last {PRUNE_HISTORY} syncs that deleted something, oldest first."
    )
    prune_refused: PruneRecord | None = Field(
        None,
        description="The last sync's prune, refused as unjustified: what it would have deleted, and why.",
    )
    orphaned: tuple[str, ...] = Field(
        (), description="Objects this source created that Git no longer holds, kept because prune is off."
    )
    errors: tuple[SyncProblem, ...] = ()
    conditions: tuple[meta.Condition, ...] = ()
    message: str = ""
