"""The Slack wing: the outbox kept in the cluster, message rendering, delivery with slack-sdk's
WebClient, signed interactivity (presses on approval buttons) over HTTP or Socket Mode.

Port: `ports.Notifier`. A wing imports only its own library (slack_sdk), `controller.ports`, the
domain and resource types, `errors` and the cluster adapters (kubeapi, labels, events, workloads)
— never another wing, the runtime or Kopf (import-linter checks it).
"""
