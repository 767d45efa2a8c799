"""The reference AnalysisTemplate: the metrics the simulator exports, judged with sensible margins.

Used by the docs' example, the benchmark, and the real-Prometheus tests. Margins:
errors may rise 20 % relative or 0.1 percentage point, whichever is larger; the median latency
5 %, the p99 10 %; GPU utilisation 5 %; an output class share 20 % relative or 0.5 point.
α = 5 % is split so that each of errors, p50, p99, GPU and the output distribution gets 1 %;
β = 10 %.
"""

from __future__ import annotations

from typing import Any

from analysis import specs

# An arm is its revision: the pods carry their release and revision labels, not their track (a
# Deployment's track changes at promotion, and a pod template label would restart its pods).
ARM = 'namespace="{{namespace}}", release="{{release}}", revision="{{revision}}"'


def reference_manifest(name: str = "inference-slo", interval: str = "1m") -> dict[str, Any]:
    return {
        "apiVersion": "modelrelease.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {
            "interval": interval,
            "alpha": 0.05,
            "beta": 0.1,
            "metrics": [
                {
                    "name": "errors",
                    "kind": "errorRate",
                    "errorRate": {
                        "requests": f"inference_requests_total{{{ARM}}}",
                        "errors": f"inference_errors_total{{{ARM}}}",
                    },
                    "margin": {"relative": 0.2, "absolute": 0.001},
                    "minRequests": 500,
                },
                {
                    "name": "latency-p50",
                    "kind": "latency",
                    "latency": {"buckets": f"inference_latency_seconds_bucket{{{ARM}}}", "quantiles": [0.5]},
                    "margin": {"relative": 0.05},
                    "minRequests": 500,
                },
                {
                    "name": "latency-p99",
                    "kind": "latency",
                    "latency": {"buckets": f"inference_latency_seconds_bucket{{{ARM}}}", "quantiles": [0.99]},
                    "margin": {"relative": 0.1},
                    "minRequests": 500,
                },
                {
                    "name": "gpu-utilization",
                    "kind": "gauge",
                    "gauge": {"value": f"gpu_utilization{{{ARM}}}"},
                    "margin": {"relative": 0.05},
                    "minRequests": 0,
                },
                {
                    "name": "predictions",
                    "kind": "distribution",
                    "distribution": {"counts": f"inference_predictions_total{{{ARM}}}", "label": "class"},
                    "margin": {"relative": 0.2, "absolute": 0.005},
                    "critical": True,
                    "minRequests": 500,
                },
            ],
        },
    }


def reference_template(interval: str = "1m") -> specs.AnalysisTemplateSpec:
    return specs.AnalysisTemplateSpec.model_validate(reference_manifest(interval=interval)["spec"])
