"""How one controller process runs: scope, peering, timing, and which backends it uses."""

from __future__ import annotations

import dataclasses
from datetime import timedelta


@dataclasses.dataclass(frozen=True)
class RuntimeSettings:
    kubeconfig: str | None = None
    namespaces: tuple[str, ...] = ()  # empty: cluster-wide
    label_selector: dict[str, str] = dataclasses.field(default_factory=dict)  # shard by release labels
    standalone: bool = False
    peering_name: str | None = None
    priority: int = 0
    peering_lifetime: float = 60.0
    poll_interval: timedelta = timedelta(seconds=30)  # longest wait between two reconciles of a release
    request_timeout: float = 10.0
    analysis: str = "none"  # none | scripted | prometheus
    prometheus_url: str | None = None
    prometheus_token_file: str | None = None  # a bearer token, read per query; never in a spec or a log
    backoff_max: float = 60.0
