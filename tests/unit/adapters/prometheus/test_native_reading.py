"""Reading native histograms: which series is the native one, and what a sample says at each edge."""

from __future__ import annotations

from controller.adapters.prometheus import prometheus_source


def test_a_classic_selector_names_its_native_histogram_and_anything_else_names_none() -> None:
    assert prometheus_source.native_query('inference_latency_seconds_bucket{release="x"}') == (
        'inference_latency_seconds{release="x"}'
    )
    assert prometheus_source.native_query("vllm:time_to_first_token_seconds_bucket") == (
        "vllm:time_to_first_token_seconds"
    )
    assert prometheus_source.native_query('sum by (le) (rate(x_bucket{a="b"}[1m]))') is None
    assert prometheus_source.native_query("x_count") is None


def test_a_native_histogram_sample_reads_as_counts_at_or_below_each_edge() -> None:
    item = {
        "metric": {"pod": "p"},
        "histograms": [
            [
                100.0,
                {
                    "count": "10",
                    "sum": "3",
                    "buckets": [[0, "0.4204482076268573", "0.5", "4"], [0, "0.5", "0.5946035575013605", "6"]],
                },
            ]
        ],
    }
    read = {one.labels["le"]: float(one.values[0]) for one in prometheus_source.native_as_classic(item)}
    assert read["0.420448"] == 0
    assert read["0.5"] == 4
    assert read["0.594604"] == 10
    assert read["+Inf"] == 10
