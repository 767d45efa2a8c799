"""Canary analysis for modelrelease: metric specs, verdict types and (later) the judge.

Importable without Kubernetes. The controller imports this package; this package never
imports the controller.
"""
