"""The Prometheus source: both arms' raw samples → what the judge reads.

The Prometheus wing's reading half (`analysis`, the judge, does no I/O). It renders each
metric's PromQL per arm, asks Prometheus for the raw samples of each series over the window
(and Prometheus' lookback before it; an expression that has no raw samples is evaluated at a
step that divides the interval), and hands them to `counters` for the arithmetic. Failures
surface as `SourceError` naming the query, which the controller treats as transient.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from pydantic import ValidationError

from analysis import counters, readings, specs

MAX_STEP_SECONDS = 15.0
# Where a native (exponential) histogram is read: every boundary of schema 2, 2^(k/4) — 19 % apart
# — from 61 µs to 128 s. A histogram of schema ≥ 2 (client libraries default to 3) has each of them
# as a bucket boundary, so the counts below each are exact; at a coarser schema an edge that is no
# boundary counts the buckets wholly below it.
NATIVE_EDGES = 2.0 ** (np.arange(-56, 29) / 4.0)
_SELECTOR = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)_bucket(\{.*\})?\s*$", re.DOTALL)


def native_query(buckets: str) -> str | None:
    """The native histogram beside a classic one: `name_bucket{…}` without the `_bucket` (None when
    the classic query is more than a selector, so there is no native series to name)."""
    found = _SELECTOR.match(buckets)
    return None if found is None else found.group(1) + (found.group(2) or "")


# A series selector and nothing else: an optional metric name, then optional label matchers whose
# quoted values may hold any character. Only these have raw samples to read as a range vector.
_PLAIN_SELECTOR = re.compile(
    r"""^\s*(?=[a-zA-Z_:{])([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*"""
    r"""(\{(?:[^{}"'`]|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)*\})?\s*$""",
    re.DOTALL,
)


def is_selector(query: str) -> bool:
    """Whether the query is a plain series selector (`name{label="value", …}`), not an expression."""
    return _PLAIN_SELECTOR.match(query) is not None


class SourceError(Exception):
    """Prometheus could not answer; the message names the query."""


class DataError(ValueError):
    """Prometheus answered with what is not counts (a rate, a gauge where a counter belongs)."""


@dataclasses.dataclass(frozen=True)
class ArmSelector:
    """Template variables for one arm: `revision` and `track` differ between canary and baseline."""

    revision: str
    track: str


@dataclasses.dataclass(frozen=True)
class Target:
    namespace: str
    release: str
    canary: ArmSelector
    baseline: ArmSelector
    model: str = ""

    def variables(self, arm: ArmSelector, interval: timedelta) -> dict[str, str]:
        return {
            "namespace": self.namespace,
            "release": self.release,
            "revision": arm.revision,
            "track": arm.track,
            "model": self.model,
            "interval": f"{int(interval.total_seconds())}s",
        }


def build_window(start: datetime, end: datetime, interval: timedelta, warmup: timedelta) -> counters.Window:
    """Whole intervals from `start` (taken up to the next whole second) that have ended by `end`.

    Whole seconds because a range query's start is: the client rounds it (prometheus-api-client
    sends `round(start)`), and a start rounded *up* past a series' first sample would make every
    running pod look newly started and its first warm-up of traffic vanish from each look.
    """
    first = math.ceil(start.timestamp())
    length = interval.total_seconds()
    count = max(0, int((end.timestamp() - first) // length))
    return counters.Window(start=first, interval=length, count=count, warmup=warmup.total_seconds())


def first_interval_from(window: counters.Window, moment: datetime) -> int:
    """The index of the window's first interval that starts at or after `moment` (0 if before it)."""
    return max(0, math.ceil((moment.timestamp() - window.start) / window.interval))


class PrometheusSource:
    def __init__(self, url: str, *, timeout: float = 10.0, token_file: pathlib.Path | None = None) -> None:
        self.url = url
        self._token_file = token_file
        self._session = requests.Session()
        self._client = PrometheusConnect(url=url, timeout=math.ceil(timeout), session=self._session)

    def _authorise(self) -> None:
        """Bearer token from a file, re-read on every query so a rotated token is picked up; never logged."""
        if self._token_file is None:
            return
        try:
            token = self._token_file.read_text().strip()
        except OSError as error:
            raise SourceError(
                f"cannot read the Prometheus token file {self._token_file}: {error.strerror}"
            ) from None
        self._client.headers = {"Authorization": f"Bearer {token}"}

    def close(self) -> None:
        """Close the pooled connections (a long-lived controller keeps them open)."""
        self._session.close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def fetch_series(self, query: str, window: counters.Window) -> list[counters.Series]:
        """Every series the query selects, from `window.query_start` to the window's end.

        A plain selector is read raw: one instant query of a range vector returns every scraped
        sample and never a staleness marker. Evaluating it every step instead (a range query)
        answers nothing at a step whose last event was a failed scrape — Prometheus marks a
        target's series stale on each — so under failing scrapes whole intervals read as "no data"
        and a new pod's first samples fall into its warm-up (issue 28: canaries with thousands of
        requests in Prometheus judged silent). An expression (`sum by (le) (…)`, a function) has no
        raw samples and is evaluated at a step that divides the interval."""
        end = math.ceil(window.start + window.interval * window.count)
        # Whole seconds, never later than the query start: a first sample after `known_from` would
        # read as a pod that just started (see build_window).
        first = math.floor(window.query_start)
        self._authorise()
        try:
            if is_selector(query):
                result = self._client.custom_query(
                    f"{query}[{(end - first) * 1000}ms]", params={"time": str(end)}
                )
            else:
                step = window.interval / max(1, math.ceil(window.interval / MAX_STEP_SECONDS))
                result = self._client.custom_query_range(
                    query,
                    start_time=datetime.fromtimestamp(first, UTC),
                    end_time=datetime.fromtimestamp(end, UTC),
                    step=f"{step:g}s",
                )
        except (PrometheusApiClientException, requests.RequestException) as error:
            raise SourceError(f"Prometheus at {self.url} did not answer {query!r}: {error}") from error
        series = []
        for item in result:
            if "histograms" in item:
                series.extend(native_as_classic(item))
                continue
            values = np.array([float(v) for _, v in item.get("values", [])], dtype=np.float64)
            times = np.array([float(t) for t, _ in item.get("values", [])], dtype=np.float64)
            series.append(counters.Series(labels=dict(item.get("metric", {})), times=times, values=values))
        return series

    def fetch_observations(
        self, template: specs.AnalysisTemplateSpec, target: Target, window: counters.Window
    ) -> dict[str, tuple[readings.IntervalSample, ...]]:
        result: dict[str, tuple[readings.IntervalSample, ...]] = {}
        for metric in template.metrics:
            try:
                variables = [
                    target.variables(arm, template.interval) for arm in (target.canary, target.baseline)
                ]
                natives = self._native(metric, variables, window)
                arms = [
                    self._fetch_arm(metric, given, window, native)
                    for given, native in zip(variables, natives, strict=True)
                ]
            except ValidationError as error:
                problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors())
                raise DataError(
                    f"metric {metric.name}: its queries do not select raw counters: {problems}"
                ) from None
            result[metric.name] = tuple(
                readings.IntervalSample(
                    start=datetime.fromtimestamp(window.start + index * window.interval, UTC),
                    canary=arms[0][index],
                    baseline=arms[1][index],
                )
                for index in range(window.count)
            )
        return result

    def _native(
        self, metric: specs.MetricSpec, arms: Sequence[Mapping[str, str]], window: counters.Window
    ) -> list[list[counters.Series] | None]:
        """Both arms' native histograms, read as classic buckets at `NATIVE_EDGES`, when both arms
        export one; otherwise None for each (the classic buckets are read, so the arms share edges)."""
        query = native_query(metric.latency.buckets) if metric.latency is not None else None
        if query is None:
            return [None for _ in arms]
        found = [self.fetch_series(specs.render_query(query, variables), window) for variables in arms]
        if all(any(one.labels.get("le") for one in arm) for arm in found):
            return list(found)
        return [None for _ in arms]

    def _fetch_arm(
        self,
        metric: specs.MetricSpec,
        variables: Mapping[str, str],
        window: counters.Window,
        native: list[counters.Series] | None = None,
    ) -> list[readings.ArmSample]:
        def series(query: str) -> list[counters.Series]:
            return self.fetch_series(specs.render_query(query, variables), window)

        empty = [readings.ArmSample() for _ in range(window.count)]
        if metric.error_rate is not None:
            requests_ = counters.summed_increases(series(metric.error_rate.requests), window)
            errors = counters.summed_increases(series(metric.error_rate.errors), window)
            return [
                readings.ArmSample(requests=r, errors=min(e or 0.0, r)) if r is not None else sample
                for r, e, sample in zip(requests_, errors, empty, strict=True)
            ]
        if metric.latency is not None:
            found = native if native is not None else series(metric.latency.buckets)
            rows = counters.grouped_increases(found, window, "le", counters.normalise_edge)
            return [
                readings.ArmSample(buckets=row) if row is not None and "+Inf" in row else sample
                for row, sample in zip(rows, empty, strict=True)
            ]
        if metric.gauge is not None:
            means = counters.gauge_means(series(metric.gauge.value), window)
            loads: list[float | None] = [None] * window.count
            if metric.gauge.per_request and metric.gauge.requests:
                loads = counters.summed_increases(series(metric.gauge.requests), window)
            return [
                readings.ArmSample(value=float(v), requests=load) if math.isfinite(v) else sample
                for v, load, sample in zip(means, loads, empty, strict=True)
            ]
        if metric.agreement is not None:
            rows = counters.grouped_increases(
                series(metric.agreement.comparisons), window, metric.agreement.label
            )
            return [
                readings.ArmSample(counts=row) if row is not None else sample
                for row, sample in zip(rows, empty, strict=True)
            ]
        assert metric.distribution is not None
        rows = counters.grouped_increases(
            series(metric.distribution.counts), window, metric.distribution.label
        )
        return [
            readings.ArmSample(counts=row) if row is not None else sample
            for row, sample in zip(rows, empty, strict=True)
        ]


def native_as_classic(item: Mapping[str, Any]) -> list[counters.Series]:
    """One native histogram series as classic ones: per edge of `NATIVE_EDGES`, the count of
    observations at or below it (buckets wholly below; the zero bucket by its upper bound), and
    "+Inf", the count. They are counters like classic buckets, so restarts and warm-up are read alike."""
    labels = dict(item.get("metric", {}))
    samples: list[tuple[float, dict[str, Any]]] = item.get("histograms", [])
    times = np.array([float(t) for t, _ in samples], dtype=np.float64)
    below = np.zeros((len(times), len(NATIVE_EDGES)))
    totals = np.zeros(len(times))
    for row, (_, histogram) in enumerate(samples):
        totals[row] = float(histogram.get("count", "nan"))
        for _, _, upper, count in histogram.get("buckets", []):
            # Bucket boundaries are printed with float precision: compare with a tolerance.
            reached = float(upper) * (1 - 1e-9) <= NATIVE_EDGES
            below[row, reached] += float(count)
    series = [
        counters.Series(labels={**labels, "le": f"{edge:.6g}"}, times=times, values=below[:, index])
        for index, edge in enumerate(NATIVE_EDGES)
    ]
    series.append(counters.Series(labels={**labels, "le": "+Inf"}, times=times, values=totals))
    return series
