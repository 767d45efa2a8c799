"""A whole emulated cluster in one background thread: API server on 127.0.0.1, simulator, kubeconfig.

Tests and `modelrelease sandbox` start one; the controller and kubectl reach it over HTTP through
the kubeconfig it writes, exactly as they would reach a real cluster.
"""

from __future__ import annotations

import asyncio
import pathlib
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import kmock
import yaml

from controller.sandbox import apiserver, errors, faults, simulator, store, thirdparty

CLIENT = "sandbox-admin"
T = TypeVar("T")


class SandboxCluster:
    def __init__(
        self,
        *,
        seed: int = 0,
        pods: simulator.PodBehaviour = simulator.DEFAULT_BEHAVIOUR,
        max_watch_events: int = store.MAX_WATCH_EVENTS,
        max_write_records: int = store.MAX_WRITE_RECORDS,
    ) -> None:
        self.store = store.Store(
            seed=seed, max_watch_events=max_watch_events, max_write_records=max_write_records
        )
        self.faults = faults.FaultInjector()
        self.simulator = simulator.WorkloadSimulator(self.store, default=pods, seed=seed)
        self.server = apiserver.EmulatedApiServer(store=self.store, faults=self.faults)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self.port = 0
        self._changed = threading.Condition()
        self.store.subscribe(self._wake_simulator)
        self.store.subscribe(self._notify_waiters)
        for crd in (*thirdparty.KOPF_PEERING, *thirdparty.TRAFFIC):
            self.create(crd)
        for namespace in ("default", "kube-system"):  # what every cluster starts with
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ----- lifecycle ---------------------------------------------------------------------------
    def start(self, port: int = 0) -> SandboxCluster:
        self.port = port
        self._thread = threading.Thread(target=self._run, name="sandbox-cluster", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout=30):
            raise RuntimeError("the sandbox cluster did not start within 30 s")
        if self._failure is not None:
            raise RuntimeError(f"the sandbox cluster failed to start: {self._failure}") from self._failure
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> SandboxCluster:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(), which re-raises in the caller's thread
            self._failure = exc
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.server._loop = self._loop
        async with kmock.Server(self.server, host="127.0.0.1", port=self.port or None) as http:
            self.port = http.port
            simulation = asyncio.create_task(self.simulator.run())
            self._started.set()
            await self._stop.wait()
            simulation.cancel()
            self.server.end_watches()

    def _wake_simulator(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.simulator.wakeup.set)

    def _notify_waiters(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def wait_until(self, condition: Callable[[], T | None], *, timeout: float, what: str = "") -> T:
        """Block until `condition()` is truthy (re-checked after every write); its value, or TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = condition()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"not within {timeout} s: {what or condition}")
                self._changed.wait(timeout=min(remaining, 1.0))

    # ----- conveniences for tests and the demo -------------------------------------------------
    def write_kubeconfig(self, path: pathlib.Path, namespace: str = "default") -> pathlib.Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sandbox", "cluster": {"server": self.url}}],
            "users": [{"name": "sandbox", "user": {}}],
            "contexts": [
                {
                    "name": "sandbox",
                    "context": {"cluster": "sandbox", "user": "sandbox", "namespace": namespace},
                }
            ],
            "current-context": "sandbox",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create `obj` (any served kind) as an administrator would with kubectl create."""
        group, _, version = obj["apiVersion"].rpartition("/")
        rtype = next(
            (t for t in self.store.types() if (t.group, t.version, t.kind) == (group, version, obj["kind"])),
            None,
        )
        if rtype is None:
            raise errors.ApiError(404, "NotFound", f"no kind {obj['kind']} in {obj['apiVersion']}")
        namespace = obj.get("metadata", {}).get("namespace", "default") if rtype.namespaced else ""
        return self.store.create(rtype, namespace, obj, client=CLIENT)

    def install_crds(self, paths: Iterable[pathlib.Path]) -> None:
        for path in paths:
            for document in yaml.safe_load_all(path.read_text()):
                # A folder of CRDs may hold its kustomization.yaml too: only the CRDs are installed.
                if document and document.get("kind") == "CustomResourceDefinition":
                    self.create(document)
