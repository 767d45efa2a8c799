"""The MLflow wing: version resolution and alias promotion in the registry, rollout runs, and the
registry's signed alias webhooks.

Port: `ports.ModelRegistry`. A wing imports only its own library (mlflow), `controller.ports`, the
domain and resource types, `errors` and the cluster adapters — never another wing, the runtime or
Kopf (import-linter checks it).
"""
