"""Read a key of a Secret: the only way credentials enter the controller (never a spec, never a log)."""

from __future__ import annotations

import base64
import binascii

from controller import errors
from controller.adapters import kubeapi
from controller.adapters.git import gitremote
from controller.resources import gitsource


def read_key(api: kubeapi.KubeApi, namespace: str, ref: gitsource.SecretKeyRef) -> str:
    secret = api.get(kubeapi.build_path("v1", "secrets", namespace, ref.name))
    encoded = (secret.get("data") or {}).get(ref.key)
    if encoded is None:
        raise errors.PermanentError(f"Secret {namespace}/{ref.name} has no key {ref.key!r}")
    try:
        return base64.b64decode(encoded).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise errors.PermanentError(
            f"Secret {namespace}/{ref.name} key {ref.key!r} is not UTF-8 text"
        ) from error


def git_credentials(
    api: kubeapi.KubeApi,
    namespace: str,
    credentials: gitsource.GitCredentials | None,
    known_hosts: gitsource.SecretKeyRef | None = None,
) -> gitremote.Credentials:
    if credentials is None:
        return gitremote.Credentials()

    def value(ref: gitsource.SecretKeyRef | None) -> str | None:
        return read_key(api, namespace, ref) if ref is not None else None

    return gitremote.Credentials(
        username=value(credentials.username),
        password=value(credentials.password),
        ssh_private_key=value(credentials.ssh_private_key),
        known_hosts=value(known_hosts),
    )
