"""Failed scrapes on a real Prometheus: the source counts every request a target reported.

A target that answers only in even wall-clock seconds fails every other 1 s scrape, and Prometheus
marks its series stale at each failure. The judge's intervals here are 2 s long and start at even
seconds, so the last scrape before every boundary is a failed one: a source that evaluates the
counter at the boundaries (a range query) sees no value at any of them, and reads the pod as silent
though Prometheus holds every one of its samples. This is what the side-by-side benchmark hit with
a fleet too slow for its scrapes (issue 28): canaries with thousands of stored requests judged
"no canary data", Inconclusive.
"""

from __future__ import annotations

import http.server
import math
import threading
import time
from collections.abc import Iterator

import pytest

from analysis import counters
from controller.adapters.prometheus import prometheus_source
from tests.integration import prometheus_server

PER_SCRAPE = 1000  # requests the pod reports between two answered scrapes
ANSWERED = 8  # answered scrapes that carry new requests; later ones repeat the last count


class FlakyTarget:
    """Answers a scrape only in even seconds (HTTP 500 otherwise); its counter starts at 0 and grows
    by PER_SCRAPE at each answered scrape, ANSWERED times, then stays."""

    def __init__(self) -> None:
        self.answered = 0
        self.first_answer: float | None = None
        self._lock = threading.Lock()
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                now = time.time()
                if math.floor(now) % 2:
                    self.send_error(500, "the pod is too busy to be scraped")
                    return
                with target._lock:
                    count = PER_SCRAPE * min(target.answered, ANSWERED)
                    target.answered += 1
                    target.first_answer = target.first_answer or now
                body = f'requests_total{{pod="canary-0"}} {count}\n'.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FlakyTarget:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def scraped(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[prometheus_server.PrometheusServer, float]]:
    """Prometheus after it has stored the target's final count, and the even second before the
    target's first answer: the window starts there, so its boundaries are all even seconds."""
    started = math.floor(time.time())
    started -= started % 2
    with FlakyTarget() as target:
        server = prometheus_server.PrometheusServer(
            tmp_path_factory.mktemp("flaky"), scrape_targets=[target.address]
        ).start()
        try:
            final = f"{PER_SCRAPE * ANSWERED:g}"
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:  # waiting on a real server's scrapes, with a deadline
                found = server.query("max_over_time(requests_total[1m])")
                # Stored, and answered once more since: the final count is at least 2 s old.
                if found and found[0]["value"][1] == final and target.answered > ANSWERED + 1:  # type: ignore[index]
                    break
                time.sleep(0.5)
            assert found, "Prometheus never stored the target's count"
            assert found[0]["value"][1] == final, "Prometheus never stored the final count"  # type: ignore[index]
            # The window must have started before the series: its first sample is the pod's start.
            assert target.first_answer is not None
            assert target.first_answer > started
            yield server, started
        finally:
            server.stop()


def test_a_target_failing_every_other_scrape_has_every_request_counted_in_the_interval_it_reported_it(
    scraped: tuple[prometheus_server.PrometheusServer, float],
) -> None:
    server, started = scraped
    # Every whole interval up to now: the final count was stored at least one answered scrape ago.
    window = counters.Window(start=started, interval=2.0, count=int((time.time() - started) // 2), warmup=0.0)
    with prometheus_source.PrometheusSource(server.url) as source:
        [series] = source.fetch_series('requests_total{pod="canary-0"}', window)
    increases, present = counters.counter_increases(series, window)
    # Every answered scrape after the first brought PER_SCRAPE requests: all of them are counted.
    assert increases.sum() == PER_SCRAPE * ANSWERED
    # Each 2 s interval from the first answer on holds one answered scrape, so each has data.
    first = int(present.argmax())
    assert present[first:].all(), f"intervals without data after the pod's first sample: {present}"
