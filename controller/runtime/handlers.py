"""Kopf wiring: one daemon per ModelRelease runs reconciles; watch events on what it owns wake it.

A daemon (not change handlers) suits a level-based engine: Kopf starts one for every release it
sees, also after a restart (resume), and stops it on deletion. Each loop reconciles once and then
waits for the engine's requeue time, a wake-up from an event (the release, its Deployments, pods
or Approvals changed), or the poll interval, whichever comes first. Transient errors go back to
Kopf as `kopf.TemporaryError`, so Kopf restarts the daemon with backoff (the engine records them
in a ReconcileError condition); permanent ones go to the engine, whose halt (Blocked while a stable
serves, else Failed, with its conditions) is written, and the daemon waits for the object to change.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from controller import errors, ports
from controller.adapters import labels
from controller.resources import meta, releasestatus
from controller.runtime import pacing, reconciler, telemetry
from controller.runtime import settings as settings_


class Wakeups:
    """One asyncio.Event per release: set by watch events, awaited by that release's daemon."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], asyncio.Event] = {}

    def get(self, namespace: str, name: str) -> asyncio.Event:
        return self._events.setdefault((namespace, name), asyncio.Event())

    def wake(self, namespace: str | None, name: str | None) -> None:
        if namespace and name:
            self.get(namespace, name).set()

    def forget(self, namespace: str, name: str) -> None:
        self._events.pop((namespace, name), None)


def utcnow() -> datetime:
    return datetime.now(UTC)


LEGACY_FINALIZER = f"{meta.GROUP}/finalizer"  # every controller's before shards had their own


def owes_legacy_cleanup(metadata: Mapping[str, Any], own: str) -> bool:
    """Whether a shard should take the shared pre-shard finalizer off a release it selects.

    A release created before the upgrade keeps `LEGACY_FINALIZER`, which no sharded controller adds
    or removes — so `kubectl delete` would hang on it for ever. The shard removes it once its own
    finalizer guards the release, or once the release is being deleted anyway (the garbage collector
    removes what it owns; nothing is left that the old finalizer waited for)."""
    held = metadata.get("finalizers") or []
    return LEGACY_FINALIZER in held and (own in held or bool(metadata.get("deletionTimestamp")))


def drop_legacy_finalizer(body: kopf.RawBody) -> None:
    """Kopf applies this to the freshest body as a JSON patch guarded by its resourceVersion, so a
    finalizer another controller adds meanwhile is never lost."""
    held = (body.get("metadata") or {}).get("finalizers") or []
    if LEGACY_FINALIZER in held:
        body["metadata"]["finalizers"] = [f for f in held if f != LEGACY_FINALIZER]


def finalizer_for(selector: Mapping[str, str]) -> str:
    """The finalizer this controller puts on its releases: one per shard (label selector).

    Kopf watches every release and removes its finalizer from one no handler of its selects; on a
    release of another shard, whose Kopf puts it straight back, that is a write war (hundreds of
    patches a minute per release, and status writes failing on the changed resourceVersion). A
    finalizer of the shard's own is one the other shards never hold, so they leave it alone."""
    if not selector:
        return LEGACY_FINALIZER
    terms = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
    return f"{meta.GROUP}/finalizer-{hashlib.sha256(terms.encode()).hexdigest()[:10]}"


def register(
    registry: kopf.OperatorRegistry,
    config: settings_.RuntimeSettings,
    io: ports.Ports,
    *,
    clock: Callable[[], datetime] = utcnow,
    metrics: telemetry.ControllerMetrics | None = None,
) -> Wakeups:
    wakeups = Wakeups()
    release_filter: dict[str, Any] | None = dict(config.label_selector) or None
    owned: dict[str, Any] = {labels.RELEASE: kopf.PRESENT}

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=meta.GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=meta.GROUP, key="last-handled-configuration"
        )
        settings.persistence.finalizer = finalizer_for(config.label_selector)
        settings.posting.level = logging.WARNING  # our transitions are posted as Events by the reconciler
        settings.peering.lifetime = int(config.peering_lifetime)
        settings.networking.request_timeout = config.request_timeout * 3
        settings.watching.server_timeout = 300
        # The resources served are known: no watching of every CRD and Namespace in the cluster, so
        # RBAC needs no cluster-wide read of them (CRDs must exist when the controller starts).
        settings.scanning.disabled = True

    def timed(namespace: str, name: str, logger: logging.Logger) -> reconciler.Reconciled:
        """One reconcile, its duration and any error it ends in counted in the metrics."""
        started = time.monotonic()
        try:
            return reconciler.reconcile_release(
                io, namespace, name, clock=clock, logger=logger, metrics=metrics
            )
        except errors.ModelReleaseError as exc:
            if metrics is not None:
                metrics.reconcile_errors.labels(type(exc).__name__).inc()
            raise
        finally:
            if metrics is not None:
                metrics.reconcile_seconds.observe(time.monotonic() - started)

    @kopf.daemon(
        meta.GROUP,
        meta.VERSION,
        "modelreleases",
        registry=registry,
        labels=release_filter,
        cancellation_timeout=5.0,
        backoff=1.0,
    )
    async def run_release(**kwargs: Any) -> None:
        name: str = kwargs["name"]
        namespace: str = kwargs["namespace"]
        stopped: kopf.DaemonStopped = kwargs["stopped"]
        logger: logging.Logger = kwargs["logger"]
        retry: int = kwargs["retry"]
        wakeup = wakeups.get(namespace, name)
        conflicts = 0
        pace: pacing.Pace | None = None
        while not stopped:
            wakeup.clear()  # cleared before observing: a change during the reconcile wakes the next loop
            try:
                outcome = await asyncio.to_thread(timed, namespace, name, logger)
            except errors.ConflictError as exc:
                # Someone (often Kopf itself, adding its finalizer) wrote first: decide again on fresh data.
                conflicts += 1
                if conflicts > MAX_QUICK_CONFLICTS:
                    raise kopf.TemporaryError(f"will retry: {exc}", delay=1.0) from exc
                logger.info("conflict, reconciling again: %s", exc)
                continue
            except errors.TransientError as exc:
                delay = pacing.plan_retry_delay(retry, config.backoff_max, rolling_out=True)
                phase = await asyncio.to_thread(
                    reconciler.record_transient_error, io, namespace, name, exc, delay, clock
                )
                if phase not in releasestatus.ROLLOUT_PHASES:
                    delay = pacing.plan_retry_delay(retry, config.backoff_max, rolling_out=False)
                raise kopf.TemporaryError(f"will retry in {delay:.1f}s: {exc}", delay=delay) from exc
            except errors.PermanentError as exc:
                logger.error("cannot reconcile: %s", exc)
                await asyncio.to_thread(reconciler.apply_permanent_error, io, namespace, name, exc, clock)
                outcome = reconciler.Reconciled(requeue_after=None)
            retry = conflicts = 0
            pace = pacing.plan_wait(
                pace,
                requeue_after=outcome.requeue_after,
                decided=outcome.actions,
                status_written=outcome.status_written,
                poll_interval=config.poll_interval,
            )
            if pace.repeats == 1:
                logger.warning(
                    "the same actions were decided twice with no visible effect; slowing down: %s",
                    ", ".join(type(a).__name__ for a in outcome.actions),
                )
            if pace.wait.total_seconds() > 0:
                await wait_for(wakeup, stopped, pace.wait.total_seconds())

    @kopf.on.delete(meta.GROUP, meta.VERSION, "modelreleases", registry=registry, labels=release_filter)
    def clean_up(**kwargs: Any) -> None:
        """Delete what the release owns at once (the garbage collector would, after its own delay), and
        say which user-owned route still names the deleted Services."""
        name: str = kwargs["name"]
        namespace: str = kwargs["namespace"]
        logger: logging.Logger = kwargs["logger"]
        wakeups.forget(namespace, name)
        if ORPHAN_FINALIZER in (kwargs["meta"].get("finalizers") or []):
            # `kubectl delete --cascade=orphan`: the API server's garbage collector orphans what the
            # release owns; it keeps serving as it is, routes included.
            logger.info(
                "deleted with orphan propagation: Deployments, Services and routes are left as they are"
            )
            return
        try:
            reconciler.clean_up_release(io, namespace, name, kwargs["uid"], kwargs["spec"], logger)
        except errors.TransientError as exc:
            raise kopf.TemporaryError(str(exc), delay=2) from exc

    own_finalizer = finalizer_for(config.label_selector)

    @kopf.on.event(meta.GROUP, meta.VERSION, "modelreleases", registry=registry, labels=release_filter)
    def release_changed(**kwargs: Any) -> None:
        wakeups.wake(kwargs["namespace"], kwargs["name"])
        if own_finalizer != LEGACY_FINALIZER and owes_legacy_cleanup(kwargs["meta"], own_finalizer):
            kwargs["logger"].info(
                "removing %s, left from before shards had finalizers of their own", LEGACY_FINALIZER
            )
            patch: kopf.Patch = kwargs["patch"]
            patch.fns.append(drop_legacy_finalizer)

    @kopf.index(
        meta.GROUP, meta.VERSION, "modelreleases", id="adopters", registry=registry, labels=release_filter
    )
    def adopters(**kwargs: Any) -> dict[tuple[str, str], str] | None:
        return adopted_deployment(kwargs["namespace"], kwargs["name"], kwargs["spec"])

    @kopf.on.event("apps", "v1", "deployments", registry=registry, labels=owned)
    def deployment_changed(**kwargs: Any) -> None:
        wakeups.wake(kwargs["namespace"], _release_of(kwargs))

    @kopf.on.event("apps", "v1", "deployments", registry=registry, labels={labels.RELEASE: kopf.ABSENT})
    def adopted_deployment_changed(**kwargs: Any) -> None:
        """A Deployment a release adopts (workloadRef) changed: its template may be a new revision."""
        index: kopf.Index[tuple[str, str], str] = kwargs["adopters"]
        for release in index.get((kwargs["namespace"], kwargs["name"]), []):
            wakeups.wake(kwargs["namespace"], release)

    @kopf.on.event("", "v1", "pods", registry=registry, labels=owned)
    def pod_changed(**kwargs: Any) -> None:
        wakeups.wake(kwargs["namespace"], _release_of(kwargs))

    @kopf.on.event(meta.GROUP, meta.VERSION, "approvals", registry=registry)
    def approval_changed(**kwargs: Any) -> None:
        wakeups.wake(kwargs["namespace"], kwargs["spec"].get("release"))

    return wakeups


def adopted_deployment(
    namespace: str, name: str, spec: Mapping[str, Any]
) -> dict[tuple[str, str], str] | None:
    """The index entry of a release that adopts a Deployment: (namespace, Deployment) -> release."""
    ref = ((spec.get("serving") or {}).get("workloadRef") or {}).get("name")
    return {(namespace, str(ref)): name} if ref else None


MAX_QUICK_CONFLICTS = 5
ORPHAN_FINALIZER = "orphan"  # set by the API server on a delete with propagationPolicy Orphan


def _release_of(kwargs: dict[str, Any]) -> str | None:
    """The release a Deployment or pod belongs to: its annotation (labels hold a bounded form)."""
    name: str | None = kwargs["annotations"].get(labels.RELEASE_NAME) or kwargs["labels"].get(labels.RELEASE)
    return name


async def wait_for(wakeup: asyncio.Event, stopped: kopf.DaemonStopped, seconds: float) -> None:
    """Until `wakeup` is set, the daemon is stopped, or `seconds` pass, whichever comes first."""
    waiters = [asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stopped.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
