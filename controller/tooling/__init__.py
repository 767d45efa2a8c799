"""Tooling around the controller, not part of a production install: the runtime and API-load
benchmarks, the demo, and the test rig (the fleet, the Slack stand-in, scripted verdicts), run from
a checkout against the real control plane (tests/controlplane). Not in the wheel; the product never
imports it."""
