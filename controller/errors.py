"""The shell's error tree. Adapters raise only these; only `controller/runtime` maps them to Kopf's.

ModelReleaseError
├── TransientError        retry with backoff: the same call may succeed later
│   ├── ConflictError     409: someone wrote first; re-read and decide again
│   └── UnavailableError  5xx, 429, timeouts, refused connections
└── PermanentError        retrying the same call cannot help: say why in status
    ├── NotFoundError     404 on something that must exist (a named HTTPRoute, …)
    ├── ForbiddenError    401/403: the credentials or the RBAC do not allow it
    ├── InvalidError      400/415/422: our request or the user's object is malformed
    ├── NotOwnedError     an object the release must create exists and belongs to someone else
    └── ConfigError       no cluster to talk to: no usable kubeconfig or in-cluster credentials
"""

from __future__ import annotations


class ModelReleaseError(Exception):
    """Base of every error the shell raises on purpose."""


class TransientError(ModelReleaseError):
    pass


class ConflictError(TransientError):
    pass


class UnavailableError(TransientError):
    pass


class PermanentError(ModelReleaseError):
    pass


class NotFoundError(PermanentError):
    pass


class ForbiddenError(PermanentError):
    """401 or 403: the credentials or the RBAC do not allow it."""


class InvalidError(PermanentError):
    pass


class NotOwnedError(PermanentError):
    pass


class ConfigError(PermanentError):
    """No cluster to talk to: the kubeconfig is missing or unreadable, or its context is unknown."""
