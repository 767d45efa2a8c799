"""Serve a simulated fleet's live `/metrics` with prometheus_client, for scrape tests and demos.

Each scrape advances the fleet by the wall-clock time since the previous one, so Prometheus
sees counters growing at the scenario's request rate. The clock is a parameter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from analysis.tooling import openmetrics, traffic_simulator


class FleetCollector(Collector):
    def __init__(self, fleet: openmetrics.PodFleet, clock: Callable[[], float] = time.monotonic) -> None:
        self._fleet = fleet
        self._clock = clock
        self._started = clock()
        self._last = self._started
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = self._clock()
            if now > self._last:
                self._fleet.advance(now - self._started, now - self._last)
                self._last = now
            yield from self._families()

    def _families(self) -> Iterator[Metric]:
        pods = [pod for _, pod, _ in self._fleet.pods]
        names = list(pods[0].labels) if pods else []
        requests = CounterMetricFamily(openmetrics.REQUESTS, "Inference requests served.", labels=names)
        errors = CounterMetricFamily(openmetrics.ERRORS, "Inference requests failed.", labels=names)
        latency = HistogramMetricFamily(openmetrics.LATENCY, "Inference latency.", labels=names)
        gpu = GaugeMetricFamily(openmetrics.GPU, "GPU utilisation, 0 to 1.", labels=names)
        predictions = CounterMetricFamily(
            openmetrics.PREDICTIONS, "Predictions by class.", labels=[*names, "class"]
        )
        for pod in pods:
            values = list(pod.labels.values())
            requests.add_metric(values, pod.requests)
            errors.add_metric(values, pod.errors)
            buckets = [
                (f"{edge:.6g}", float(count))
                for edge, count in zip(self._fleet.edges, pod.buckets, strict=True)
            ]
            latency.add_metric(values, [*buckets, ("+Inf", pod.requests)], pod.latency_sum)
            gpu.add_metric(values, pod.gpu)
            for name, count in zip(traffic_simulator.CLASSES, pod.classes, strict=True):
                predictions.add_metric([*values, name], float(count))
        yield from (requests, errors, latency, gpu, predictions)


def serve(
    fleet: openmetrics.PodFleet, port: int, address: str = "127.0.0.1"
) -> tuple[WSGIServer, threading.Thread]:
    """Start serving `/metrics` in a daemon thread; call `server.shutdown()` to stop."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(fleet))
    return start_http_server(port, addr=address, registry=registry)
