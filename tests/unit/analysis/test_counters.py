"""The Prometheus source's arithmetic: exact per-interval increases from raw counter samples."""

from __future__ import annotations

import math

import numpy as np

from analysis import counters

WINDOW = counters.Window(start=1000.0, interval=60.0, count=3)


def _series(times: list[float], values: list[float], **labels: str) -> counters.Series:
    return counters.Series(labels=labels, times=np.array(times), values=np.array(values))


def test_increases_are_differences_attributed_to_the_interval_of_the_later_sample() -> None:
    one = _series([1000, 1030, 1060, 1090, 1120, 1150, 1180], [5, 7, 10, 10, 14, 20, 21])
    assert counters.summed_increases([one], WINDOW) == [5.0, 4.0, 7.0]


def test_a_counter_that_drops_restarted_and_its_new_value_is_the_increase() -> None:
    one = _series([1000, 1030, 1060, 1090, 1120], [50, 60, 3, 8, 9])
    assert counters.summed_increases([one], WINDOW)[:2] == [13.0, 6.0]


def test_a_missed_scrape_moves_the_increase_to_the_next_sample_and_nan_is_skipped() -> None:
    one = _series([1000, 1030, 1090, 1120, 1150], [0, 10, 30, math.nan, 45])
    assert counters.summed_increases([one], WINDOW) == [10.0, 20.0, 15.0]


def test_an_arm_without_series_has_no_data_which_differs_from_zero_requests() -> None:
    flat = _series([1000, 1060, 1120, 1180], [4, 4, 4, 4])
    assert counters.summed_increases([], WINDOW) == [None, None, None]
    assert counters.summed_increases([flat], WINDOW) == [0.0, 0.0, 0.0]


def test_increases_of_a_pod_within_its_warmup_are_left_out() -> None:
    window = counters.Window(start=1000.0, interval=60.0, count=3, warmup=90.0)
    old = _series([910, 1000, 1060, 1120, 1180], [0, 10, 20, 30, 40])  # there before the window: warm
    new = _series([1030, 1060, 1090, 1120, 1150, 1180], [0, 100, 200, 300, 400, 500])  # started at 1030
    restarted = _series([910, 1000, 1060, 1090, 1120, 1180], [0, 10, 20, 1, 2, 3])  # restart seen at 1090
    assert counters.summed_increases([old], window) == [10.0, 10.0, 10.0]
    assert counters.summed_increases([new], window) == [0.0, 0.0, 200.0]
    assert counters.summed_increases([restarted], window) == [10.0, 0.0, 0.0]


def test_a_running_pod_read_raw_is_warm_at_the_window_start_even_with_a_five_minute_warmup() -> None:
    """A raw read's first sample of a running pod comes a scrape after the read's start, not at it:
    the read reaches a lookback further back than the warm-up, so the pod is known to be warm by
    `start`, and one that appeared within the warm-up before `start` is still cold."""
    window = counters.Window(start=10_000.0, interval=60.0, count=2, warmup=300.0)
    first = window.query_start + 15  # the first scrape inside the read
    running = _series([first, 9_700, 10_000, 10_060, 10_120], [0, 50, 100, 160, 220])
    arrived = _series([9_750, 10_000, 10_060, 10_120], [0, 10, 20, 30])  # warm at 10,050
    assert counters.summed_increases([running], window) == [60.0, 60.0]
    assert counters.summed_increases([arrived], window) == [0.0, 10.0]


def test_histogram_buckets_are_summed_per_edge_across_pods() -> None:
    pods = [
        _series([1000, 1060], [0, 3], le="0.1"),
        _series([1000, 1060], [0, 5], le="+Inf"),
        _series([1000, 1060], [0, 1], le="0.10"),
        _series([1000, 1060], [0, 4], le="+Inf"),
    ]
    window = counters.Window(start=1000.0, interval=60.0, count=1)
    rows = counters.grouped_increases(pods, window, "le", counters.normalise_edge)
    assert rows == [{"0.1": 4.0, "+Inf": 9.0}]


def test_gauges_average_every_warm_sample_in_the_interval() -> None:
    a = _series([1000, 1030, 1060], [0.5, 0.7, 0.6])
    b = _series([1030, 1060], [0.2, 0.4])
    means = counters.gauge_means([a, b], WINDOW)
    assert means[0] == (0.7 + 0.6 + 0.2 + 0.4) / 4
    assert np.isnan(means[1])


def _as_read(series: counters.Series, window: counters.Window) -> counters.Series:
    """What a range query for `window` returns of the series: its samples from the query's start."""
    keep = series.times >= window.query_start
    return counters.Series(series.labels, series.times[keep], series.values[keep])


def test_a_window_that_starts_inside_a_scrape_gap_counts_what_the_whole_window_counts() -> None:
    """Failed scrapes leave a counter stale for a while (here 38–52 s). A look that re-reads from a
    boundary inside the gap must still know the series and count the increase across the gap —
    the compact state folds such pieces and promises what one look over the whole window gives."""
    times = np.array([t for t in np.arange(0.0, 101.0) if not 38 < t < 52])
    pod = counters.Series({"pod": "canary"}, times, 10.0 * times)
    whole = counters.Window(start=20.0, interval=5.0, count=16, warmup=5.0)
    piece = counters.Window(start=45.0, interval=5.0, count=5, warmup=5.0)  # intervals 5–9 of whole
    everything = counters.summed_increases([_as_read(pod, whole)], whole)
    assert counters.summed_increases([_as_read(pod, piece)], piece) == everything[5:10]
    # (50, 55]: the increase across the gap (38 → 52: 140) and three 1 s scrapes after it (30).
    assert everything[6] == 170.0
