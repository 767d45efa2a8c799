"""From raw Prometheus samples to per-interval counts: the pure half of the Prometheus source.

Counters are differenced per series, so the counts are exact integers (no `increase()`
extrapolation) and the arms compare on the same interval boundaries:
* a drop in a counter is a restart: the new value is the increase since it;
* a missed scrape just makes the next difference span two scrapes;
* NaN samples are skipped;
* increases within `warmup` after a series appears (a new pod) or restarts are left out,
  because a cold pod is not the model being judged.
An interval in which an arm has no series at all has no data (None), which is not the same
as a series that saw no requests (0).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


# Prometheus' default lookback delta: a range query bridges gaps up to this long.
LOOKBACK_SECONDS = 300.0


@dataclasses.dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]
    times: FloatArray  # epoch seconds, increasing
    values: FloatArray


@dataclasses.dataclass(frozen=True)
class Window:
    """Interval boundaries in epoch seconds, and what to leave out after a pod starts."""

    start: float
    interval: float
    count: int
    warmup: float = 0.0

    @property
    def boundaries(self) -> FloatArray:
        return self.start + self.interval * np.arange(self.count + 1, dtype=np.float64)

    @property
    def known_from(self) -> float:
        """A series first seen after this is a pod that started inside the read: its first `warmup`
        is left out. One seen at or before it is warm by `start`, whether it began there or long
        before (a raw read cannot tell which, and need not)."""
        return self.start - self.warmup

    @property
    def query_start(self) -> float:
        """Where to read from: Prometheus' lookback (5 minutes) before `known_from`, so a running
        series is seen before it — a scrape gap at `start` (failed scrapes mark a series stale) can
        last up to the lookback, and the increase across it lands in the interval that ends it.
        Reading from `start - warmup` only, a look that re-read from a boundary inside such a gap took
        the series for a new pod: its increases were dropped as warm-up and the one across the gap
        was never seen (issue 28: incremental looks counted a quarter of the canary's requests that
        one look over the same window counts)."""
        return self.known_from - LOOKBACK_SECONDS

    def index_of(self, times: FloatArray) -> npt.NDArray[np.int64]:
        """Interval holding each time: (start + k·I, start + (k+1)·I]; -1 outside the window."""
        k = np.ceil((times - self.start) / self.interval).astype(np.int64) - 1
        return np.where((k >= 0) & (k < self.count), k, -1)


def _pod_starts(series: Series, window: Window, restarts: npt.NDArray[np.bool_]) -> FloatArray:
    """For each sample, when the pod behind the series last started (-inf: long enough ago)."""
    starts = np.where(restarts, series.times, -math.inf)
    # A series that appears after `known_from` is a new pod; one seen by then is warm at `start`.
    if len(series.times) and series.times[0] > window.known_from:
        starts[0] = series.times[0]
    return np.asarray(np.maximum.accumulate(starts), dtype=np.float64)


def _warm_mask(series: Series, window: Window, restarts: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """True for samples taken after the pod behind the series was warm."""
    if window.warmup <= 0:
        return np.ones(len(series.times), dtype=bool)
    return np.asarray(series.times >= _pod_starts(series, window, restarts) + window.warmup, dtype=bool)


def counter_increases(series: Series, window: Window) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """(increase per interval, whether the series had samples in it) for one counter series."""
    finite = np.isfinite(series.values)
    times, values = series.times[finite], series.values[finite]
    totals = np.zeros(window.count)
    present = np.zeros(window.count, dtype=bool)
    if not len(times):
        return totals, present
    seen = window.index_of(times)
    present[seen[seen >= 0]] = True
    if len(times) < 2:
        return totals, present
    delta = np.diff(values)
    restarted = delta < 0
    increase = np.where(restarted, values[1:], delta)
    restarts = np.concatenate([[False], restarted])
    # An increase counts only if it began after the pod was warm (the restart's own increase never does).
    started = _pod_starts(Series(series.labels, times, values), window, restarts)[1:]
    warm = times[:-1] >= started + window.warmup if window.warmup > 0 else np.ones(len(delta), dtype=bool)
    where = seen[1:]
    keep = (where >= 0) & warm
    np.add.at(totals, where[keep], increase[keep])
    return totals, present


def gauge_means(series: Sequence[Series], window: Window) -> FloatArray:
    """Mean of all warm, finite samples of all series per interval; NaN where there are none."""
    sums = np.zeros(window.count)
    counts = np.zeros(window.count)
    for one in series:
        finite = np.isfinite(one.values)
        times, values = one.times[finite], one.values[finite]
        warm = _warm_mask(Series(one.labels, times, values), window, np.zeros(len(times), dtype=bool))
        where = window.index_of(times)
        keep = (where >= 0) & warm
        np.add.at(sums, where[keep], values[keep])
        np.add.at(counts, where[keep], 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def summed_increases(series: Sequence[Series], window: Window) -> list[float | None]:
    """Increase of all series together per interval; None where no series had samples."""
    totals = np.zeros(window.count)
    present = np.zeros(window.count, dtype=bool)
    for one in series:
        increase, seen = counter_increases(one, window)
        totals += increase
        present |= seen
    return [float(t) if p else None for t, p in zip(totals, present, strict=True)]


def grouped_increases(
    series: Sequence[Series], window: Window, label: str, key: Callable[[str], str] = str
) -> list[dict[str, float] | None]:
    """Per interval, the summed increase per value of `label` (e.g. `le` or `class`)."""
    groups: dict[str, list[Series]] = {}
    for one in series:
        if label in one.labels:
            groups.setdefault(key(one.labels[label]), []).append(one)
    by_group = {name: summed_increases(members, window) for name, members in groups.items()}
    rows: list[dict[str, float] | None] = []
    for index in range(window.count):
        row = {name: values[index] for name, values in by_group.items() if values[index] is not None}
        rows.append({name: float(value) for name, value in row.items() if value is not None} or None)
    return rows


def normalise_edge(le: str) -> str:
    """'0.1', '1e-01' and '0.10' are one edge; '+Inf' stays '+Inf'."""
    value = float(le)
    return "+Inf" if math.isinf(value) else f"{value:.6g}"
