"""What each analysis run has already read from Prometheus, so a look asks only for what is new.

A cache, not state: the verdict is always the judge's over the run's whole window, and a
restarted controller (or an evicted entry) reads that window once and reaches the same verdict.
Each look re-reads the newest `RESETTLE` intervals as well, because a scrape that was late or an
ingestion lag can still change an interval that has just ended. An entry is used only for the
same run, template, arms and window start; anything else reads afresh.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Hashable

from analysis import counters, observations, prometheus, specs

RESETTLE = 2
MAX_RUNS = 512

Observed = dict[str, tuple[observations.IntervalSample, ...]]


@dataclasses.dataclass(frozen=True)
class _Entry:
    key: Hashable
    observed: Observed


class IntervalCache:
    def __init__(self, max_runs: int = MAX_RUNS) -> None:
        self._entries: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._max_runs = max_runs
        self.intervals_read = 0  # how many (metric, interval) pairs were asked of Prometheus

    def observe(
        self,
        source: prometheus.PrometheusSource,
        run: str,
        template: specs.AnalysisTemplateSpec,
        target: prometheus.Target,
        window: counters.Window,
    ) -> Observed:
        """Per metric, every interval of `window`: the cached ones and what Prometheus adds."""
        key = (template.model_dump_json(), target, window.start, window.interval, window.warmup)
        entry = self._entries.get(run)
        known = 0
        if entry is not None and entry.key == key:
            known = min(min((len(v) for v in entry.observed.values()), default=0), window.count)
            known = max(0, known - RESETTLE)
        rest = counters.Window(
            start=window.start + known * window.interval,
            interval=window.interval,
            count=window.count - known,
            warmup=window.warmup,
        )
        fresh: Observed = (
            source.fetch_observations(template, target, rest)
            if rest.count
            else {metric.name: () for metric in template.metrics}
        )
        self.intervals_read += rest.count * len(template.metrics)
        kept = entry.observed if entry is not None and known else {}
        observed = {name: (*kept.get(name, ())[:known], *samples) for name, samples in fresh.items()}
        self._entries[run] = _Entry(key, observed)
        self._entries.move_to_end(run)
        while len(self._entries) > self._max_runs:
            self._entries.popitem(last=False)
        return observed

    def forget(self, run: str) -> None:
        self._entries.pop(run, None)
