"""Tooling around the controller, not part of a production install: the runtime and API-load
benchmarks, run against the emulated cluster (`modelrelease[sandbox]`). The product never imports it."""
