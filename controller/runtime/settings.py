"""How one controller process runs: scope, peering, timing, and which backends it uses.

Declared once: the fields below are the settings, their defaults are `modelrelease run`'s defaults,
`from_options` turns the parsed options (flags or MODELRELEASE_* variables, whose names follow the
options') into them, and `__post_init__` holds every rule across options.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import pydantic

PEERING_NAME = "modelrelease"


# Options whose name differs from their field (the option's name is the variable's: MODELRELEASE_NAMESPACE).
RENAMED = {
    "namespace": "namespaces",
    "selector": "label_selector",
    "peering": "peering_name",
    "prometheus": "prometheus_url",
}


class RuntimeSettings(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", strict=False)

    kubeconfig: str | None = None
    namespaces: tuple[str, ...] = ()  # empty: cluster-wide
    label_selector: dict[str, str] = pydantic.Field(default_factory=dict)  # shard by release labels
    standalone: bool = False
    peering_name: str | None = PEERING_NAME  # None only with standalone
    priority: int = 0
    peering_lifetime: float = 60.0
    poll_interval: timedelta = timedelta(seconds=30)  # longest wait between two reconciles of a release
    request_timeout: float = 10.0
    # Reconciles run in threads (each waits on the API server and Prometheus, not on a core): with
    # asyncio's default, 6 threads on 2 cores, 1,000 releases queued ~24 s for one (issue 28).
    workers: int = pydantic.Field(32, ge=1, le=512)
    analysis: str = "none"  # prometheus (the judge) | none (every run ends INCONCLUSIVE)
    prometheus_url: str | None = None
    prometheus_token_file: str | None = None  # a bearer token, read per query; never in a spec or a log
    backoff_max: float = 60.0
    # The one port of inbound callbacks: Git pushes, MLflow events, Slack presses; None: none.
    webhook_port: int | None = None
    webhook_host: str = "0.0.0.0"
    metrics_port: int | None = None  # serve /metrics (prometheus_client) on this port; None: not served
    metrics_host: str = "0.0.0.0"
    health_port: int | None = None  # Kopf's liveness endpoint /healthz on this port; None: not served
    git_cache_dir: str | None = None  # where repository clones are cached (default: the temp folder)
    # Slack: secrets are files (mounted from Secrets), read at start and never logged.
    slack_token_file: str | None = None  # the bot token; None: notifications are Events only
    slack_signing_secret_file: str | None = None  # checks presses on the webhook port's /slack/interactions
    slack_app_token_file: str | None = None  # Socket Mode instead of (or as well as) the endpoint
    slack_api_url: str = "https://slack.com/api/"
    slack_retry_max: float = 60.0  # longest wait between two attempts of an undelivered message
    registry: str = "pinned"  # pinned (spec.model.version as given) | mlflow
    mlflow_tracking_uri: str | None = None  # http(s)://… an MLflow server; sqlite:///… for a local registry
    mlflow_token_file: str | None = None  # a bearer token for the MLflow server, from a Secret
    mlflow_webhook_secret_file: str | None = None  # the registry webhooks' secret; None: no /hooks/mlflow

    @pydantic.model_validator(mode="after")
    def _options_agree(self) -> RuntimeSettings:
        """The rules across options, each naming the options it joins."""
        if self.registry == "mlflow" and not self.mlflow_tracking_uri:
            raise ValueError("--registry mlflow needs --mlflow-tracking-uri URI (e.g. http://mlflow:5000)")
        if self.mlflow_webhook_secret_file and self.webhook_port is None:
            raise ValueError("--mlflow-webhook-secret-file needs --webhook-port PORT to serve /hooks/mlflow")
        if self.analysis == "prometheus" and not self.prometheus_url:
            raise ValueError("--analysis prometheus needs --prometheus URL (e.g. http://prometheus:9090)")
        return self

    @classmethod
    def from_options(cls, options: Mapping[str, object]) -> RuntimeSettings:
        """The settings from `modelrelease run`'s parsed options (anything else in `options` is ignored),
        validated; a ValueError names the option that is wrong."""
        given = {RENAMED.get(name, name): value for name, value in options.items()}
        known: dict[str, Any] = {name: value for name, value in given.items() if name in cls.model_fields}
        known["namespaces"] = tuple(known.get("namespaces") or ())
        known["label_selector"] = parse_selector(known.get("label_selector") or [])
        if "poll_interval" in known:
            known["poll_interval"] = timedelta(seconds=float(known["poll_interval"]))
        if known.get("standalone"):
            known["peering_name"] = None
        if known.get("priority") is None:
            known["priority"] = build_random_priority()
        try:
            return cls.model_validate(known)
        except pydantic.ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            said = str(first["msg"]).removeprefix("Value error, ")
            raise ValueError(f"{where}: {said}" if where else said) from None


def parse_selector(terms: Iterable[str]) -> dict[str, str]:
    """`--selector KEY=VALUE` terms (repeatable) as labels."""
    selector: dict[str, str] = {}
    for term in terms:
        key, sep, value = term.partition("=")
        if not sep or not key:
            raise ValueError(f"--selector {term!r}: expected KEY=VALUE")
        selector[key] = value
    return selector


def build_random_priority() -> int:
    """A peering priority for one process. Kopf freezes peers that tie, so replicas must differ."""
    return random.SystemRandom().randint(1, 2**31 - 1)
