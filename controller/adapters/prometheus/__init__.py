"""The Prometheus wing: range queries for both arms (`prometheus_source`) and the analysis backend
that folds what they return into the judge's compact state (`prometheus_analysis`).

Port: `ports.AnalysisBackend`. The judge itself stays in `analysis`, which does no I/O. A wing
imports only its own library (prometheus_api_client, requests), `controller.ports`, the domain and
resource types, `analysis`, `errors` and the cluster adapters — never another wing, the runtime
or Kopf (import-linter checks it).
"""
