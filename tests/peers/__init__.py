"""The peers modelrelease is compared with — Flagger and Argo Rollouts — built from the Go module
proxy (`make peers`) and run on the tests' control plane (never shipped: docs/testing.md)."""
