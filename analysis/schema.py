"""Pydantic building blocks shared by every manifest model of the project.

They live in `analysis` because it is the lowest layer: the controller's resource models
and the analysis specs both build on them, and `analysis` may not import `controller`.
Manifests are camelCase YAML; Python code uses snake_case attributes.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel


class Frozen(BaseModel):
    """A frozen value with camelCase keys that rejects unknown fields."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
    )

    def to_manifest(self) -> dict[str, Any]:
        """The camelCase form written to the cluster (nulls left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# At most 7 digits a part and 4 parts: the API server refuses a hostile length ("9999999999999h")
# before the controller parses it; each field's own range is checked by the model (`within`).
DURATION_PATTERN = r"^([0-9]{1,7}(\.[0-9]{1,9})?(ms|s|m|h|d)){1,4}$"
DURATION_MAX_LENGTH = 40
LONGEST_DURATION = timedelta(days=3650)  # no duration of ours means more than ten years


def parse_duration(value: object) -> timedelta:
    """Read a Go-style duration ("90s", "15m", "1h30m") or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration is a string such as '90s', '15m' or '1h30m', not a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value} is negative; a duration is zero or more")
        if value > LONGEST_DURATION.total_seconds():
            raise ValueError(f"{value} seconds is longer than {LONGEST_DURATION.days} days")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError("a duration is a string such as '90s', '15m' or '1h30m'")
    text = value.strip()
    if not text or len(text) > DURATION_MAX_LENGTH or _DURATION_PART.sub("", text):
        raise ValueError(
            f"{value[:DURATION_MAX_LENGTH]!r} is not a duration; write it like '90s', '15m' or '1h30m'"
        )
    seconds = sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(text))
    if seconds > LONGEST_DURATION.total_seconds():  # also keeps timedelta from overflowing
        raise ValueError(f"{value!r} is longer than {LONGEST_DURATION.days} days")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest Go-style spelling of a duration, so round-trips are stable."""
    total = value.total_seconds()
    if total != int(total):
        return f"{round(total * 1000)}ms"
    seconds = int(total)
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "maxLength": DURATION_MAX_LENGTH}),
]


def within(low: timedelta, high: timedelta, *, above_low: bool = False) -> AfterValidator:
    """A duration field's range, said in durations: `Annotated[Duration, within(...)]`.
    `above_low`: the low end itself is refused (a zero timeout means nothing)."""

    def check(value: timedelta) -> timedelta:
        too_short = value <= low if above_low else value < low
        if too_short or value > high:
            low_text = (
                f"longer than {format_duration(low)}" if above_low else f"at least {format_duration(low)}"
            )
            raise ValueError(
                f"{format_duration(value)} is out of range: {low_text} and at most {format_duration(high)}"
            )
        return value

    return AfterValidator(check)


# Free-form Kubernetes objects we pass through untouched (probes, tolerations, env…).
# The API server keeps them as they are; their own schema is Kubernetes' business.
KubeObject = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
KubeList = Annotated[
    list[dict[str, Any]],
    WithJsonSchema(
        {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    ),
]
# Resource quantities: 1, "1", "500m", "16Gi".
Quantity = Annotated[
    int | str,
    WithJsonSchema({"x-kubernetes-int-or-string": True}),
]
