"""The Kopf runtime: observe the cluster, call the pure engine, execute its actions, write status."""
