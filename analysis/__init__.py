"""Canary analysis for modelrelease: metric specs, verdicts, the judge, its Prometheus source
and the traffic simulator (docs/analysis.md).

Importable without Kubernetes. The controller imports this package; this package never
imports the controller.
"""
