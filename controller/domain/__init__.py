"""The pure core: `engine.reconcile(spec, status, observations, now=...) -> Decision`.

No I/O, no clock, no logging, no asyncio: everything the core knows arrives as arguments,
and everything it wants done leaves as desired-state actions with deterministic names.
"""
