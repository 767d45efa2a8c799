"""Fault injection: fail the next N requests that match a filter, with a code or a hang."""

from __future__ import annotations

import dataclasses
import re
import threading


@dataclasses.dataclass
class FaultRule:
    """Requests matching every given field fail; `times` counts down to zero, then the rule is spent.

    `code` answers with that HTTP status (409, 500, …); `hang` holds the request that many seconds
    first and then answers 504, which a client with a shorter timeout sees as a timeout.
    """

    times: int
    code: int = 500
    hang: float = 0.0
    verb: str | None = None  # get, list, watch, create, update, patch, delete
    plural: str | None = None
    name: str | None = None  # a regular expression
    subresource: str | None = None
    client: str | None = None  # substring of the User-Agent
    hits: int = 0

    def matches(self, verb: str, plural: str, name: str, subresource: str | None, client: str) -> bool:
        return (
            self.times > 0
            and (self.verb is None or self.verb == verb)
            and (self.plural is None or self.plural == plural)
            and (self.name is None or re.fullmatch(self.name, name) is not None)
            and (self.subresource is None or self.subresource == subresource)
            and (self.client is None or self.client in client)
        )


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def take(
        self, verb: str, plural: str, name: str, subresource: str | None, client: str
    ) -> FaultRule | None:
        """The first live rule matching this request, spending one of its `times`."""
        with self._lock:
            for rule in self.rules:
                if rule.matches(verb, plural, name, subresource, client):
                    rule.times -= 1
                    rule.hits += 1
                    return rule
        return None
