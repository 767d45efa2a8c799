"""How one controller process runs: scope, peering, timing, and which backends it uses."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta

PEERING_NAME = "modelrelease"


@dataclasses.dataclass(frozen=True)
class RuntimeSettings:
    kubeconfig: str | None = None
    namespaces: tuple[str, ...] = ()  # empty: cluster-wide
    label_selector: dict[str, str] = dataclasses.field(default_factory=dict)  # shard by release labels
    standalone: bool = False
    peering_name: str | None = PEERING_NAME  # None only with standalone
    priority: int = 0
    peering_lifetime: float = 60.0
    poll_interval: timedelta = timedelta(seconds=30)  # longest wait between two reconciles of a release
    request_timeout: float = 10.0
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


def build_random_priority() -> int:
    """A peering priority for one process. Kopf freezes peers that tie, so replicas must differ."""
    return random.SystemRandom().randint(1, 2**31 - 1)
