"""The Git wing: remotes (GitPython), GitSource sync, rollback write-back and version bumps, push
webhooks, credentials from Secrets, and the changed-files reading `validate --changed` does.

Port: `ports.ReleaseRepository` (write-back and bumps). A wing imports only its own library
(GitPython), `controller.ports`, the domain and resource types, `errors` and the cluster adapters
(kubeapi, labels, events) — never another wing, the runtime or Kopf (import-linter checks it).
"""
