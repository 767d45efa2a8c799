"""Operator commands: what `modelrelease.dev/command-<name>` annotations ask of a rollout.

Each command carries a token (the annotation's value); a token not seen before is a new command,
acted on once. The annotation reader, the observations, the status and the machine all name
commands through this one vocabulary.
"""

from __future__ import annotations

from enum import StrEnum


class Command(StrEnum):
    ABORT = "abort"
    PROMOTE = "promote"
    PROMOTE_FULL = "promote-full"
    RETRY = "retry"


def describe_known() -> str:
    return ", ".join(command.value for command in Command)
