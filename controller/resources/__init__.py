"""The project's Kubernetes resources as frozen pydantic models: the single source of the CRDs."""
