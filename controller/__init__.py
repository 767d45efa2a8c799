"""modelrelease controller: resource models, the pure rollout engine, and (later) its Kubernetes shell."""
