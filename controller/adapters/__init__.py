"""Adapters: one module per external system, each implementing a port of `controller.ports`."""
