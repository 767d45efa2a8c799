"""The real Prometheus the integration tests run (the tooling's; a missing binary names the package)."""

from __future__ import annotations

from controller.tooling.prometheus_process import PrometheusServer, backfill, free_port

__all__ = ["PrometheusServer", "backfill", "free_port"]
