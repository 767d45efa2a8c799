"""GitSource: the built-in alternative to Argo CD that syncs release manifests from a repository."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Self

from pydantic import Field, model_validator

from analysis import schema


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


class GitSourceSpec(schema.Frozen):
    url: str = Field(pattern=r"^(https?://|ssh://|git@|file://).+", description="Repository URL.")
    branch: str = Field("main", min_length=1)
    path: str = Field("releases", description="Folder of release manifests in the repository.")
    poll_interval: schema.Duration = Field(timedelta(minutes=1))
    credentials: GitCredentials | None = None
    webhook_secret: SecretKeyRef | None = Field(None, description="Secret that signs push webhooks.")


class GitSourceStatus(schema.Frozen):
    observed_commit: str | None = None
    last_sync_time: datetime | None = None
    applied: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
