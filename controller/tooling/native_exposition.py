"""Serve a simulated fleet's latency as a Prometheus *native* histogram, in the protobuf exposition.

Native (exponential) histograms travel only in the protobuf format (`io.prometheus.client.
MetricFamily`, length-delimited), which Prometheus asks for when started with
`--enable-feature=native-histograms`. prometheus_client for Python cannot write them, so this
module encodes the few messages it needs by hand (the field numbers are those of client_model's
metrics.proto). The fleet's bucket edges must be the boundaries of one schema, 2^(k / 2^schema)
for consecutive k (`schema_edges`): each pod's counts between two edges are then exactly one
native bucket. Each scrape advances the fleet by the wall-clock time since the previous one, as
`exporter.FleetCollector` does for the text format.
"""

from __future__ import annotations

import http.server
import struct
import threading
import time
from collections.abc import Callable

import numpy as np

from analysis.tooling import openmetrics

CONTENT_TYPE = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
HISTOGRAM = 4  # MetricType.HISTOGRAM
SCHEMA = 3  # boundaries 2^(1/8) ≈ 9 % apart: what client_golang's default bucket factor 1.1 gives


def schema_edges(lowest: int = -112, highest: int = 56, schema: int = SCHEMA) -> np.ndarray:
    """The bucket boundaries 2^(k / 2^schema) for k from `lowest` to `highest`."""
    return np.asarray(2.0 ** (np.arange(lowest, highest + 1) / 2.0**schema), dtype=np.float64)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _message(field: int, body: bytes) -> bytes:
    return _key(field, 2) + _varint(len(body)) + body


def _uint(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(value)


def _sint(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(_zigzag(value))


def _double(field: int, value: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", value)


def _text(field: int, value: str) -> bytes:
    return _message(field, value.encode())


def native_histogram(counts: np.ndarray, first_index: int, total: int, total_sum: float) -> bytes:
    """A Histogram message: bucket i (upper bound 2^((first_index + i) / 2^SCHEMA)) holds counts[i]."""
    body = _uint(1, total) + _double(2, total_sum) + _sint(5, SCHEMA) + _double(6, 0.0) + _uint(7, 0)
    populated = np.flatnonzero(counts > 0)
    if not len(populated):
        return body + _message(12, _sint(1, 0) + _uint(2, 0))  # a no-op span: native, but empty
    start, end = int(populated[0]), int(populated[-1])
    span = _sint(1, first_index + start) + _uint(2, end - start + 1)
    deltas, previous = bytearray(), 0
    for count in counts[start : end + 1].astype(np.int64):
        deltas += _varint(_zigzag(int(count) - previous))
        previous = int(count)
    return body + _message(12, span) + _message(13, bytes(deltas))


def latency_family(fleet: openmetrics.PodFleet, first_index: int) -> bytes:
    """The fleet's latency family, one native histogram per pod, length-delimited."""
    metrics = b""
    for _, pod, _ in fleet.pods:
        labels = b"".join(_message(1, _text(1, name) + _text(2, value)) for name, value in pod.labels.items())
        cumulative = np.concatenate([pod.buckets, [pod.requests]])
        counts = np.diff(np.concatenate([[0.0], cumulative]))
        histogram = native_histogram(counts, first_index, round(pod.requests), pod.latency_sum)
        metrics += _message(4, labels + _message(7, histogram))
    family = _text(1, openmetrics.LATENCY) + _text(2, "Inference latency.") + _uint(3, HISTOGRAM) + metrics
    return _varint(len(family)) + family


def serve(
    fleet: openmetrics.PodFleet,
    port: int,
    *,
    first_index: int,
    clock: Callable[[], float] = time.monotonic,
    address: str = "127.0.0.1",
) -> http.server.ThreadingHTTPServer:
    """Serve `/metrics` in a daemon thread; `first_index` is the index of the fleet's first edge."""
    lock = threading.Lock()
    started = clock()
    last = [started]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with lock:
                now = clock()
                if now > last[0]:
                    fleet.advance(now - started, now - last[0])
                    last[0] = now
                body = latency_family(fleet, first_index)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes every second would flood the test output."""

    server = http.server.ThreadingHTTPServer((address, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
