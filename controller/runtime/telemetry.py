"""The controller's own metrics on /metrics: what an SRE graphs and alerts on (docs/operations.md).

Derived from what the controller already decides and writes — the status before and after each
reconcile, the Warning Events it posts, the API calls that fail — so no state is added: a restarted
controller starts its counters at zero (Prometheus' `rate()` and `increase()` expect that) and its
releases-by-phase gauge refills at the first reconcile of each release.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Iterator
from datetime import datetime

import prometheus_client
from prometheus_client import core, registry

from analysis import verdicts
from controller.resources import releasestatus

NAMESPACE = "modelrelease"
# Rollouts and steps run from seconds (a demo) to days (an approval over a weekend).
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 259200)
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# Warning Event reasons that mean an outside system did not take a delivery (each is retried).
DELIVERY_FAILURES = {
    "SlackUndelivered": "slack",
    "GitWriteBackFailed": "git",
    "ModelVersionBumpFailed": "git",
    "SyncFailed": "git",
    "RegistryUpdateFailed": "mlflow",
}


# Why rollouts are rolled back (controller/domain): known up front, so each series starts at zero.
ROLLBACK_REASONS = (
    "AnalysisFailed",
    "Aborted",
    "ApprovalRejected",
    "ApprovalTimedOut",
    "ProgressDeadlineExceeded",
)


class _ReleaseCollector(registry.Collector):
    """Per release, from the last status a reconcile wrote (forgotten when the release goes): the
    count by phase, and when the current step of a rollout under way started (for "stuck" alerts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], tuple[str, float | None]] = {}

    def set(self, namespace: str, name: str, status: releasestatus.ModelReleaseStatus | None) -> None:
        with self._lock:
            if status is None:
                self._seen.pop((namespace, name), None)
                return
            started = status.step_started_at if status.phase in releasestatus.ROLLOUT_PHASES else None
            self._seen[(namespace, name)] = (
                status.phase.value,
                started.timestamp() if started is not None else None,
            )

    def collect(self) -> Iterator[core.Metric]:
        phases = core.GaugeMetricFamily(
            f"{NAMESPACE}_releases", "ModelReleases by phase", labels=["namespace", "phase"]
        )
        steps = core.GaugeMetricFamily(
            f"{NAMESPACE}_release_step_started_timestamp_seconds",
            "When the current step of a rollout under way started (Unix seconds)",
            labels=["namespace", "release", "phase"],
        )
        with self._lock:
            seen = dict(self._seen)
        counts: dict[tuple[str, str], int] = {}
        for (namespace, name), (phase, started) in sorted(seen.items()):
            counts[(namespace, phase)] = counts.get((namespace, phase), 0) + 1
            if started is not None:
                steps.add_metric([namespace, name, phase], started)
        for namespace in sorted({ns for ns, _ in counts}):
            for each in releasestatus.Phase:
                phases.add_metric([namespace, each.value], counts.get((namespace, each.value), 0))
        yield phases
        yield steps


class ControllerMetrics:
    """One registry per process; the runtime calls the `observe_*`/`count_*` methods."""

    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        self._releases = _ReleaseCollector()
        self.registry.register(self._releases)
        r = self.registry
        build = prometheus_client.Gauge(
            f"{NAMESPACE}_build_info", "1 per running controller process", ["version"], registry=r
        )
        build.labels(_version()).set(1)
        self.step_seconds = prometheus_client.Histogram(
            f"{NAMESPACE}_step_duration_seconds",
            "Time from a step's start to its completion",
            ["kind", "waits_for_people"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.rollout_seconds = prometheus_client.Histogram(
            f"{NAMESPACE}_rollout_duration_seconds",
            "Time from a rollout's start to its end; waiting=excluded leaves out open pauses and approvals",
            ["outcome", "waiting"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.rollouts = prometheus_client.Counter(
            f"{NAMESPACE}_rollouts",
            "Rollouts ended, by outcome and reason",
            ["outcome", "reason"],
            registry=r,
        )
        self.verdicts = prometheus_client.Counter(
            f"{NAMESPACE}_verdicts",
            'Analysis verdicts reached, per metric (the analysis\' own verdict has metric="")',
            ["metric", "verdict"],
            registry=r,
        )
        self.reconcile_seconds = prometheus_client.Histogram(
            f"{NAMESPACE}_reconcile_duration_seconds",
            "One reconcile of one release: observe, decide, act, write status",
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self.reconcile_errors = prometheus_client.Counter(
            f"{NAMESPACE}_reconcile_errors",
            "Reconciles that ended in an error (retried)",
            ["kind"],
            registry=r,
        )
        self.api_errors = prometheus_client.Counter(
            f"{NAMESPACE}_api_errors",
            "Kubernetes API calls that failed, by method and HTTP code (0: no answer)",
            ["method", "code"],
            registry=r,
        )
        self.delivery_failures = prometheus_client.Counter(
            f"{NAMESPACE}_delivery_failures",
            "Deliveries to Slack, Git or MLflow that failed and will be retried",
            ["target", "reason"],
            registry=r,
        )
        self.warnings = prometheus_client.Counter(
            f"{NAMESPACE}_warning_events", "Warning Events posted, by reason", ["reason"], registry=r
        )
        # Every label set a dashboard or alert asks for that can be known exists from the start, at
        # zero: `increase()` misses a counter's first event when the series is born with it.
        for reason, target in DELIVERY_FAILURES.items():
            self.delivery_failures.labels(target, reason)
        self.rollouts.labels(releasestatus.RolloutOutcome.PROMOTED.value, "Promoted")
        for reason in ROLLBACK_REASONS:
            self.rollouts.labels(releasestatus.RolloutOutcome.ROLLED_BACK.value, reason)
        for outcome in releasestatus.RolloutOutcome:
            for waiting in ("included", "excluded"):
                self.rollout_seconds.labels(outcome.value, waiting)
        for verdict in verdicts.Verdict:
            if verdict != verdicts.Verdict.RUNNING:
                self.verdicts.labels("", verdict.value)

    # ---- reconciles ----------------------------------------------------------------------------------

    def observe_transition(
        self,
        namespace: str,
        name: str,
        before: releasestatus.ModelReleaseStatus,
        after: releasestatus.ModelReleaseStatus,
        step_kind: str | None,
        step_waits_for_people: bool,
        now: datetime,
    ) -> None:
        """What changed between the status a reconcile read and the one it wrote."""
        self._releases.set(namespace, name, after)
        if (
            before.current_step_index is not None
            and after.current_step_index is not None
            and after.canary_revision == before.canary_revision
            and after.current_step_index > before.current_step_index
            and before.step_started_at is not None
            and step_kind is not None
        ):
            waited = (now - before.step_started_at).total_seconds()
            self.step_seconds.labels(step_kind, str(step_waits_for_people).lower()).observe(max(waited, 0.0))
        for record in _new_history(before, after):
            self.rollouts.labels(record.outcome.value, record.reason).inc()
            if record.started_at is not None:
                total = max((record.ended_at - record.started_at).total_seconds(), 0.0)
                self.rollout_seconds.labels(record.outcome.value, "included").observe(total)
                excluded = max(total - record.waited_for_people_seconds, 0.0)
                self.rollout_seconds.labels(record.outcome.value, "excluded").observe(excluded)
        finished_before = {(a.run, a.started_at) for a in before.analysis if a.finished_at is not None}
        for analysis in after.analysis:
            if analysis.finished_at is None or (analysis.run, analysis.started_at) in finished_before:
                continue
            self.verdicts.labels("", analysis.verdict.value).inc()
            for metric in analysis.metrics:
                self.verdicts.labels(metric.name, metric.verdict.value).inc()

    def forget(self, namespace: str, name: str) -> None:
        self._releases.set(namespace, name, None)

    # ---- failures --------------------------------------------------------------------------------

    def count_api_error(self, method: str, code: int) -> None:
        self.api_errors.labels(method, str(code)).inc()

    def count_warning(self, reason: str) -> None:
        self.warnings.labels(reason).inc()
        target = DELIVERY_FAILURES.get(reason)
        if target is not None:
            self.delivery_failures.labels(target, reason).inc()

    def serve(self, host: str, port: int) -> int:
        """/metrics on host:port in a daemon thread; returns the port (0 picks a free one)."""
        server, _thread = prometheus_client.start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_address[1])


def _version() -> str:
    try:
        return importlib.metadata.version("modelrelease")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _new_history(
    before: releasestatus.ModelReleaseStatus, after: releasestatus.ModelReleaseStatus
) -> list[releasestatus.RolloutRecord]:
    seen = {(r.revision, r.attempt, r.ended_at) for r in before.history}
    return [r for r in after.history if (r.revision, r.attempt, r.ended_at) not in seen]
